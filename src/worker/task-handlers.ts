import type pg from 'pg';
import type { JobHelpers, Task } from 'graphile-worker';
import { inTransaction } from '../db/handle.js';
import type { Logger } from '../logger.js';
import { completeJobInTransaction } from '../workflows/workflow-queries.js';
import { checkPayload, type TaskDefinition } from '../jobs/tasks.js';
import { JobTakenOver } from '../workflows/run-step.js';
import { declaresTraceparent, takeTraceparent, withRemoteParent, withSpan } from '../tracing/tracer.js';

export interface TaskContext {
  logger: Logger;
  jobId: string;
  attempt: number;
  helpers: JobHelpers;
}

/**
 * A host task: its definition (name and payload contract) and what to do with a job of it.
 * - At least once (the default): the handler may run again after a crash, for work outside the
 *   database that is idempotent on its own (an email with an idempotency key).
 * - `transaction: true`: the handler gets `db`, a connection inside a transaction that also
 *   completes the job (River's JobCompleteTx): its writes and the job's completion commit
 *   together, so a job redelivered after a crash finds itself done and never runs its writes twice.
 */
export type HostTask<Payload> =
  | { task: TaskDefinition<Payload>; transaction?: false; handler: (payload: Payload, context: TaskContext) => Promise<void> }
  | {
      task: TaskDefinition<Payload>;
      transaction: true;
      /** `db`: pass it to any ledgerbox function or query with it; never commit, roll back or release it. */
      handler: (payload: Payload, context: TaskContext & { db: pg.PoolClient | pg.Client }) => Promise<void>;
    };

/**
 * Wraps a handler so every job is checked against its task's contract before it runs, and logs
 * through a pino child bound to task, job id, attempt and (when the payload has one) workflow id.
 * Each job runs in a span `ledgerbox.job <task>`, the child of the span that enqueued it (the
 * payload's traceparent, taken out before a contract that does not declare it checks it).
 * @internal
 */
export function contractChecked<Payload>(
  definition: HostTask<Payload>,
  logger: Logger,
  onLastFailure?: (failure: LastFailure) => Promise<void>,
  pool?: pg.Pool,
): Task {
  const contractDeclaresTraceparent = declaresTraceparent(definition.task.payload);
  const run = async (rawPayload: unknown, helpers: JobHelpers): Promise<void> => {
    const job = helpers.job;
    const workflowId = (rawPayload as { workflowId?: unknown } | null)?.workflowId;
    const jobLogger = logger.child({
      task: definition.task.name,
      jobId: job.id,
      attempt: job.attempts,
      ...(typeof workflowId === 'string' ? { workflowId } : {}),
    });
    try {
      const payload = checkPayload(definition.task, rawPayload);
      const context: TaskContext = { logger: jobLogger, jobId: job.id, attempt: job.attempts, helpers };
      if (definition.transaction === true) {
        if (pool === undefined) throw new Error('a transactional task needs the worker pool');
        await inTransaction(pool, async (db, client) => {
          await definition.handler(payload, { ...context, db: client! });
          // the job goes with the handler's writes; if it is no longer ours, nothing of them commits
          const lockedBy = job.locked_by;
          if (lockedBy === null || !(await completeJobInTransaction(db, job.id, lockedBy))) {
            throw new JobTakenOver(`job ${job.id} is no longer held by ${String(lockedBy)}: its writes are rolled back`);
          }
        });
      } else {
        await definition.handler(payload, context);
      }
    } catch (error) {
      // not a failure: the job is another worker's now; failing it (guarded by the holder)
      // leaves that worker's job alone, where completing it would delete it
      if (error instanceof JobTakenOver) {
        jobLogger.warn('another worker holds this job now; stood down without completing it');
        throw error;
      }
      // graphile-worker keeps the job after its last attempt, quietly: make it loud
      if (job.attempts >= job.max_attempts) {
        jobLogger.error({ err: error }, 'job failed for good');
        await onLastFailure?.({ task: definition.task.name, jobId: job.id, attempts: job.attempts, error });
      } else {
        jobLogger.warn({ err: error }, 'job attempt failed; graphile-worker will retry it');
      }
      throw error;
    }
  };
  return (jobPayload, helpers) => {
    const { payload, traceparent } = takeTraceparent(jobPayload, contractDeclaresTraceparent);
    const workflowId = (payload as { workflowId?: unknown } | null)?.workflowId;
    const attributes = { 'ledgerbox.task': definition.task.name, 'ledgerbox.job.id': helpers.job.id, 'ledgerbox.job.attempt': helpers.job.attempts, 'ledgerbox.workflow.id': typeof workflowId === 'string' ? workflowId : undefined };
    return withRemoteParent(traceparent, () => withSpan(`ledgerbox.job ${definition.task.name}`, attributes, () => run(payload, helpers), 'consumer'));
  };
}

export interface LastFailure {
  task: string;
  jobId: string;
  attempts: number;
  error: unknown;
}
