import { sql } from '@databases/pg';
import { enums, nullable, number, object, pattern, record, string, unknown, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { TimestampText, readRow } from '../db/rows.js';
import type { Alert, AlertChannel, AlertSeverity, DeliveryOutcome, Investigation } from './types.js';

/** Alerts, their deliveries and investigations. One statement per function, `db` first. */

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

/**
 * What an alert is about. Its own key when it has one; else its kind and workflow (a workflow
 * that fails is one alert however often it is raised); else the alert alone, never taken for
 * another (a host job's failure names no workflow: two different jobs are two alerts).
 */
const dedupeKeyOf = (alias: string) =>
  sql.__dangerous__rawValue(`coalesce(${alias}.dedupe_key, ${alias}.kind || ':' || coalesce(${alias}.workflow_id::text, 'alert:' || ${alias}.id))`);

/** The two-key advisory lock space ledgerbox's alert de-duplication uses (keys: hashtext of the dedupe key). */
const dedupeLockSpace = 0x1ed6_a1e7;

const IdText = pattern(string(), /^\d{1,19}$/);

const AlertRow = object({
  id: IdText,
  severity: enums(['critical', 'warning', 'info']),
  kind: string(),
  workflow_id: nullable(string()),
  message: string(),
  details: record(string(), unknown()),
  dedupe_key: string(),
  created_at: TimestampText,
});

export interface AlertRowInput {
  severity: AlertSeverity;
  kind: string;
  workflowId: string | null;
  message: string;
  details: Record<string, unknown>;
  dedupeKey: string | null;
}

/**
 * The one writer of ledgerbox.alerts rows from TypeScript (workflows, the worker, reconciliation
 * and batch summaries all come here), so a new column or rule of the table has one place to go.
 * One statement for any number of alerts; ids come back in the order given.
 */
export async function insertAlertRows(db: Session, alerts: readonly AlertRowInput[]): Promise<{ id: string; dedupeKey: string }[]> {
  if (alerts.length === 0) return [];
  const rows = await db.query(sql`
    insert into ledgerbox.alerts as a (severity, kind, workflow_id, message, details, dedupe_key)
    select r.severity, r.kind, r.workflow_id::uuid, r.message, r.details, r.dedupe_key
    from rows from (jsonb_to_recordset(${JSON.stringify(
      alerts.map((alert) => ({
        severity: alert.severity,
        kind: alert.kind,
        workflow_id: alert.workflowId,
        message: alert.message,
        details: alert.details,
        dedupe_key: alert.dedupeKey,
      })),
    )}::jsonb) as (severity text, kind text, workflow_id text, message text, details jsonb, dedupe_key text))
      with ordinality as r(severity, kind, workflow_id, message, details, dedupe_key, n)
    order by r.n
    returning a.id::text as id, ${dedupeKeyOf('a')} as dedupe_key`);
  // identity ids are drawn in insertion order, which follows the select's order
  return rows
    .map((row) => readRow(object({ id: IdText, dedupe_key: string() }), row, 'alert'))
    .sort((x, y) => (BigInt(x.id) < BigInt(y.id) ? -1 : 1))
    .map((row) => ({ id: row.id, dedupeKey: row.dedupe_key }));
}

export async function insertAlertRow(db: Session, alert: AlertRowInput): Promise<{ id: string; dedupeKey: string }> {
  const [inserted] = await insertAlertRows(db, [alert]);
  if (inserted === undefined) throw new Error('Expected the inserted alert back');
  return inserted;
}

/**
 * The oldest alert after `afterId` with no delivery, locked; alerts another deliverer holds are
 * skipped, not waited for.
 */
export async function lockNextUndelivered(db: Session, afterId: string): Promise<Alert | undefined> {
  const [row] = await db.query(sql`
    select a.id::text as id, a.severity, a.kind, a.workflow_id::text as workflow_id, a.message, a.details,
      ${dedupeKeyOf('a')} as dedupe_key, ${iso('a.created_at')} as created_at
    from ledgerbox.alerts a
    where a.id > ${afterId}::bigint
      and not exists (select 1 from ledgerbox.alert_deliveries d where d.alert_id = a.id)
    order by a.id
    limit 1
    for update of a skip locked`);
  if (row === undefined) return undefined;
  const alert = readRow(AlertRow, row, 'alert');
  return {
    id: alert.id,
    severity: alert.severity,
    kind: alert.kind,
    workflowId: alert.workflow_id,
    message: alert.message,
    details: alert.details,
    dedupeKey: alert.dedupe_key,
    createdAt: alert.created_at,
  };
}

/**
 * Read in a statement of its own: a row locked just after another deliverer committed was
 * chosen on an older snapshot, which could not see that delivery.
 */
export async function isDelivered(db: Session, alertId: string): Promise<boolean> {
  const rows = await db.query(sql`select 1 from ledgerbox.alert_deliveries where alert_id = ${alertId}::bigint`);
  return rows.length > 0;
}

/** Serializes the decisions on one dedupe key until this transaction ends. */
export async function lockDedupeKey(db: Session, dedupeKey: string): Promise<void> {
  await db.query(sql`select pg_advisory_xact_lock(${dedupeLockSpace}::int, hashtext(${dedupeKey}))`);
}

const RoutingRow = object({ decision: enums(['deliver', 'escalate', 'suppress']), investigation_id: nullable(IdText) });
export type Routing = Infer<typeof RoutingRow>;

/**
 * The de-duplication rule. With no open investigation for the key, the alert is delivered (and
 * opens one). An open one keeps the same alert quiet, except that a critical alert under an open
 * *warning* investigation is an escalation: it pages, and a critical incident replaces the
 * investigation. A critical incident keeps both criticals and warnings of its key quiet.
 */
export async function selectRouting(db: Session, dedupeKey: string, severity: 'critical' | 'warning'): Promise<Routing> {
  const [row] = await db.query(sql`
    select
      case
        when i.id is null then 'deliver'
        when ${severity}::text = 'critical' and i.severity = 'warning' then 'escalate'
        else 'suppress'
      end as decision,
      i.id::text as investigation_id
    from (select 1) as alert
    left join ledgerbox.investigations i on i.dedupe_key = ${dedupeKey} and i.closed_at is null`);
  return readRow(RoutingRow, row, 'alert routing');
}

// Times are clock_timestamp(), not the transaction's start: a delivery suppressed after waiting
// for the key's lock must come after the opening it waited for (suppressedAlerts counts on it).

export async function insertDelivery(db: Session, alertId: string, channel: AlertChannel, outcome: DeliveryOutcome): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.alert_deliveries (alert_id, channel, outcome, delivered_at)
    values (${alertId}::bigint, ${channel}, ${outcome}, clock_timestamp())`);
}

export async function insertInvestigation(db: Session, opened: { dedupeKey: string; severity: 'critical' | 'warning'; title: string }): Promise<string> {
  const [row] = await db.query(sql`
    insert into ledgerbox.investigations (dedupe_key, severity, title, opened_at)
    values (${opened.dedupeKey}, ${opened.severity}, ${opened.title}, clock_timestamp())
    returning id::text as id`);
  return readRow(object({ id: IdText }), row, 'investigation').id;
}

const InvestigationRow = object({
  id: IdText,
  dedupe_key: string(),
  severity: enums(['critical', 'warning']),
  title: string(),
  opened_at: TimestampText,
  closed_at: nullable(TimestampText),
  closed_by: nullable(string()),
  resolution: nullable(string()),
  suppressed_alerts: number(),
});

function toInvestigation(row: unknown): Investigation {
  const checked = readRow(InvestigationRow, row, 'investigation');
  return {
    id: checked.id,
    dedupeKey: checked.dedupe_key,
    severity: checked.severity,
    title: checked.title,
    openedAt: checked.opened_at,
    closedAt: checked.closed_at,
    closedBy: checked.closed_by,
    resolution: checked.resolution,
    suppressedAlerts: checked.suppressed_alerts,
  };
}

const investigationColumns = sql`
  i.id::text as id, i.dedupe_key, i.severity, i.title, ${iso('i.opened_at')} as opened_at,
  ${iso('i.closed_at')} as closed_at, i.closed_by, i.resolution`;

/** Alerts of the investigation's key kept quiet while it was open. */
const suppressedCount = sql`(
  select count(*)::int from ledgerbox.alert_deliveries d
  join ledgerbox.alerts a on a.id = d.alert_id
  where d.outcome = 'suppressed_duplicate'
    and d.delivered_at >= i.opened_at and (i.closed_at is null or d.delivered_at <= i.closed_at)
    and ${dedupeKeyOf('a')} = i.dedupe_key)`;

/** Closes an open investigation; none when it is unknown or already closed. */
export async function closeInvestigationRow(
  db: Session,
  close: { id: string; resolution: string; closedBy: string | null },
): Promise<Investigation | undefined> {
  const [row] = await db.query(sql`
    update ledgerbox.investigations i
    set closed_at = clock_timestamp(), closed_by = coalesce(${close.closedBy}::text, current_user), resolution = ${close.resolution}
    where i.id = ${close.id}::bigint and i.closed_at is null
    returning ${investigationColumns}, ${suppressedCount} as suppressed_alerts`);
  return row === undefined ? undefined : toInvestigation(row);
}

export async function selectInvestigation(db: Session, id: string): Promise<Investigation | undefined> {
  const [row] = await db.query(sql`
    select ${investigationColumns}, ${suppressedCount} as suppressed_alerts
    from ledgerbox.investigations i where i.id = ${id}::bigint`);
  return row === undefined ? undefined : toInvestigation(row);
}

export async function selectOpenInvestigations(db: Session, limit: number): Promise<Investigation[]> {
  const rows = await db.query(sql`
    select ${investigationColumns}, ${suppressedCount} as suppressed_alerts
    from ledgerbox.investigations i
    where i.closed_at is null
    order by i.opened_at, i.id
    limit ${limit}`);
  return rows.map(toInvestigation);
}
