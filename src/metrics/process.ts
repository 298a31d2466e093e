import { Counter, Histogram, type Registry } from 'prom-client';
import { alertSeverity } from '../severities.js';

/** What became of one delivery of a workflow step (runStep). */
export type StepOutcomeLabel =
  /** its work committed (next step, done, or compensation finished) */
  | 'succeeded'
  /** it waits for a signal or a time; its job comes back */
  | 'waiting'
  /** a late or duplicate delivery: the step had a result or was no longer due */
  | 'already_done'
  /** the step declined (a `fail` outcome): the workflow fails and is compensated */
  | 'declined'
  /** the attempt threw; recorded, and retried or, on the last attempt, the workflow failed */
  | 'failed'
  /** this worker lacks the workflow's kind or version: left for another */
  | 'held_back'
  /** another worker holds the job now: stood down */
  | 'taken_over';

/** What runStep tells about the steps it runs. @internal */
export interface StepRecorder {
  step(kind: string, step: string, outcome: StepOutcomeLabel, startedAt?: Date): void;
}

/** What the worker tells about the jobs graphile-worker runs. @internal */
export interface JobRecorder {
  /** One attempt of a job ended: completed, or failed with `attempt` of `maxAttempts` used. */
  jobAttempt(task: string, failed: boolean, attempt: number, maxAttempts: number): void;
}

/**
 * The worker's own counters: updated as it runs, kept in memory (they start at 0 with each
 * process, as Prometheus counters do; use rate() / increase()).
 * @internal
 */
export function registerProcessMetrics(registry: Registry): StepRecorder & JobRecorder {
  const jobs = new Counter({
    name: 'ledgerbox_jobs_total',
    help: 'Job attempts this process ran, by task and outcome: completed; retried (failed, attempts left: graphile-worker runs it again); failed (failed on its last attempt: kept, failed for good). Workflow steps (ledgerbox:step) complete even when the step failed: their retries are ledgerbox\'s, counted in ledgerbox_steps_total.',
    labelNames: ['task', 'outcome'],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'ledgerbox_job_retries_total',
    help: 'Failed job attempts that graphile-worker will retry, by task.',
    labelNames: ['task'],
    registers: [registry],
  });
  const failedForGood = new Counter({
    name: 'ledgerbox_jobs_failed_permanently_total',
    help: 'Jobs whose last attempt failed (attempts exhausted), by task, with the severity of the job_failed alert each raised (warning: a host job carries no money).',
    labelNames: ['task', 'severity'],
    registers: [registry],
  });
  const steps = new Counter({
    name: 'ledgerbox_steps_total',
    help: 'Workflow step deliveries this process ran, by workflow kind, step and outcome (succeeded, waiting, already_done, declined, failed, held_back, taken_over).',
    labelNames: ['kind', 'step', 'outcome'],
    registers: [registry],
  });
  const stepDuration = new Histogram({
    name: 'ledgerbox_step_duration_seconds',
    help: 'How long a workflow step delivery took, from its job starting to its outcome committed (external calls included), by kind and step.',
    labelNames: ['kind', 'step'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return {
    jobAttempt(task, failed, attempt, maxAttempts) {
      if (!failed) {
        jobs.inc({ task, outcome: 'completed' });
      } else if (attempt < maxAttempts) {
        jobs.inc({ task, outcome: 'retried' });
        retries.inc({ task });
      } else {
        jobs.inc({ task, outcome: 'failed' });
        // the severity the runner's job_failed alert carries, from the same table
        failedForGood.inc({ task, severity: alertSeverity('job_failed') });
      }
    },
    step(kind, step, outcome, startedAt) {
      steps.inc({ kind, step, outcome });
      if (startedAt !== undefined) stepDuration.observe({ kind, step }, Math.max(0, (Date.now() - startedAt.getTime()) / 1000));
    },
  };
}
