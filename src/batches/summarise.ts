import { defaulted, integer, object, size } from 'superstruct';
import { validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { AlertInput } from '../alerts/alert-contracts.js';
import { insertAlertRow } from '../alerts/alert-queries.js';
import { wakeAlertDelivery } from '../alerts/deliver-task.js';
import { alertSeverity } from '../severities.js';
import { formatMinorUnits } from '../money/format.js';
import { finishBatch, lockFinishedBatches, selectBatchMovement, selectBatchWorkflows, type FinishedBatchRow } from '../outbox/batch-queries.js';

/**
 * A batch run is the jobs of one `fanOut` given a `batch` name: a nightly statement per
 * customer, a payout per merchant. It has no end the caller sees (its jobs run on workers, over
 * hours perhaps), so ledgerbox watches for it: once none of its jobs is waiting, retrying or
 * running, `summariseBatches` writes what moved while it ran.
 */
export interface BatchSummary {
  /** A bigint, as a string: `ledgerbox.batch_runs.id`. */
  batchId: string;
  /** The `batch` name given to fanOut. */
  name: string;
  task: string;
  jobs: number;
  /** Jobs that ran to the end (graphile-worker deleted them). */
  completed: number;
  /** Jobs that failed for good (no attempts left); each also raised a `job_failed` alert (a warning: src/severities.ts). */
  failed: number;
  startedAt: Date;
  finishedAt: Date;
  /**
   * Per currency, the money posted by the transfers committed from the fan-out to the summary
   * (every transfer in that window, the batch's and any other): minor units moved (the sum of
   * the positive posted entries) and how many transfers.
   */
  movement: { currency: string; moved: bigint; transfers: number }[];
  /** Workflows that ended in that window. */
  workflows: { completed: number; failed: number; compensated: number };
  /** The info alert that carries the summary (`batch_summary`), logged by deliverAlerts. */
  alertId: string;
}

export interface SummariseBatchesOptions {
  /** Batches summarised by one call, oldest first. Default 100, at most 1 000. */
  limit?: number;
}

/** Currencies named in the alert's message and details; the rest are counted. */
const currencies_shown_max = 20;

const Options = object({ limit: defaulted(size(integer(), 1, 1_000), 100) });

/**
 * Summarises every batch run whose jobs have all finished and that has no summary yet: stores
 * the summary with the run (`ledgerbox.batch_runs`) and records it as an info alert
 * (`batch_summary`), in one transaction on the caller's handle. A batch is summarised once,
 * however many workers call this at the same moment. The worker calls it every minute.
 */
export async function summariseBatches(db: DatabaseHandle, options: SummariseBatchesOptions = {}): Promise<BatchSummary[]> {
  const { limit } = validate(Options, options, 'options');
  return inTransaction(db, async (db) => {
    const summaries: BatchSummary[] = [];
    for (const batch of await lockFinishedBatches(db, limit)) {
      const movement = await selectBatchMovement(db, batch.started_snapshot);
      const workflows = await selectBatchWorkflows(db, batch.started_at);
      // checked as recordAlert checks a caller's alert: the batch's name and task are the caller's
      const alertInput = validate(AlertInput, summaryAlert({ batch, movement, workflows }), 'alert');
      const alert = await insertAlertRow(db, { ...alertInput, workflowId: null, dedupeKey: alertInput.dedupeKey ?? null });
      const finishedAt = await finishBatch(db, {
        id: batch.id,
        completed: batch.completed,
        failed: batch.failed,
        movement: { currencies: movement.map((row) => ({ ...row, moved: row.moved.toString() })), workflows },
        alertId: alert.id,
      });
      summaries.push({
        batchId: batch.id,
        name: batch.name,
        task: batch.task,
        jobs: batch.jobs,
        completed: batch.completed,
        failed: batch.failed,
        startedAt: batch.started_at,
        finishedAt,
        movement,
        workflows,
        alertId: alert.id,
      });
    }
    // logged within moments, not at the next minute's tick
    if (summaries.length > 0) await wakeAlertDelivery(db);
    return summaries;
  });
}

interface Summarised {
  batch: FinishedBatchRow;
  movement: { currency: string; moved: bigint; transfers: number }[];
  workflows: { completed: number; failed: number; compensated: number };
}

/** The info alert that carries a summary: a line for a person, and the figures as details. */
function summaryAlert(summary: Summarised) {
  const { batch, movement, workflows } = summary;
  return {
    severity: alertSeverity('batch_summary'),
    kind: 'batch_summary',
    message: summaryMessage(summary),
    details: {
      batchId: batch.id,
      name: batch.name,
      task: batch.task,
      jobs: batch.jobs,
      completed: batch.completed,
      failed: batch.failed,
      // amounts as strings: JSON numbers lose precision beyond 2^53. Bounded, as alert details
      // are; the batch's row has every currency
      movement: movement.slice(0, currencies_shown_max).map((row) => ({ currency: row.currency, moved: row.moved.toString(), transfers: row.transfers })),
      currencies: movement.length,
      workflows,
    },
    dedupeKey: `batch_summary:${batch.id}`,
  };
}

/** One line for a person: `batch statements:2026-11-21 (shop.statement) finished: 100 jobs, 98 completed, 2 failed; moved …`. */
function summaryMessage(summary: Summarised): string {
  const { batch, movement, workflows } = summary;
  const moved =
    movement.length === 0
      ? 'nothing moved'
      : `moved ${movement
          .slice(0, currencies_shown_max)
          .map((row) => `${formatMinorUnits(row.moved, row.currency)} (${row.transfers} transfer${row.transfers === 1 ? '' : 's'})`)
          .join(', ')}${movement.length > currencies_shown_max ? ` and ${movement.length - currencies_shown_max} more currencies` : ''}`;
  return (
    `batch ${batch.name} (${batch.task}) finished: ${batch.jobs} job${batch.jobs === 1 ? '' : 's'}, ${batch.completed} completed, ${batch.failed} failed; ` +
    `${moved}; workflows ${workflows.completed} completed, ${workflows.failed} failed, ${workflows.compensated} compensated`
  );
}
