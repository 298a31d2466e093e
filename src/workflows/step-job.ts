import { object, optional, string } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Uuid } from '../contracts.js';
import { addJobs, jobSpecsJson, type JobSpec } from '../jobs/graphile-boundary.js';
import { defineTask } from '../jobs/tasks.js';
import { Traceparent, currentTraceparent } from '../tracing/tracer.js';

/**
 * The one task every workflow step runs as: its payload names the workflow and the step, and
 * (when the code that enqueued it was traced) the W3C traceparent of the span it continues.
 */
export const stepTask = defineTask('ledgerbox:step', object({ workflowId: Uuid, step: string(), traceparent: optional(Traceparent) }), {
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
  await addJobs(db, [stepJobSpec(workflowId, step, runAt)], 'replace');
}

/** The job enqueueStep adds; it continues the active span's trace (the step's that enqueues it). @internal */
export function stepJobSpec(workflowId: string, step: string, runAt: Date | null = null): JobSpec {
  const traceparent = currentTraceparent();
  return {
    task: stepTask.name,
    payload: traceparent === undefined ? { workflowId, step } : { workflowId, step, traceparent },
    queue: null,
    runAt,
    maxAttempts: stepTask.defaults.maxAttempts ?? null,
    jobKey: stepJobKey(workflowId, step),
    priority: null,
  };
}

/**
 * The same job as ledgerbox.add_jobs takes it (the JSON jobs/graphile-boundary's addJobs sends), for a
 * statement that adds it alongside other writes. @internal
 */
export function stepJobJson(workflowId: string, step: string, runAt: Date | null = null): string {
  return jobSpecsJson([stepJobSpec(workflowId, step, runAt)]);
}

/** @internal */
export function stepJobKey(workflowId: string, step: string): string {
  return `ledgerbox:step:${workflowId}:${step}`;
}
