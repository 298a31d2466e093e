import type pg from 'pg';
import type { Task } from 'graphile-worker';
import { object, optional, pattern, string } from 'superstruct';
import { validate } from '../contracts.js';
import { inTransaction } from '../db/handle.js';
import { LedgerboxError } from '../errors.js';
import type { Logger } from '../logger.js';
import { addJobs } from '../jobs/graphile-boundary.js';
import { defineTask } from '../jobs/tasks.js';
import { deliverReport, renderReport } from './report/index.js';
import { markReportDelivered, storeReport } from './reconcile-writes.js';
import { reconcileNight, type ReconcileOptions } from './run.js';
import { selectStoredReport } from './reconcile-queries.js';

/** The nightly run; graphile-worker's crontab enqueues it, catching up missed nights. */
export const reconcileTask = defineTask('ledgerbox:reconcile', object({ _cron: optional(object({ ts: string() })) }));

/** Sends a run's stored report; retried by the runner until it goes, so a report is never lost. */
export const sendReportTask = defineTask('ledgerbox:send_report', object({ runId: pattern(string(), /^\d+$/) }), { maxAttempts: 10 });

export interface ReportDelivery {
  smtpUrl?: string;
  from?: string;
  to?: string[];
  directory?: string;
}

/** `HH:MM` UTC → a crontab line that also runs nights missed in the last two days, once each. */
export function nightlyCrontab(at: string): string {
  const match = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(at);
  if (match === null) throw new LedgerboxError('invalid_input', `Expected the reconciliation time (\`reconciliation.at\`, or RECONCILE_AT) as HH:MM (UTC), got ${JSON.stringify(at)}`);
  return `${Number(match[2])} ${Number(match[1])} * * * ${reconcileTask.name} ?fill=2d&max=3`;
}

/** The night a scheduled run covers: the UTC date it was scheduled for. */
export function nightOf(scheduledAt: Date): string {
  return scheduledAt.toISOString().slice(0, 10);
}

/**
 * Runs the night's reconciliation (at most once per night, however often the job arrives),
 * renders its report, stores it with the run and queues it for sending, in one transaction.
 * @internal
 */
export function reconcileHandler(pool: pg.Pool, options: ReconcileOptions, logger: Logger): Task {
  return async (payload) => {
    const cron = validate(reconcileTask.payload, payload ?? {}, 'payload')._cron;
    const scheduledAt = cron ? new Date(cron.ts) : new Date();
    const report = await reconcileNight(pool, nightOf(scheduledAt), { ...options, logger });
    if (report === undefined) return;
    const rendered = renderReport(report);
    await inTransaction(pool, async (db) => {
      await storeReport(db, report.runId, rendered);
      await addJobs(
        db,
        [{ task: sendReportTask.name, payload: { runId: report.runId }, queue: null, runAt: null, maxAttempts: sendReportTask.defaults.maxAttempts ?? null, jobKey: `ledgerbox:send_report:${report.runId}`, priority: null }],
        'replace',
      );
    });
  };
}

/** @internal */
export function sendReportHandler(pool: pg.Pool, delivery: ReportDelivery, logger: Logger): Task {
  return async (payload) => {
    const { runId } = validate(sendReportTask.payload, payload, 'payload');
    await sendStoredReport(pool, runId, delivery, logger);
  };
}

/** Delivers a run's stored report (SMTP, or a file when SMTP is not configured) and records it. */
export async function sendStoredReport(pool: pg.Pool, runId: string, delivery: ReportDelivery, logger: Logger): Promise<{ sentTo: string[] } | { path: string }> {
  const stored = await inTransaction(pool, (db) => selectStoredReport(db, runId));
  if (stored === undefined) throw new LedgerboxError('invalid_input', `Run ${runId} has no stored report`);
  const outcome = await deliverReport(stored, { runId, ...delivery, logger });
  await inTransaction(pool, (db) => markReportDelivered(db, runId, { path: 'path' in outcome ? outcome.path : null }));
  return outcome;
}
