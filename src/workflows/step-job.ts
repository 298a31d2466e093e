import { object, string } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Uuid } from '../contracts.js';
import { addJobs } from '../outbox/outbox-queries.js';
import { defineTask } from '../outbox/tasks.js';

/** The one task every workflow step runs as: its payload names the workflow and the step, nothing else. */
export const stepTask = defineTask('ledgerbox:step', object({ workflowId: Uuid, step: string() }), {
  // graphile-worker's own retries only cover crashes and lost connections: a step's failures
  // are counted, backed off and given up on by ledgerbox (see run-step.ts)
  maxAttempts: 25,
});

/**
 * Enqueues a step in the transaction that records the previous one. The job key makes it one
 * pending job per step: a retry replaces a pending one, and enqueueing while the step's own job
 * runs retires that job (graphile-worker spends its attempts), so a crash after this commit
 * cannot deliver it again. @internal
 */
export async function enqueueStep(db: Session, workflowId: string, step: string, runAt: Date | null = null): Promise<void> {
  await addJobs(
    db,
    [
      {
        task: stepTask.name,
        payload: { workflowId, step },
        queue: null,
        runAt,
        maxAttempts: stepTask.defaults.maxAttempts ?? null,
        jobKey: stepJobKey(workflowId, step),
        priority: null,
      },
    ],
    'replace',
  );
}

/** @internal */
export function stepJobKey(workflowId: string, step: string): string {
  return `ledgerbox:step:${workflowId}:${step}`;
}
