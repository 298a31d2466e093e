import { array, assign, enums, object, optional, size, unknown } from 'superstruct';
import { StorableText, Timestamp, validate } from '../contracts.js';
import { inOneStatement, type DatabaseHandle } from '../db/handle.js';
import { InvalidInputError, LedgerboxError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { tryAddJobs, type JobSpec } from '../jobs/graphile-boundary.js';
import { JobDefaults, checkPayload, isTaskDefinition, type TaskDefinition } from '../jobs/tasks.js';
import { withSpan, withTraceparent } from '../tracing/tracer.js';

export interface EnqueueOptions {
  /** Deduplicates: a pending job with the same key is replaced (see graphile-worker's job keys). */
  jobKey?: string;
  /** 'replace' (default) or 'preserve_run_at' when a job with the same key is pending. */
  jobKeyMode?: 'replace' | 'preserve_run_at';
  /** Not before this time. Default: now. */
  runAt?: Date | string;
  /** Lower runs first. Default: 0. */
  priority?: number;
  /** Jobs in the same named queue run one at a time, in order. Default: none (parallel). */
  queue?: string;
  /** Default: the task's, else graphile-worker's 25. */
  maxAttempts?: number;
}

const Options = assign(
  JobDefaults,
  object({
    jobKey: optional(size(StorableText, 1, limits.key_length_max)),
    jobKeyMode: optional(enums(['replace', 'preserve_run_at'])),
    runAt: optional(Timestamp),
  }),
);

/** One job of enqueueMany, by its key set: its task, payload and options are checked next, one by one. */
const JobEntry = object({ task: unknown(), payload: unknown(), options: optional(unknown()) });

export interface EnqueuedJob {
  /** graphile-worker's job id (a bigint, as a string). */
  jobId: string;
}

/**
 * Adds a job through graphile_worker.add_job on the caller's handle. Inside the caller's
 * transaction the job commits, or rolls back, with everything else the caller wrote: the
 * ledger rows and the work that follows them can never disagree.
 */
export async function enqueue<Payload>(
  db: DatabaseHandle,
  task: TaskDefinition<Payload>,
  payload: Payload,
  options: EnqueueOptions = {},
): Promise<EnqueuedJob> {
  const [job] = await addChecked(db, [{ task, payload, options }], () => '');
  return job!;
}


/**
 * Adds many jobs in one statement (graphile_worker.add_jobs), all or none: for fan-out, one
 * small job per entity. Every payload is checked against its task's contract first.
 */
export async function enqueueMany(
  db: DatabaseHandle,
  jobs: readonly { task: TaskDefinition<any>; payload: unknown; options?: EnqueueOptions }[],
): Promise<EnqueuedJob[]> {
  validate(size(array(), 1, limits.enqueue_batch_max), jobs, 'jobs');
  validate(array(JobEntry), jobs, 'jobs');
  return addChecked(db, jobs, (index) => `jobs.${index}.`);
}

/** Checks every job, then adds them all in one statement. `prefix` names a job in messages. */
async function addChecked(
  db: DatabaseHandle,
  jobs: readonly { task: TaskDefinition<any>; payload: unknown; options?: EnqueueOptions }[],
  prefix: (index: number) => string,
): Promise<EnqueuedJob[]> {
  // the jobs are made inside the span, so they carry it as their parent
  const tasks = [...new Set(jobs.map((job) => (isTaskDefinition(job.task) ? job.task.name : '?')))].join(',');
  return withSpan('ledgerbox.enqueue', { 'ledgerbox.task': tasks, 'ledgerbox.job.count': jobs.length }, () => addCheckedInSpan(db, jobs, prefix), 'producer');
}

async function addCheckedInSpan(
  db: DatabaseHandle,
  jobs: readonly { task: TaskDefinition<any>; payload: unknown; options?: EnqueueOptions }[],
  prefix: (index: number) => string,
): Promise<EnqueuedJob[]> {
  const specs = checkJobs(jobs, prefix);
  const jobKeyModes = new Set(jobs.map((job) => job.options?.jobKeyMode ?? 'replace'));
  if (jobKeyModes.size > 1) {
    throw new InvalidInputError(`Invalid \`jobs.options.jobKeyMode\`: one batch takes one mode, got ${[...jobKeyModes].join(' and ')}`, ['jobs', 'options', 'jobKeyMode'], [...jobKeyModes]);
  }
  // one statement, no savepoint: a failure is undone inside it and the caller's transaction stays usable
  const ids = await inOneStatement(db, (db) => tryAddJobs(db, specs, [...jobKeyModes][0] as 'replace' | 'preserve_run_at'));
  return ids.map((jobId) => ({ jobId }));
}

/**
 * Checks jobs as enqueue checks them (a task made by defineTask, its payload against its
 * contract and the identifiers-only rule, known options, no job key twice) and returns the rows
 * add_jobs takes, before anything is written. For every call that adds jobs alongside its own
 * writes (a workflow step's result, a workflow's start). `prefix` names a job in messages.
 * @internal
 */
export function checkJobs(
  jobs: readonly { task: TaskDefinition<any>; payload: unknown; options?: EnqueueOptions }[],
  prefix: (index: number) => string,
): JobSpec[] {
  const specs = jobs.map((job, index): JobSpec => {
    const options = validate(Options, job.options ?? {}, `${prefix(index)}options`);
    if (!isTaskDefinition(job.task)) {
      throw new LedgerboxError('unknown_task', `Expected \`${prefix(index)}task\` to be a task made by defineTask, got ${describeValue(job.task)}`, {
        details: { path: `${prefix(index)}task` },
      });
    }
    const payload = checkPayload(job.task, job.payload, `${prefix(index)}payload`);
    return toJobSpec(job.task, payload, options);
  });
  // graphile-worker cannot replace the same job key twice in one statement
  const seen = new Set<string>();
  const repeatAt = specs.findIndex((spec) => spec.jobKey !== null && (seen.has(spec.jobKey) || (seen.add(spec.jobKey), false)));
  if (repeatAt !== -1) {
    const path = ['jobs', repeatAt, 'options', 'jobKey'];
    throw new InvalidInputError(`Invalid \`${path.join('.')}\`: job key ${describeValue(specs[repeatAt]!.jobKey)} appears more than once in one batch`, path, specs[repeatAt]!.jobKey);
  }
  return specs;
}

/**
 * The row add_jobs takes for a job whose options and payload are already checked: per-call
 * options over the task's defaults, and the payload with the active span's traceparent (the
 * job's span continues that trace; the worker takes it out before the task's contract checks
 * the payload). Shared by enqueue, enqueueMany, fanOut and every call that adds jobs with its
 * own writes. @internal
 */
export function toJobSpec(
  task: TaskDefinition<unknown>,
  payload: unknown,
  options: { queue?: string; runAt?: Date; maxAttempts?: number; jobKey?: string; priority?: number },
): JobSpec {
  return {
    task: task.name,
    payload: withTraceparent(payload),
    queue: options.queue ?? task.defaults.queue ?? null,
    runAt: options.runAt ?? null,
    maxAttempts: options.maxAttempts ?? task.defaults.maxAttempts ?? null,
    jobKey: options.jobKey ?? null,
    priority: options.priority ?? task.defaults.priority ?? null,
  };
}
