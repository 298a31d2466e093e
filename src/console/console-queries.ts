import { sql, type SQLQuery } from '@databases/pg';
import { array, boolean, nullable, number, object, string, type Infer, type Struct } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../db/rows.js';

/**
 * The console's reads. Each is one statement on an index (a million workflows must not make a
 * page slow): counts come from partial indexes or from today's slice of `updated_at`, lists
 * are paged by key (`before`), never by OFFSET over a large table. Every row is checked.
 */

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

async function read<T>(db: Session, query: SQLQuery, struct: Struct<T, any>, what: string): Promise<T[]> {
  const rows = await db.query(query);
  return rows.map((row) => readRow(struct, row, what));
}

const startOfTodayUtc = sql`(date_trunc('day', now() at time zone 'utc') at time zone 'utc')`;

export const MoneyMovedRow = object({ currency: string(), exponent: nullable(number()), credited: Int8Text, transfers: number() });
export type MoneyMovedRow = Infer<typeof MoneyMovedRow>;

/** Posted credits of transfers made since midnight UTC, per currency (pending holds are not moved money). */
export function selectMoneyMovedToday(db: Session): Promise<MoneyMovedRow[]> {
  return read(db, sql`
    select e.currency, c.exponent::int as exponent, sum(e.amount)::text as credited, count(distinct t.id)::int as transfers
    from ledgerbox.transfers t
    join ledgerbox.entries e on e.transfer_id = t.id and e.phase = 'posted' and e.amount > 0
    left join ledgerbox.currencies c on c.code = e.currency
    where t.created_at >= ${startOfTodayUtc}
    group by e.currency, c.exponent order by e.currency`, MoneyMovedRow, 'money moved');
}

export const WorkflowCounts = object({ queued: number(), running: number(), failed: number(), completed_today: number(), compensated_today: number(), held_back: number() });
export type WorkflowCounts = Infer<typeof WorkflowCounts>;

export async function selectWorkflowCounts(db: Session): Promise<WorkflowCounts> {
  const [row] = await read(db, sql`
    select
      (select count(*) from ledgerbox.workflows where status = 'queued')::int as queued,
      (select count(*) from ledgerbox.workflows where status = 'running')::int as running,
      (select count(*) from ledgerbox.workflows where status in ('failed', 'compensation_failed'))::int as failed,
      (select count(*) from ledgerbox.workflows where updated_at >= ${startOfTodayUtc} and status = 'completed')::int as completed_today,
      (select count(*) from ledgerbox.workflows where updated_at >= ${startOfTodayUtc} and status = 'compensated')::int as compensated_today,
      (select count(*) from ledgerbox.workflows where held_back is not null)::int as held_back`, WorkflowCounts, 'workflow counts');
  return row!;
}

export const LimboTotalRow = object({ currency: string(), amount: Int8Text, holds: number() });
export type LimboTotalRow = Infer<typeof LimboTotalRow>;

export function selectLimboTotals(db: Session, sla_ms: number): Promise<LimboTotalRow[]> {
  return read(db, sql`
    select currency, sum(amount)::text as amount, count(*)::int as holds
    from ledgerbox.money_in_limbo(make_interval(secs => ${sla_ms / 1000}))
    group by currency order by currency`, LimboTotalRow, 'money in limbo');
}

export const RunRow = object({
  id: string(),
  trigger: string(),
  status: string(),
  headline: nullable(string()),
  started_at: TimestampText,
  finished_at: nullable(TimestampText),
  entries_checked: Int8Text,
  critical: number(),
  warnings: number(),
  report_path: nullable(string()),
  report_sent_at: nullable(TimestampText),
  has_report: boolean(),
});
export type RunRow = Infer<typeof RunRow>;

const runColumns = sql`
  r.id::text as id, r.trigger, r.status, r.headline, ${iso('r.started_at')} as started_at, ${iso('r.finished_at')} as finished_at,
  r.entries_checked::text as entries_checked,
  (select count(*) from ledgerbox.reconciliation_findings f where f.run_id = r.id and f.severity = 'critical')::int as critical,
  (select count(*) from ledgerbox.reconciliation_findings f where f.run_id = r.id and f.severity = 'warning')::int as warnings,
  r.report_path, ${iso('r.report_sent_at')} as report_sent_at, r.report_text is not null as has_report`;

/** Runs, newest first, `limit` of them older than run `before`. */
export function selectRuns(db: Session, page: { before?: string | undefined; limit: number }): Promise<RunRow[]> {
  return read(db, sql`
    select ${runColumns} from ledgerbox.reconciliation_runs r
    where ${page.before === undefined ? sql`true` : sql`r.id < ${page.before}::bigint`}
    order by r.id desc limit ${page.limit}`, RunRow, 'reconciliation run');
}

export async function selectRun(db: Session, id: string): Promise<RunRow | undefined> {
  const [row] = await read(db, sql`select ${runColumns} from ledgerbox.reconciliation_runs r where r.id = ${id}::bigint`, RunRow, 'reconciliation run');
  return row;
}

export const RunReport = object({ report_text: nullable(string()) });

export async function selectRunReportText(db: Session, id: string): Promise<string | null | undefined> {
  const [row] = await read(db, sql`select report_text from ledgerbox.reconciliation_runs where id = ${id}::bigint`, RunReport, 'reconciliation report');
  return row === undefined ? undefined : row.report_text;
}

export const TrendRow = object({ id: string(), status: string(), started_at: TimestampText, findings: number(), critical: number(), at_risk: array(object({ currency: string(), amount: Int8Text })) });
export type TrendRow = Infer<typeof TrendRow>;

/**
 * The last `runs` finished runs, oldest first: findings and money at risk per currency (as the
 * report counts it: the absolute difference of critical findings and of money in limbo).
 */
export async function selectTrend(db: Session, runs: number): Promise<TrendRow[]> {
  const rows = await read(db, sql`
    select r.id::text as id, r.status, ${iso('r.started_at')} as started_at,
      (select count(*) from ledgerbox.reconciliation_findings f where f.run_id = r.id)::int as findings,
      (select count(*) from ledgerbox.reconciliation_findings f where f.run_id = r.id and f.severity = 'critical')::int as critical,
      coalesce((
        select json_agg(json_build_object('currency', currency, 'amount', amount::text) order by currency)
        from (select f.currency, sum(abs(f.difference)) as amount from ledgerbox.reconciliation_findings f
              where f.run_id = r.id and f.currency is not null and f.difference is not null
                and (f.severity = 'critical' or f.kind = 'money_in_limbo')
              group by f.currency) risk), '[]'::json) as at_risk
    from (select * from ledgerbox.reconciliation_runs where finished_at is not null order by id desc limit ${runs}) r
    order by r.id`, TrendRow, 'reconciliation trend');
  return rows;
}

export const FindingRow = object({
  id: string(),
  severity: string(),
  kind: string(),
  subject: string(),
  account: nullable(string()),
  currency: nullable(string()),
  expected: nullable(Int8Text),
  actual: nullable(Int8Text),
  difference: nullable(Int8Text),
  detail: string(),
});
export type FindingRow = Infer<typeof FindingRow>;

/** A run's findings, criticals first then by id, `limit` after finding `after`. */
export function selectFindings(db: Session, runId: string, page: { after?: string | undefined; limit: number; kind?: string | undefined }): Promise<FindingRow[]> {
  return read(db, sql`
    select f.id::text as id, f.severity, f.kind, f.subject, f.account, f.currency, f.expected::text as expected, f.actual::text as actual,
      f.difference::text as difference, f.detail
    from ledgerbox.reconciliation_findings f
    where f.run_id = ${runId}::bigint
      and ${page.after === undefined ? sql`true` : sql`f.id > ${page.after}::bigint`}
      and ${page.kind === undefined ? sql`true` : sql`f.kind = ${page.kind}`}
    order by f.id limit ${page.limit}`, FindingRow, 'reconciliation finding');
}

export const FindingGroupRow = object({ kind: string(), severity: string(), findings: number() });

export function selectFindingGroups(db: Session, runId: string): Promise<Infer<typeof FindingGroupRow>[]> {
  return read(db, sql`
    select kind, severity, count(*)::int as findings from ledgerbox.reconciliation_findings
    where run_id = ${runId}::bigint group by kind, severity order by severity = 'critical' desc, count(*) desc, kind`, FindingGroupRow, 'finding group');
}

export const WorkflowListRow = object({
  id: string(),
  kind: string(),
  key: string(),
  status: string(),
  current_step: string(),
  failure_reason: nullable(string()),
  updated_at: TimestampText,
  updated_at_key: string(),
});
export type WorkflowListRow = Infer<typeof WorkflowListRow>;

/**
 * Workflows by last change, newest first; `before` is the last row's (updated_at, id). The index
 * (status, updated_at, id) of migration 0015 answers a page of any one status at once.
 * Columns are qualified: ORDER BY a bare `updated_at` would sort by the text alias, not the index.
 */
export function selectWorkflows(db: Session, page: { status?: string | undefined; kind?: string | undefined; before?: { at: string; id: string } | undefined; limit: number }): Promise<WorkflowListRow[]> {
  const before = page.before;
  return read(db, sql`
    select w.id::text as id, w.kind, w.key, w.status, w.current_step, w.failure_reason, ${iso('w.updated_at')} as updated_at, ${iso('w.updated_at')} as updated_at_key
    from ledgerbox.workflows w
    where ${page.status === undefined ? sql`true` : sql`w.status = ${page.status}`}
      and ${page.kind === undefined ? sql`true` : sql`w.kind = ${page.kind}`}
      and ${before === undefined ? sql`true` : sql`w.updated_at <= ${before.at}::timestamptz and (w.updated_at < ${before.at}::timestamptz or w.id < ${before.id}::uuid)`}
    order by w.updated_at desc, w.id desc limit ${page.limit}`, WorkflowListRow, 'workflow');
}

export const WorkflowRow = object({
  id: string(),
  kind: string(),
  key: string(),
  version: number(),
  status: string(),
  current_step: string(),
  failed_step: nullable(string()),
  failure_reason: nullable(string()),
  subject: string(),
  subject_key: nullable(string()),
  held_back: nullable(string()),
  created_at: TimestampText,
  updated_at: TimestampText,
});
export type WorkflowRow = Infer<typeof WorkflowRow>;

export async function selectWorkflow(db: Session, id: string): Promise<WorkflowRow | undefined> {
  const [row] = await read(db, sql`
    select id::text as id, kind, key, version, status, current_step, failed_step, failure_reason, jsonb_pretty(subject) as subject,
      subject_key, held_back, ${iso('created_at')} as created_at, ${iso('updated_at')} as updated_at
    from ledgerbox.workflows where id = ${id}::uuid`, WorkflowRow, 'workflow');
  return row;
}

export const WorkflowTransferRow = object({
  id: string(),
  key: string(),
  kind: string(),
  created_at: TimestampText,
  effective_at: TimestampText,
  status: nullable(string()),
  legs: array(object({ account: string(), currency: string(), amount: Int8Text, phase: string() })),
});
export type WorkflowTransferRow = Infer<typeof WorkflowTransferRow>;

/** The workflow's transfers (holds with what became of them) and their entries. */
export function selectWorkflowTransfers(db: Session, workflowId: string): Promise<WorkflowTransferRow[]> {
  return read(db, sql`
    select t.id::text as id, t.key, t.kind, ${iso('t.created_at')} as created_at, ${iso('t.effective_at')} as effective_at,
      case when t.kind <> 'hold' then null
           else coalesce((select case when r.kind = 'post_hold' then 'posted' else coalesce(r.void_reason, 'voided') end
                          from ledgerbox.transfers r where r.hold_id = t.id), 'pending') end as status,
      coalesce((select json_agg(json_build_object('account', a.key, 'currency', e.currency, 'amount', e.amount::text, 'phase', e.phase) order by e.leg, e.id)
                from ledgerbox.entries e join ledgerbox.accounts a on a.id = e.account_id where e.transfer_id = t.id), '[]'::json) as legs
    from ledgerbox.transfers t where t.workflow_id = ${workflowId}::uuid
    order by t.created_at, t.id`, WorkflowTransferRow, 'workflow transfer');
}

export const AlertRow = object({
  id: string(),
  severity: string(),
  kind: string(),
  workflow_id: nullable(string()),
  message: string(),
  created_at: TimestampText,
  delivered: nullable(string()),
});
export type AlertRow = Infer<typeof AlertRow>;

/** Alerts newest first, `limit` older than alert `before`. */
export function selectAlerts(db: Session, page: { severity?: string | undefined; before?: string | undefined; limit: number }): Promise<AlertRow[]> {
  return read(db, sql`
    select a.id::text as id, a.severity, a.kind, a.workflow_id::text as workflow_id, a.message, ${iso('a.created_at')} as created_at,
      (select string_agg(d.channel || ': ' || d.outcome, ', ' order by d.channel) from ledgerbox.alert_deliveries d where d.alert_id = a.id) as delivered
    from ledgerbox.alerts a
    where ${page.severity === undefined ? sql`true` : sql`a.severity = ${page.severity}`}
      and ${page.before === undefined ? sql`true` : sql`a.id < ${page.before}::bigint`}
    order by a.id desc limit ${page.limit}`, AlertRow, 'alert');
}

export const InvestigationRow = object({
  id: string(),
  severity: string(),
  title: string(),
  opened_at: TimestampText,
  closed_at: nullable(TimestampText),
  closed_by: nullable(string()),
  resolution: nullable(string()),
  alerts: number(),
});
export type InvestigationRow = Infer<typeof InvestigationRow>;

/** Open investigations (oldest first), then the last `closed` closed ones. */
export function selectInvestigations(db: Session, limits_: { open: number; closed: number }): Promise<InvestigationRow[]> {
  return read(db, sql`
    (select i.id::text as id, i.severity, i.title, ${iso('i.opened_at')} as opened_at, null as closed_at, null as closed_by, null as resolution,
       (select count(*) from ledgerbox.alerts a where a.dedupe_key = i.dedupe_key and a.created_at >= i.opened_at)::int as alerts
     from ledgerbox.investigations i where i.closed_at is null order by i.id limit ${limits_.open})
    union all
    (select i.id::text, i.severity, i.title, ${iso('i.opened_at')}, ${iso('i.closed_at')}, i.closed_by, i.resolution,
       (select count(*) from ledgerbox.alerts a where a.dedupe_key = i.dedupe_key and a.created_at between i.opened_at and i.closed_at)::int
     from ledgerbox.investigations i where i.closed_at is not null order by i.closed_at desc limit ${limits_.closed})`, InvestigationRow, 'investigation');
}

export const OperatorActionRow = object({ id: string(), action: string(), target: string(), reason: string(), performed_by: string(), performed_at: TimestampText });
export type OperatorActionRow = Infer<typeof OperatorActionRow>;

export function selectOperatorActions(db: Session, limit: number): Promise<OperatorActionRow[]> {
  return read(db, sql`
    select o.id::text as id, o.action, o.target, o.reason, o.performed_by, ${iso('o.performed_at')} as performed_at
    from ledgerbox.operator_actions o order by o.id desc limit ${limit}`, OperatorActionRow, 'operator action');
}

export const CurrencyRow = object({ code: string(), exponent: number() });

/** The ledger's currencies with their exponents, so amounts print in the ledger's own units. */
export function selectCurrencies(db: Session): Promise<Infer<typeof CurrencyRow>[]> {
  return read(db, sql`select code, exponent::int as exponent from ledgerbox.currencies order by code`, CurrencyRow, 'currency');
}
