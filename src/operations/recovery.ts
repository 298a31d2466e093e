import { object, optional, pattern, refine, size, string } from 'superstruct';
import { StorableText, Timestamp, Uuid, validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { LedgerboxError, type ErrorCode } from '../errors.js';
import { callCancelWorkflow, callRetryJob, callRetryTaskJobs, callResumeWorkflow } from './operations-queries.js';

/**
 * The recovery functions live in the database (ledgerbox.resume_workflow, cancel_workflow,
 * retry_job, retry_task_jobs) so psql and this API do exactly the same thing, audited in
 * ledgerbox.operator_actions. Here they get contracts and typed errors.
 */

// a blank reason would reach the database and come back as an untyped error: refuse it here
const Reason = refine(size(StorableText, 1, 1_000), 'reason', (value) =>
  value.trim() !== '' ? true : 'a reason is required: say what was fixed, or why (it is recorded in ledgerbox.operator_actions)',
);
const JobId = refine(pattern(string(), /^[1-9]\d{0,18}$/), 'job id', (value) =>
  // superstruct runs refiners after a failed pattern too: only digits reach BigInt
  !/^\d+$/.test(value) || BigInt(value) <= 9_223_372_036_854_775_807n ? true : `a job id is a bigint, at most 9223372036854775807, got ${value}`,
);

/** Maps the SQLSTATEs the recovery functions raise to ledgerbox codes, keeping their message. */
async function recovering<T>(db: DatabaseHandle, codes: { notFound: ErrorCode; refused: ErrorCode; busy?: ErrorCode }, call: Parameters<typeof inTransaction<T>>[1]): Promise<T> {
  try {
    return await inTransaction(db, call);
  } catch (error) {
    const sqlstate = (error as { code?: string }).code;
    const message = (error as Error).message;
    if (sqlstate === 'P0002') throw new LedgerboxError(codes.notFound, message, { cause: error });
    if (sqlstate === '55000') throw new LedgerboxError(codes.refused, message, { cause: error });
    if (sqlstate === '55006' && codes.busy) throw new LedgerboxError(codes.busy, message, { cause: error });
    throw error;
  }
}

export interface ResumedWorkflow {
  workflowId: string;
  /** The step enqueued again: the one that failed, or the compensation that failed. */
  step: string;
}

/**
 * After an operator has fixed what made a workflow fail: runs the failed step again, with its
 * full retries, reading fresh state from the database (jobs carry ids, never stale copies). A
 * workflow whose compensation failed gets its compensation run again instead. Refused
 * (`workflow_not_resumable`) for a workflow that is running, completed or compensated. Recorded
 * in ledgerbox.operator_actions with the reason and the database user.
 */
export async function resumeWorkflow(db: DatabaseHandle, input: { workflowId: string; reason: string }): Promise<ResumedWorkflow> {
  const request = validate(object({ workflowId: Uuid, reason: Reason }), input, 'resume');
  const step = await recovering(db, { notFound: 'workflow_not_found', refused: 'workflow_not_resumable' }, (db) =>
    callResumeWorkflow(db, request.workflowId, request.reason),
  );
  return { workflowId: request.workflowId, step };
}

/** Stops a running or failed workflow and compensates it; a queued one ends at once, never started. `workflow_not_cancellable` once finished. */
export async function cancelWorkflow(db: DatabaseHandle, input: { workflowId: string; reason: string }): Promise<void> {
  const request = validate(object({ workflowId: Uuid, reason: Reason }), input, 'cancel');
  await recovering(db, { notFound: 'workflow_not_found', refused: 'workflow_not_cancellable' }, (db) =>
    callCancelWorkflow(db, request.workflowId, request.reason),
  );
}

/**
 * Runs one failed job again: a graphile-worker job is rescheduled now with fresh attempts; a
 * workflow step that failed for good resumes its workflow. Refused for a running job
 * (`job_running`), one that has not failed or is still being retried (`job_not_retryable`).
 */
export async function retryJob(db: DatabaseHandle, input: { jobId: string; reason: string }): Promise<string> {
  const request = validate(object({ jobId: JobId, reason: Reason }), input, 'retry');
  return recovering(db, { notFound: 'job_not_found', refused: 'job_not_retryable', busy: 'job_running' }, (db) =>
    callRetryJob(db, request.jobId, request.reason),
  );
}

/** Reschedules every permanently failed, not running job of a task (failed since `since`). Returns how many. */
export async function retryTaskJobs(db: DatabaseHandle, input: { task: string; reason: string; since?: Date | string }): Promise<number> {
  const request = validate(object({ task: size(StorableText, 1, 100), reason: Reason, since: optional(Timestamp) }), input, 'retry');
  return recovering(db, { notFound: 'job_not_found', refused: 'job_not_retryable' }, (db) =>
    callRetryTaskJobs(db, request.task, request.reason, request.since ?? null),
  );
}
