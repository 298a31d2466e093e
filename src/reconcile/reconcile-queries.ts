import { sql, type SQLQuery } from '@databases/pg';
import { array, assert, bigint, boolean, coerce, date, nullable, number, object, pattern, string, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../db/rows.js';

/**
 * Reconciliation's reads, all inside one REPEATABLE READ READ ONLY transaction (one snapshot),
 * and its writes, in a short transaction afterwards. One statement per function, `db` first.
 */

/** A whole number of minor units that may exceed a bigint (a difference of two of them). */
const WholeNumberText = coerce(bigint(), pattern(string(), /^-?\d{1,40}$/), (value) => BigInt(value));

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

export const PreviousRunRow = object({ id: string(), snapshot: nullable(string()), started_at: TimestampText });

export async function selectPreviousRun(db: Session): Promise<Infer<typeof PreviousRunRow> | undefined> {
  const [row] = await db.query(sql`
    select r.id::text as id, r.snapshot::text as snapshot, ${iso('r.started_at')} as started_at
    from ledgerbox.reconciliation_runs r where r.status <> 'running' and r.status <> 'failed'
    order by r.id desc limit 1`);
  return row === undefined ? undefined : readRow(PreviousRunRow, row, 'reconciliation run');
}

/**
 * The run's snapshot; with `exported`, also exported (pg_export_snapshot) for a second
 * connection to read the same one while this transaction lasts.
 */
export async function selectCurrentSnapshot(db: Session, options: { exported: boolean }): Promise<{ snapshot: string; exported: string | null }> {
  const [row] = await db.query(
    options.exported
      ? sql`select pg_current_snapshot()::text as snapshot, pg_export_snapshot() as exported`
      : sql`select pg_current_snapshot()::text as snapshot, null::text as exported`,
  );
  return readRow(object({ snapshot: string(), exported: nullable(string()) }), row, 'snapshot');
}

export const ExpectedBalanceRow = object({
  account_id: Int8Text,
  key: string(),
  currency: string(),
  allow_negative: boolean(),
  clearing: boolean(),
  updated_at: TimestampText,
  actual_posted: Int8Text,
  actual_pending_incoming: Int8Text,
  actual_pending_outgoing: Int8Text,
  expected_posted: Int8Text,
  expected_pending_incoming: Int8Text,
  expected_pending_outgoing: Int8Text,
  entries: number(),
  /** This account's share of the balanced-transfers fingerprint over the entries checked. */
  fingerprint: WholeNumberText,
});
export type ExpectedBalanceRow = Infer<typeof ExpectedBalanceRow>;

/**
 * The prime of the balanced-transfers fingerprint. Each entry adds amount × h(transfer,
 * currency), both reduced mod p so the product fits a bigint; when every transfer balances in
 * every currency the total is ≡ 0 (mod p) exactly, and an unbalanced transfer leaves it at 0
 * with a chance of about 1 in p. It checks that in the same pass as the balances, instead of
 * a group-by over every transfer (10 times the cost at 1M entries); a non-zero total is
 * followed by the exact query, which names the transfers.
 */
export const fingerprintPrime = 2_147_483_629n;

/** Entries or transfers (`alias`) written by transactions the previous snapshot did not see. */
function unseen(alias: 'e' | 't', previousSnapshot: string): SQLQuery {
  const xact = sql.ident(alias, 'created_xact');
  // entries keep their transaction as a bigint (BRIN-indexed), transfers as an xid8
  return alias === 'e'
    ? sql`${xact} >= pg_snapshot_xmin(${previousSnapshot}::pg_snapshot)::text::bigint
          and not pg_visible_in_snapshot(${xact}::text::xid8, ${previousSnapshot}::pg_snapshot)`
    : sql`${xact} >= pg_snapshot_xmin(${previousSnapshot}::pg_snapshot)
          and not pg_visible_in_snapshot(${xact}, ${previousSnapshot}::pg_snapshot)`;
}

/** The entries the previous snapshot did not see: the recent pages only (see entries_created_xact). */
function newEntries(previousSnapshot: string): SQLQuery {
  return sql`
    select e.transfer_id, e.account_id, e.currency, e.amount, e.phase
    from ledgerbox.entries e where ${unseen('e', previousSnapshot)}`;
}

/**
 * Every account's expected balances (from entries) beside its cached ones. Incremental: the
 * last run's verified sums plus the entries its snapshot did not see; full: all entries. One
 * pass, which also sums the balanced-transfers fingerprint.
 */
export async function selectExpectedBalances(db: Session, previousSnapshot: string | null): Promise<ExpectedBalanceRow[]> {
  const p = fingerprintPrime.toString();
  const entries: SQLQuery = previousSnapshot === null ? sql`ledgerbox.entries` : sql`(${newEntries(previousSnapshot)})`;
  const added = sql`
    select e.account_id,
      coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0) as posted,
      coalesce(sum(e.amount) filter (where e.phase = 'pending' and e.amount > 0), 0) as pending_incoming,
      coalesce(-sum(e.amount) filter (where e.phase = 'pending' and e.amount < 0), 0) as pending_outgoing,
      count(*)::int as entries,
      sum((e.amount % ${p}::bigint) * (uuid_hash_extended(e.transfer_id, hashtext(e.currency)) % ${p}::bigint)) as fingerprint
    from ${entries} e group by e.account_id`;
  // holds resolved since: their pending entries no longer count (full: every resolved hold).
  // A transfer has a hold_id exactly when it resolves a hold (transfer_hold_reference_matches_kind),
  // and hold_resolved_once indexes it: the resolutions are read, not every transfer
  const resolutions: SQLQuery =
    previousSnapshot === null
      ? sql`select r.hold_id from ledgerbox.transfers r where r.hold_id is not null`
      : sql`select t.hold_id from ledgerbox.transfers t where t.kind in ('post_hold', 'void_hold') and ${unseen('t', previousSnapshot)}`;
  const base: SQLQuery =
    previousSnapshot === null
      ? sql`select a.id as account_id, 0::numeric as posted, 0::numeric as pending_incoming, 0::numeric as pending_outgoing from ledgerbox.accounts a`
      : sql`select a.id as account_id, coalesce(c.posted, 0)::numeric as posted, coalesce(c.pending_incoming, 0)::numeric as pending_incoming,
              coalesce(c.pending_outgoing, 0)::numeric as pending_outgoing
            from ledgerbox.accounts a left join ledgerbox.balance_checkpoints c on c.account_id = a.id`;
  const rows = await db.query(sql`
    with added as (${added}),
    released as (
      select e.account_id,
        coalesce(sum(e.amount) filter (where e.amount > 0), 0) as pending_incoming,
        coalesce(-sum(e.amount) filter (where e.amount < 0), 0) as pending_outgoing
      from (${resolutions}) r
      cross join lateral (select e.account_id, e.amount from ledgerbox.entries e where e.transfer_id = r.hold_id offset 0) e
      group by e.account_id
    ),
    base as (${base})
    select a.id::text as account_id, a.key, a.currency, a.allow_negative, a.clearing, ${iso('a.updated_at')} as updated_at,
      a.posted_balance::text as actual_posted, a.pending_incoming::text as actual_pending_incoming,
      a.pending_outgoing::text as actual_pending_outgoing,
      (b.posted + coalesce(ad.posted, 0))::text as expected_posted,
      (b.pending_incoming + coalesce(ad.pending_incoming, 0) - coalesce(rel.pending_incoming, 0))::text as expected_pending_incoming,
      (b.pending_outgoing + coalesce(ad.pending_outgoing, 0) - coalesce(rel.pending_outgoing, 0))::text as expected_pending_outgoing,
      coalesce(ad.entries, 0) as entries,
      coalesce(ad.fingerprint, 0)::text as fingerprint
    from ledgerbox.accounts a
    join base b on b.account_id = a.id
    left join added ad on ad.account_id = a.id
    left join released rel on rel.account_id = a.id
    order by a.id`);
  return rows.map((row) => {
    const value = readExpectedBalance(row);
    // the project's rule: every row read back is checked with superstruct; a plain struct over
    // the values already converted (no coercion) keeps that cheap for the pass's 1,000 rows
    assert(value, ExpectedBalanceValue, 'Unexpected expected balance row from the database');
    return value;
  });
}

/** The pass's row once read: checked with superstruct without coercion (cheap). */
const ExpectedBalanceValue = object({
  account_id: bigint(),
  key: string(),
  currency: string(),
  allow_negative: boolean(),
  clearing: boolean(),
  updated_at: date(),
  actual_posted: bigint(),
  actual_pending_incoming: bigint(),
  actual_pending_outgoing: bigint(),
  expected_posted: bigint(),
  expected_pending_incoming: bigint(),
  expected_pending_outgoing: bigint(),
  entries: number(),
  fingerprint: bigint(),
});

const int8Text = /^-?\d{1,19}$/;
const wholeNumberText = /^-?\d{1,40}$/;
const expectedBalanceFields = Object.keys(ExpectedBalanceRow.schema);

/**
 * readRow(ExpectedBalanceRow, …) without superstruct's cost: a full run reads one row per
 * account (15–30 ms for 1,000 rows through `create`, a tenth of the raw aggregate). The same
 * checks (every field, its type and pattern, no other field); the same error when one fails.
 */
export function readExpectedBalance(row: unknown): ExpectedBalanceRow {
  const fields = row as Record<string, unknown>;
  const int8 = (name: string): bigint => {
    const value = fields[name];
    if (typeof value !== 'string' || !int8Text.test(value)) return mismatch(name, value);
    return BigInt(value);
  };
  const text = (name: string): string => {
    const value = fields[name];
    return typeof value === 'string' ? value : mismatch(name, value);
  };
  const flag = (name: string): boolean => {
    const value = fields[name];
    return typeof value === 'boolean' ? value : mismatch(name, value);
  };
  const mismatch = (name: string, value: unknown): never => {
    // superstruct names the field and the value as readRow reports it
    readRow(ExpectedBalanceRow, { ...fields, [name]: value }, 'expected balance');
    throw new Error(`Unexpected expected balance row from the database at \`${name}\``);
  };
  if (typeof row !== 'object' || row === null || Object.keys(fields).length !== expectedBalanceFields.length) {
    return readRow(ExpectedBalanceRow, row, 'expected balance');
  }
  const updatedAt = fields.updated_at;
  const entries = fields.entries;
  const fingerprint = fields.fingerprint;
  if (!(typeof updatedAt === 'string' || updatedAt instanceof Date)) mismatch('updated_at', updatedAt);
  if (typeof entries !== 'number' || Number.isNaN(entries)) mismatch('entries', entries);
  if (typeof fingerprint !== 'string' || !wholeNumberText.test(fingerprint)) mismatch('fingerprint', fingerprint);
  const updated = new Date(updatedAt as string | Date);
  if (Number.isNaN(updated.getTime())) mismatch('updated_at', updatedAt);
  return {
    account_id: int8('account_id'),
    key: text('key'),
    currency: text('currency'),
    allow_negative: flag('allow_negative'),
    clearing: flag('clearing'),
    updated_at: updated,
    actual_posted: int8('actual_posted'),
    actual_pending_incoming: int8('actual_pending_incoming'),
    actual_pending_outgoing: int8('actual_pending_outgoing'),
    expected_posted: int8('expected_posted'),
    expected_pending_incoming: int8('expected_pending_incoming'),
    expected_pending_outgoing: int8('expected_pending_outgoing'),
    entries: entries as number,
    fingerprint: BigInt(fingerprint as string),
  };
}

export const UnbalancedRow = object({ transfer_id: string(), key: string(), currency: string(), total: Int8Text });

/**
 * Transfers that do not balance in a currency, named: the new ones, or (full) every one. Run
 * only when the fingerprint says there is one, as it groups every transfer's entries.
 */
export async function selectUnbalancedTransfers(db: Session, previousSnapshot: string | null): Promise<Infer<typeof UnbalancedRow>[]> {
  // incremental: every entry of the transfers that have new entries (an entry added to an old
  // transfer later, around the triggers, is judged with the rest of its transfer)
  const entries: SQLQuery =
    previousSnapshot === null
      ? sql`ledgerbox.entries`
      : sql`(select e.* from ledgerbox.entries e where e.transfer_id in (select n.transfer_id from (${newEntries(previousSnapshot)}) n))`;
  const rows = await db.query(sql`
    select u.transfer_id::text as transfer_id, t.key, u.currency, u.total::text as total
    from (
      select e.transfer_id, e.currency, sum(e.amount) as total from ${entries} e
      group by e.transfer_id, e.currency having sum(e.amount) <> 0
    ) u
    cross join lateral (select t.key from ledgerbox.transfers t where t.id = u.transfer_id offset 0) t`);
  return rows.map((row) => readRow(UnbalancedRow, row, 'unbalanced transfer'));
}

export const MovementRow = object({ currency: string(), moved: Int8Text, transfers: number() });

export async function selectMovement(db: Session, previousSnapshot: string | null, since: Date | null): Promise<Infer<typeof MovementRow>[]> {
  const moved: SQLQuery =
    previousSnapshot === null
      ? sql`
        select t.id as transfer_id, e.currency, e.amount, e.phase
        from ledgerbox.transfers t join ledgerbox.entries e on e.transfer_id = t.id
        where ${since === null ? sql`true` : sql`t.created_at >= ${since.toISOString()}::timestamptz`}`
      : newEntries(previousSnapshot);
  const rows = await db.query(sql`
    select m.currency, coalesce(sum(m.amount) filter (where m.amount > 0), 0)::text as moved, count(distinct m.transfer_id)::int as transfers
    from (${moved}) m
    where m.phase = 'posted'
    group by m.currency order by m.currency`);
  return rows.map((row) => readRow(MovementRow, row, 'movement'));
}

export const WorkflowFindingRow = object({
  workflow_id: string(),
  kind: string(),
  key: string(),
  status: string(),
  failure_reason: nullable(string()),
  source_account: nullable(string()),
  amount: nullable(Int8Text),
  currency: nullable(string()),
});

export async function selectFailedWorkflows(db: Session, compensatedSince: Date): Promise<Infer<typeof WorkflowFindingRow>[]> {
  const rows = await db.query(sql`
    select w.id::text as workflow_id, w.kind, w.key, w.status, w.failure_reason, m.source_account,
      m.source_amount::text as amount, m.source_currency as currency
    from ledgerbox.workflows w join ledgerbox.workflow_money m on m.workflow_id = w.id
    where w.status in ('failed', 'compensation_failed')
       or (w.status = 'compensated' and w.updated_at >= ${compensatedSince.toISOString()}::timestamptz)
    order by w.updated_at`);
  return rows.map((row) => readRow(WorkflowFindingRow, row, 'workflow'));
}

export const WorkflowCountsRow = object({ completed: number(), failed: number(), compensated: number() });

export async function selectWorkflowCounts(db: Session, since: Date | null): Promise<Infer<typeof WorkflowCountsRow>> {
  const [row] = await db.query(sql`
    select count(*) filter (where status = 'completed')::int as completed,
      count(*) filter (where status in ('failed', 'compensation_failed'))::int as failed,
      count(*) filter (where status = 'compensated')::int as compensated
    from ledgerbox.workflows
    where ${since === null ? sql`true` : sql`updated_at >= ${since.toISOString()}::timestamptz`}`);
  return readRow(WorkflowCountsRow, row, 'workflow counts');
}

export const LimboFindingRow = object({ hold_id: string(), key: string(), from_account: string(), amount: Int8Text, currency: string(), why: string() });

export async function selectLimbo(db: Session, sla_ms: number): Promise<Infer<typeof LimboFindingRow>[]> {
  const rows = await db.query(sql`
    select hold_id::text as hold_id, key, from_account, amount::text as amount, currency, why
    from ledgerbox.money_in_limbo(make_interval(secs => ${sla_ms / 1000}))`);
  return rows.map((row) => readRow(LimboFindingRow, row, 'hold in limbo'));
}

export const StuckFindingRow = object({ workflow_id: string(), kind: string(), key: string(), current_step: string(), stuck_for: string() });

export async function selectStuck(db: Session, olderThan_ms: number): Promise<Infer<typeof StuckFindingRow>[]> {
  const rows = await db.query(sql`
    select workflow_id::text as workflow_id, kind, key, current_step, stuck_for::text as stuck_for
    from ledgerbox.stuck_workflows(make_interval(secs => ${olderThan_ms / 1000})) where status = 'running'`);
  return rows.map((row) => readRow(StuckFindingRow, row, 'stuck workflow'));
}

export const FailedJobFindingRow = object({ job_id: string(), task: string(), attempts: number(), last_error: nullable(string()) });

export async function selectPermanentlyFailedJobs(db: Session): Promise<Infer<typeof FailedJobFindingRow>[]> {
  const rows = await db.query(sql`
    select job_id::text as job_id, task, attempts, last_error from ledgerbox.failed_jobs
    where state = 'failed' and task <> 'ledgerbox:step' order by failed_at`);
  return rows.map((row) => readRow(FailedJobFindingRow, row, 'failed job'));
}

export const StatementRow = object({
  account: string(),
  currency: string(),
  as_of: TimestampText,
  statement_balance: Int8Text,
  ledger_balance: nullable(Int8Text),
  source: string(),
});

/** The latest statement balance of each account, beside the ledger's posted balance at that moment. */
export async function selectStatementComparisons(db: Session, asOf: Date): Promise<Infer<typeof StatementRow>[]> {
  const rows = await db.query(sql`
    with latest as (
      select distinct on (b.account) b.account, b.currency, b.as_of, b.balance, s.source
      from ledgerbox.statement_balances b join ledgerbox.statements s on s.id = b.statement_id
      where b.as_of <= ${asOf.toISOString()}::timestamptz
      order by b.account, b.as_of desc, b.statement_id desc, b.line desc
    )
    select l.account, l.currency, ${iso('l.as_of')} as as_of, l.balance::text as statement_balance, l.source,
      (select coalesce(sum(e.amount), 0) from ledgerbox.entries e
        where e.account_id = a.id and e.phase = 'posted' and e.effective_at <= l.as_of)::text as ledger_balance
    from latest l left join ledgerbox.accounts a on a.key = l.account`);
  return rows.map((row) => readRow(StatementRow, row, 'statement comparison'));
}

export const TrendRow = object({
  id: string(),
  as_of: TimestampText,
  status: string(),
  critical: number(),
  warning: number(),
  money_at_risk: array(object({ currency: string(), amount: WholeNumberText })),
});

/**
 * Earlier runs, newest first, with their counts by severity and their money at risk per
 * currency: the rule of run.ts atRisk (|difference| of critical findings and of money in limbo),
 * summed here on the stored findings so a run of many findings costs one aggregate, not rows.
 */
export async function selectTrend(db: Session, beforeRunId: string, limit: number): Promise<Infer<typeof TrendRow>[]> {
  const rows = await db.query(sql`
    select r.id::text as id, ${iso('r.as_of')} as as_of, r.status,
      (select count(*)::int from ledgerbox.reconciliation_findings f where f.run_id = r.id and f.severity = 'critical') as critical,
      (select count(*)::int from ledgerbox.reconciliation_findings f where f.run_id = r.id and f.severity = 'warning') as warning,
      (select coalesce(json_agg(json_build_object('currency', currency, 'amount', amount::text) order by currency collate "C"), '[]')
       from (select f.currency, sum(abs(f.difference)) as amount from ledgerbox.reconciliation_findings f
             where f.run_id = r.id and f.currency is not null and f.difference is not null
               and (f.severity = 'critical' or f.kind = 'money_in_limbo')
             group by f.currency) risk) as money_at_risk
    from ledgerbox.reconciliation_runs r
    where r.id < ${beforeRunId}::bigint and r.status in ('clean', 'warnings', 'critical')
    order by r.id desc limit ${limit}`);
  return rows.map((row) => readRow(TrendRow, row, 'trend'));
}


export const FindingRow = object({
  severity: string(),
  kind: string(),
  subject: string(),
  account: nullable(string()),
  currency: nullable(string()),
  expected: nullable(WholeNumberText),
  actual: nullable(WholeNumberText),
  difference: nullable(WholeNumberText),
  detail: string(),
});

export async function selectFindings(db: Session, runId: string): Promise<Infer<typeof FindingRow>[]> {
  const rows = await db.query(sql`
    select severity, kind, subject, account, currency, expected::text as expected, actual::text as actual,
      difference::text as difference, detail
    from ledgerbox.reconciliation_findings where run_id = ${runId}::bigint order by id`);
  return rows.map((row) => readRow(FindingRow, row, 'finding'));
}

const StoredReportRow = object({ subject: nullable(string()), text: nullable(string()), html: nullable(string()) });

export async function selectStoredReport(db: Session, runId: string): Promise<{ subject: string; text: string; html: string } | undefined> {
  const [row] = await db.query(sql`
    select report_subject as subject, report_text as text, report_html as html
    from ledgerbox.reconciliation_runs where id = ${runId}::bigint`);
  if (row === undefined) return undefined;
  const stored = readRow(StoredReportRow, row, 'report');
  return stored.subject === null || stored.text === null || stored.html === null
    ? undefined
    : { subject: stored.subject, text: stored.text, html: stored.html };
}
