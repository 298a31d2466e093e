import { array, assign, func, integer, object, optional, refine, size } from 'superstruct';
import { StorableText, Timestamp, validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { InvalidInputError, LedgerboxError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { toJobSpec } from './enqueue.js';
import { insertBatchRun } from './batch-queries.js';
import { addJobs, type JobSpec } from '../jobs/graphile-boundary.js';
import { JobDefaults, checkPayload, isTaskDefinition, type TaskDefinition } from '../jobs/tasks.js';

export interface FanOutOptions {
  /**
   * Spreads the run times evenly over `[startAt, startAt + spreadOver_ms)`: job i of n runs at
   * `startAt + floor(i × spreadOver_ms / n)` ms. At most `limits.fan_out_spread_ms_max` (7 days).
   * Default: 0, every job at `startAt`.
   */
  spreadOver_ms?: number;
  /** When the first job runs. Default: now, by this host's clock. */
  startAt?: Date | string;
  /**
   * Without `queueConcurrency`: the named queue every job goes to (they run one at a time).
   * With it: the prefix of the queues. Default: the task's queue, else none.
   */
  queue?: string;
  /**
   * At most this many of the jobs run at once: they go round-robin to the named queues
   * `${queue}:0` … `${queue}:${queueConcurrency - 1}`, each of which runs one job at a time.
   * Needs `queue`. From 1 to `limits.fan_out_queues_max`. Default: no limit of its own.
   */
  queueConcurrency?: number;
  /**
   * Gives each job the key `${jobKeyPrefix}${id}`, so running the same fan-out again replaces
   * its pending jobs instead of adding a second set. Default: no job keys.
   */
  jobKeyPrefix?: string;
  /** Lower runs first. Default: the task's, else 0. */
  priority?: number;
  /** Default: the task's, else graphile-worker's 25. */
  maxAttempts?: number;
  /**
   * Names the jobs as one batch run (`statements:2026-11-21`): once every one of them has
   * completed or failed for good, `summariseBatches` (every minute on the worker) records what
   * moved meanwhile, per currency, and how many jobs and workflows completed or failed, as an
   * info alert and on the `ledgerbox.batch_runs` row. 1 to 200 characters. Default: no batch.
   */
  batch?: string;
}

export interface FanOutResult {
  /** Jobs added (or, with `jobKeyPrefix`, replaced): one per id. */
  jobs: number;
  /** The run time of the first job (`startAt`). */
  firstRunAt: Date;
  /** The run time of the last job: before `startAt + spreadOver_ms` when that is more than 0. */
  lastRunAt: Date;
  /** With `batch`: the batch run's id (`ledgerbox.batch_runs.id`, a bigint as a string). */
  batchId?: string;
}

const Ids = size(array(), 1, limits.fan_out_ids_max);
const Id = refine(StorableText, 'entity id', (id) =>
  id.length >= 1 && id.length <= limits.key_length_max
    ? true
    : `an id is 1 to ${limits.key_length_max} characters, got ${describeValue(id)} (${id.length} characters)`,
);

const BatchName = refine(size(StorableText, 1, limits.key_length_max), 'batch name', (name) =>
  name.trim() === name && !/[\u0000-\u001f]/.test(name) ? true : `a batch name must not start or end with spaces or contain control characters, got ${describeValue(name)}`,
);

const Options = assign(
  JobDefaults,
  object({
    spreadOver_ms: optional(size(integer(), 0, limits.fan_out_spread_ms_max)),
    startAt: optional(Timestamp),
    queueConcurrency: optional(size(integer(), 1, limits.fan_out_queues_max)),
    jobKeyPrefix: optional(size(StorableText, 1, limits.key_length_max - 1)),
    batch: optional(BatchName),
  }),
);

/** graphile-worker's bound on a queue name, which the suffix `:<n>` must also fit in. */
const queueNameLengthMax = 100;

/**
 * Enqueues one small job per entity id, in bulk, in one transaction on the caller's handle:
 * all of them or none (inside the caller's transaction, they commit or roll back with it).
 * Every input and every payload is checked before anything is written; the jobs are then
 * inserted `limits.enqueue_batch_max` per statement.
 */
export async function fanOut<Payload>(
  db: DatabaseHandle,
  task: TaskDefinition<Payload>,
  ids: readonly string[],
  toPayload: (id: string) => Payload,
  options: FanOutOptions = {},
): Promise<FanOutResult> {
  const specs = checkedJobs(task, ids, toPayload, options);
  const batchName = options.batch; // checked by checkedJobs
  const inserts = Math.ceil(specs.length / limits.enqueue_batch_max);
  const { written, batchId } = await inTransaction(db, async (db) => {
    const jobIds: string[] = [];
    for (let insert = 0; insert < inserts; insert++) {
      const start = insert * limits.enqueue_batch_max;
      jobIds.push(...(await addJobs(db, specs.slice(start, start + limits.enqueue_batch_max), 'replace')));
    }
    // recorded with the jobs, so a batch exists exactly when its jobs do
    const batchId = batchName === undefined ? undefined : await insertBatchRun(db, { name: batchName, task: task.name, jobIds });
    return { written: jobIds.length, batchId };
  });
  return { jobs: written, firstRunAt: specs[0]!.runAt!, lastRunAt: specs[specs.length - 1]!.runAt!, ...(batchId === undefined ? {} : { batchId }) };
}

/**
 * Validates everything, calls toPayload once per id, and returns the jobs to add, in id order.
 * The options are checked once here, not once per job: per job, only the payload is.
 */
function checkedJobs<Payload>(
  task: TaskDefinition<Payload>,
  ids: readonly string[],
  toPayload: (id: string) => Payload,
  options: FanOutOptions,
): JobSpec[] {
  if (!isTaskDefinition(task)) {
    throw new LedgerboxError('unknown_task', `Expected \`task\` to be a task made by defineTask, got ${describeValue(task)}`, {
      details: { path: 'task' },
    });
  }
  // The bound first, so a huge list is refused before its items are looked at.
  validate(Ids, ids, 'ids');
  validate(array(Id), ids, 'ids');
  validate(func(), toPayload, 'toPayload');
  const checked = validate(Options, options, 'options');
  checkDistinct(ids);
  checkQueue(checked);
  checkJobKeys(ids, checked.jobKeyPrefix);

  const startAt_ms = (checked.startAt ?? new Date()).getTime();
  const spreadOver_ms = checked.spreadOver_ms ?? 0;
  const lastRunAt = new Date(startAt_ms + Math.floor(((ids.length - 1) * spreadOver_ms) / ids.length));
  if (Number.isNaN(lastRunAt.getTime())) {
    throw new InvalidInputError(`Invalid \`options.startAt\`: the jobs would run past the last date JavaScript can represent, got ${describeValue(checked.startAt)}`, ['options', 'startAt'], checked.startAt);
  }
  return ids.map((id, index) => {
    const jobOptions = {
      runAt: new Date(startAt_ms + Math.floor((index * spreadOver_ms) / ids.length)),
      queue: checked.queueConcurrency === undefined ? checked.queue : `${checked.queue}:${index % checked.queueConcurrency}`,
      jobKey: checked.jobKeyPrefix === undefined ? undefined : `${checked.jobKeyPrefix}${id}`,
      priority: checked.priority,
      maxAttempts: checked.maxAttempts,
    };
    const payload = toPayload(id); // the caller's own failure passes through as it is
    try {
      return toJobSpec(task, checkPayload(task, payload, `ids.${index}.payload`), jobOptions);
    } catch (error) {
      if (!(error instanceof InvalidInputError)) throw error;
      throw new InvalidInputError(`${error.message} (the payload toPayload returned for id ${describeValue(id)})`, error.path, error.value);
    }
  });
}

/** One job per entity: an id given twice is a mistake in the caller's query, not a second job. */
function checkDistinct(ids: readonly string[]): void {
  const firstIndex = new Map<string, number>();
  ids.forEach((id, index) => {
    const first = firstIndex.get(id);
    if (first !== undefined) {
      throw new InvalidInputError(`Invalid \`ids.${index}\`: id ${describeValue(id)} appears more than once (also \`ids.${first}\`); a fan-out adds one job per id`, ['ids', index], id);
    }
    firstIndex.set(id, index);
  });
}

function checkQueue(options: { queue?: string; queueConcurrency?: number }): void {
  if (options.queueConcurrency === undefined) return;
  if (options.queue === undefined) {
    throw new InvalidInputError(
      `Invalid \`options.queueConcurrency\`: it spreads jobs over the named queues \`<queue>:0\` … \`<queue>:${options.queueConcurrency - 1}\`, so it needs \`options.queue\`; got ${options.queueConcurrency} without a queue`,
      ['options', 'queueConcurrency'],
      options.queueConcurrency,
    );
  }
  const longest = `${options.queue}:${options.queueConcurrency - 1}`;
  if (longest.length > queueNameLengthMax) {
    throw new InvalidInputError(
      `Invalid \`options.queue\`: with queueConcurrency ${options.queueConcurrency} the queue name ${describeValue(longest)} would be ${longest.length} characters, at most ${queueNameLengthMax} allowed`,
      ['options', 'queue'],
      options.queue,
    );
  }
}

function checkJobKeys(ids: readonly string[], jobKeyPrefix: string | undefined): void {
  if (jobKeyPrefix === undefined) return;
  const index = ids.findIndex((id) => jobKeyPrefix.length + id.length > limits.key_length_max);
  if (index === -1) return;
  const id = ids[index]!;
  throw new InvalidInputError(
    `Invalid \`ids.${index}\`: with jobKeyPrefix ${describeValue(jobKeyPrefix)} the job key of id ${describeValue(id)} would be ${jobKeyPrefix.length + id.length} characters, at most ${limits.key_length_max} allowed`,
    ['ids', index],
    id,
  );
}
