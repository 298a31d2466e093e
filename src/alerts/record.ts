import { validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { InvalidInputError, LedgerboxError } from '../errors.js';
import { builtInAlertSeverities } from '../severities.js';
import { AlertInput } from './alert-contracts.js';
import { insertAlertRow } from './alert-queries.js';
import { wakeAlertDelivery } from './deliver-task.js';
import type { AlertSeverity, RecordedAlert } from './types.js';

export interface AlertToRecord {
  severity: AlertSeverity;
  /** A lower-case name: `reconciliation_balance_drift`, `payout_failed`. */
  kind: string;
  /** What happened and what it puts at risk, for a person; plain text. */
  message: string;
  /** Facts for the reader (ids, amounts as strings); a bounded JSON object. */
  details?: Record<string, unknown>;
  workflowId?: string;
  /**
   * What the alert is about, stable while the problem lasts (`balance_drift:customer:42:USD`):
   * alerts with the same key are one alert, not sent again while its investigation is open.
   * Default: `<kind>:<workflowId>`, or a key of the alert's own when it has no workflow.
   */
  dedupeKey?: string;
}

/**
 * Adds an alert in the caller's transaction: it exists, and is delivered, only if the caller
 * commits. Delivery is asked for in the same transaction (a `ledgerbox:deliver_alerts` job), so
 * a running worker sends it within moments rather than at its next minute.
 */
export async function recordAlert(db: DatabaseHandle, input: AlertToRecord): Promise<RecordedAlert> {
  const alert = validate(AlertInput, input, 'alert');
  // a kind ledgerbox raises itself keeps its one severity (docs/severities.md): a host that
  // records one too must not page on-call for what ledgerbox calls a warning, or the reverse
  const allowed = builtInAlertSeverities(alert.kind);
  if (allowed !== undefined && !allowed.includes(alert.severity)) {
    throw new InvalidInputError(
      `Expected \`alert.severity\` of a ${alert.kind} alert to be ${allowed.join(' or ')} (one severity per fact: docs/severities.md), got ${alert.severity}`,
      ['alert', 'severity'],
      alert.severity,
    );
  }
  return inTransaction(db, async (db) => {
    const recorded = await insertAlertRow(db, {
      severity: alert.severity,
      kind: alert.kind,
      workflowId: alert.workflowId ?? null,
      message: alert.message,
      details: alert.details,
      dedupeKey: alert.dedupeKey ?? null,
    }).catch((error: unknown) => {
      // the savepoint is rolled back with it: the caller's transaction stays usable
      if ((error as { code?: string }).code === '23503') {
        throw new LedgerboxError('workflow_not_found', `No workflow ${alert.workflowId} to attach the alert to`, {
          cause: error,
          details: { workflowId: alert.workflowId },
        });
      }
      throw error;
    });
    await wakeAlertDelivery(db);
    return recorded;
  });
}
