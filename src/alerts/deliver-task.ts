import { object, optional } from 'superstruct';
import type { Session } from '../db/handle.js';
import { addJobs } from '../jobs/graphile-boundary.js';
import { defineTask } from '../jobs/tasks.js';

/** Delivers alerts: every minute on the worker's schedule, and soon after an alert is recorded. */
export const deliverAlertsTask = defineTask('ledgerbox:deliver_alerts', object({ _cron: optional(object()) }), { maxAttempts: 5 });

/**
 * Asks a worker to deliver alerts now, in the caller's transaction (so only if the alert
 * commits). Alerts recorded together share one job: a pending one keeps its time.
 * @internal
 */
export async function wakeAlertDelivery(db: Session): Promise<void> {
  await addJobs(
    db,
    [{ task: deliverAlertsTask.name, payload: {}, queue: null, runAt: null, maxAttempts: deliverAlertsTask.defaults.maxAttempts ?? null, jobKey: deliverAlertsTask.name, priority: null }],
    'preserve_run_at',
  );
}
