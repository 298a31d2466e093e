import type { JobHelpers, Task } from 'graphile-worker';
import type { Logger } from '../logger.js';
import { checkPayload, type TaskDefinition } from '../outbox/tasks.js';
import { JobTakenOver } from '../workflows/run-step.js';

/** A host task: its definition (name and payload contract) and what to do with a job of it. */
export interface HostTask<Payload> {
  task: TaskDefinition<Payload>;
  handler: (payload: Payload, context: { logger: Logger; jobId: string; attempt: number; helpers: JobHelpers }) => Promise<void>;
}

/**
 * Wraps a handler so every job is checked against its task's contract before it runs, and logs
 * through a pino child bound to task, job id, attempt and (when the payload has one) workflow id.
 * @internal
 */
export function contractChecked<Payload>(definition: HostTask<Payload>, logger: Logger, onLastFailure?: (failure: LastFailure) => Promise<void>): Task {
  return async (rawPayload, helpers) => {
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
      await definition.handler(payload, { logger: jobLogger, jobId: job.id, attempt: job.attempts, helpers });
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
}

export interface LastFailure {
  task: string;
  jobId: string;
  attempts: number;
  error: unknown;
}
