import { insertAlertRows } from '../alerts/alert-queries.js';
import { sql } from '@databases/pg';
import { object, string } from 'superstruct';
import type { Session } from '../db/handle.js';
import { readRow } from '../db/rows.js';
import { wakeAlertDelivery } from '../alerts/deliver-task.js';
import { alertSeverity } from '../severities.js';
import type { Finding, MoneyMovement } from './types.js';
import type { ExpectedBalanceRow } from './reconcile-queries.js';

export async function insertRun(
  db: Session,
  run: { trigger: 'schedule' | 'manual'; night: string | null; asOf: Date; full: boolean },
): Promise<string | undefined> {
  const rows = await db.query(sql`
    insert into ledgerbox.reconciliation_runs (trigger, night, as_of, full_verification)
    values (${run.trigger}, ${run.night}::date, ${run.asOf.toISOString()}::timestamptz, ${run.full})
    on conflict (night) where night is not null do nothing
    returning id::text as id`);
  return rows[0] === undefined ? undefined : readRow(object({ id: string() }), rows[0], 'run').id;
}

export async function finishRun(
  db: Session,
  runId: string,
  outcome: { status: string; headline: string; snapshot: string; entriesChecked: number; movement: { currencies: MoneyMovement[]; workflows: object } },
): Promise<void> {
  await db.query(sql`
    update ledgerbox.reconciliation_runs set status = ${outcome.status}, headline = ${outcome.headline},
      snapshot = ${outcome.snapshot}::pg_snapshot, entries_checked = ${outcome.entriesChecked},
      movement = ${JSON.stringify(outcome.movement, (_key, value) => (typeof value === 'bigint' ? value.toString() : value))}::jsonb,
      finished_at = now()
    where id = ${runId}::bigint`);
}

export async function failRun(db: Session, runId: string, reason: string): Promise<void> {
  await db.query(sql`
    update ledgerbox.reconciliation_runs set status = 'failed', headline = ${reason}, finished_at = now()
    where id = ${runId}::bigint`);
}

export async function storeReport(db: Session, runId: string, report: { subject: string; text: string; html: string }): Promise<void> {
  await db.query(sql`
    update ledgerbox.reconciliation_runs set report_subject = ${report.subject}, report_text = ${report.text}, report_html = ${report.html}
    where id = ${runId}::bigint`);
}

export async function markReportDelivered(db: Session, runId: string, delivery: { path: string | null }): Promise<void> {
  await db.query(sql`
    update ledgerbox.reconciliation_runs set report_sent_at = now(), report_path = ${delivery.path}
    where id = ${runId}::bigint`);
}

export async function insertFindings(db: Session, runId: string, findings: readonly Finding[]): Promise<void> {
  if (findings.length === 0) return;
  const text = (value: bigint | null) => (value === null ? null : value.toString());
  await db.query(sql`
    insert into ledgerbox.reconciliation_findings (run_id, severity, kind, subject, account, currency, expected, actual, difference, detail)
    select ${runId}::bigint, f.severity, f.kind, f.subject, f.account, f.currency, f.expected::numeric, f.actual::numeric, f.difference::numeric, f.detail
    from json_to_recordset(${JSON.stringify(
      findings.map((finding) => ({
        ...finding,
        expected: text(finding.expected),
        actual: text(finding.actual),
        difference: text(finding.difference),
      })),
    )}::json) as f(severity text, kind text, subject text, account text, currency text, expected text, actual text, difference text, detail text)`);
}

/** The verified sums become the next run's starting point. */
export async function saveCheckpoints(db: Session, runId: string, balances: readonly ExpectedBalanceRow[]): Promise<void> {
  if (balances.length === 0) return;
  await db.query(sql`
    insert into ledgerbox.balance_checkpoints (account_id, posted, pending_incoming, pending_outgoing, run_id)
    select c.account_id, c.posted, c.pending_incoming, c.pending_outgoing, ${runId}::bigint
    from unnest(
      ${balances.map((b) => b.account_id.toString())}::bigint[],
      ${balances.map((b) => b.expected_posted.toString())}::bigint[],
      ${balances.map((b) => b.expected_pending_incoming.toString())}::bigint[],
      ${balances.map((b) => b.expected_pending_outgoing.toString())}::bigint[]
    ) as c(account_id, posted, pending_incoming, pending_outgoing)
    on conflict (account_id) do update set posted = excluded.posted, pending_incoming = excluded.pending_incoming,
      pending_outgoing = excluded.pending_outgoing, run_id = excluded.run_id, verified_at = now()`);
}

/** One alert per new finding; the alert router sends it by severity and keeps duplicates quiet. */
export async function insertFindingAlerts(db: Session, runId: string, findings: readonly Finding[]): Promise<void> {
  if (findings.length === 0) return;
  await insertAlertRows(
    db,
    findings.map((f) => {
      const kind = `reconciliation_${f.kind}`;
      // the table's severity for the alert kind (a statement kind's by the side of the
      // tolerance its finding is on): the same as the finding's, from the same table
      return {
        severity: alertSeverity(kind, f.severity === 'critical'),
        kind,
        workflowId: null,
        message: f.detail,
        details: { run: runId, subject: f.subject },
        dedupeKey: `reconciliation:${f.subject}`,
      };
    }),
  );
  // delivered within moments, not at the next minute's tick
  await wakeAlertDelivery(db);
}
