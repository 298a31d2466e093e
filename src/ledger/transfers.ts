import { array, defaulted, object, optional, refine, size, unknown } from 'superstruct';
import { AccountKey, IdempotencyKey, Metadata, Timestamp, Uuid, validate } from '../contracts.js';
import { autocommitSession, inOneStatement, inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { InvalidInputError, LedgerboxError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { PositiveMoney, readMoney, type MoneyInput } from '../money/money.js';
import { checkJobs, type EnqueueOptions } from '../outbox/enqueue.js';
import type { JobSpec } from '../jobs/graphile-boundary.js';
import type { TaskDefinition } from '../jobs/tasks.js';
import { selectTransferById, selectTransferByKey, selectTransferReferencing, type PostingJobs } from './ledger-queries.js';
import { assertEffectiveNotBefore } from './effective-dates.js';
import { loadTransfer, resolveLegs, tryWriteInOneStatement, writeTransfer } from './posting.js';
import type { Transfer } from './types.js';

/** @internal */
export const Leg = refine(object({ from: AccountKey, to: AccountKey, amount: PositiveMoney }), 'distinct accounts', (leg) =>
  leg.from !== leg.to ? true : `a leg must move money between two different accounts, got ${describeValue(leg.from)} twice`,
);

/** One job given with a transfer, by its key set: its task, payload and options are checked by checkJobs next. */
const TransferJobEntry = object({ task: unknown(), payload: unknown(), options: optional(unknown()) });

/** @internal: also one element of postTransfers' batch. */
export const TransferInputContract = object({
  key: IdempotencyKey,
  legs: size(array(Leg), 1, limits.transfer_legs_max),
  metadata: defaulted(Metadata, () => ({})),
  effectiveAt: optional(Timestamp),
  jobs: optional(size(array(TransferJobEntry), 0, limits.enqueue_batch_max)),
});

/** A job that follows a transfer, as enqueueMany takes one. */
export interface TransferJob {
  /** A task made by defineTask. */
  task: TaskDefinition<any>;
  /** Checked against the task's contract and the identifiers-only rule, as enqueue checks it. */
  payload: unknown;
  /** enqueue's options: jobKey, jobKeyMode, runAt, priority, queue, maxAttempts. */
  options?: EnqueueOptions;
}

export interface TransferInput {
  /** Idempotency key: the same key always means the same transfer. */
  key: string;
  /** Each leg moves `amount` from one account to another of the same currency. */
  legs: { from: string; to: string; amount: MoneyInput }[];
  metadata?: Record<string, unknown>;
  /** When the money moved, for point-in-time balances; defaults to the insert time. */
  effectiveAt?: Date | string;
  /**
   * Jobs added in the same transaction as the transfer, only by the call that writes it: a
   * replay (`replayed: true`) adds none, so a retried request never enqueues its follow-up
   * twice. Checked as enqueue checks them before anything is written; a job that cannot be
   * added undoes the transfer. Not part of the request a replay is compared with.
   */
  jobs?: TransferJob[];
}

/**
 * The jobs of each transfer of one call, checked as enqueue checks them (checkJobs) before
 * anything is written: `specs[i]` are transfer i's rows for add_jobs. A call adds all the jobs
 * it adds in one statement, so it takes a job key once, one jobKeyMode, and at most
 * limits.enqueue_batch_max jobs. `path(transfer, job)` names a job in messages. @internal
 */
export function checkTransferJobs(
  jobsOf: readonly (readonly unknown[] | undefined)[],
  path: (transfer: number, job: number) => (string | number)[],
): { specs: JobSpec[][]; jobKeyMode: 'replace' | 'preserve_run_at' } {
  const lists = jobsOf.map((jobs) => (jobs ?? []) as readonly TransferJob[]);
  const total = lists.reduce((sum, jobs) => sum + jobs.length, 0);
  if (total > limits.enqueue_batch_max) {
    const where = path(0, 0).slice(0, 1);
    throw new InvalidInputError(`Invalid \`${where.join('.')}\`: ${total} jobs in one call, at most ${limits.enqueue_batch_max} allowed`, where, total);
  }
  // job by job, so a job key given twice is named below by its own full path
  const specs = lists.map((jobs, transfer) => jobs.map((job, index) => checkJobs([job], () => `${path(transfer, index).join('.')}.`)[0]!));
  const firstWithKey = new Map<string, string>();
  let jobKeyMode: 'replace' | 'preserve_run_at' | undefined;
  for (const [transfer, jobs] of lists.entries()) {
    for (const [index, job] of jobs.entries()) {
      const jobKey = specs[transfer]![index]!.jobKey;
      if (jobKey !== null) {
        const earlier = firstWithKey.get(jobKey);
        if (earlier !== undefined) {
          const where = [...path(transfer, index), 'options', 'jobKey'];
          throw new InvalidInputError(`Invalid \`${where.join('.')}\`: job key ${describeValue(jobKey)} is already \`${earlier}\`'s in this call`, where, jobKey);
        }
        firstWithKey.set(jobKey, path(transfer, index).join('.'));
      }
      const mode = job.options?.jobKeyMode ?? 'replace';
      if (jobKeyMode !== undefined && mode !== jobKeyMode) {
        const where = [...path(transfer, index), 'options', 'jobKeyMode'];
        throw new InvalidInputError(`Invalid \`${where.join('.')}\`: one call adds its jobs with one mode, got ${jobKeyMode} and ${mode}`, where, mode);
      }
      jobKeyMode = mode;
    }
  }
  return { specs, jobKeyMode: jobKeyMode ?? 'replace' };
}

/** Transfer `index`'s jobs as the posting adds them; undefined when it has none. @internal */
export function postingJobsOf(checked: { specs: JobSpec[][]; jobKeyMode: 'replace' | 'preserve_run_at' }, index: number): PostingJobs | undefined {
  const specs = checked.specs[index]!;
  return specs.length === 0 ? undefined : { specs, jobKeyMode: checked.jobKeyMode };
}

/**
 * Moves money: one or more legs, written atomically with balanced entries in each currency,
 * and the jobs that follow it (`jobs`) in the same transaction.
 * Replaying the same key with the same request returns the original transfer (`replayed: true`)
 * and adds no job.
 */
export async function postTransfer(db: DatabaseHandle, input: TransferInput): Promise<Transfer> {
  const request = validate(TransferInputContract, input, 'transfer');
  const jobs = postingJobsOf(checkTransferJobs([request.jobs], (_, job) => ['transfer', 'jobs', job]), 0);
  const legs = request.legs.map((leg) => ({ from: leg.from, to: leg.to, amount: readMoney(leg.amount)! }));
  const transfer = { key: request.key, kind: 'posted' as const, metadata: request.metadata, effectiveAt: request.effectiveAt };
  // one round trip on the handle as it is, jobs included; anything out of the ordinary (a
  // replay among them) takes the path below, which adds the jobs only if it writes the transfer
  const posted = await inOneStatement(db, (db) => tryWriteInOneStatement(db, { transfer, legs, jobs }));
  if (posted !== undefined) return posted;
  return inTransaction(db, async (db) => {
    const resolved = await resolveLegs(db, legs, (index) => `transfer.legs.${index}.amount`);
    return writeTransfer(db, { transfer, legs: resolved, phase: 'posted', jobs });
  });
}

const ReversalInput = object({
  key: IdempotencyKey,
  transferId: Uuid,
  metadata: defaulted(Metadata, () => ({})),
  effectiveAt: optional(Timestamp),
});

/**
 * Undoes a posted transfer with a new transfer whose legs run the other way, linked to the
 * original. The original stays as it was: entries are never changed. A transfer is reversed
 * at most once, and never effective before it (`effective_before_original`); left out, the
 * reversal's effective date is now, or the original's when that is later.
 */
export async function reverseTransfer(
  db: DatabaseHandle,
  input: { key: string; transferId: string; metadata?: Record<string, unknown>; effectiveAt?: Date | string },
): Promise<Transfer> {
  const request = validate(ReversalInput, input, 'reversal');
  return inTransaction(db, (db) => reverseInSession(db, request));
}

/** @internal */
export async function reverseInSession(
  db: Session,
  request: { key: string; transferId: string; metadata: Record<string, unknown>; effectiveAt?: Date | undefined },
): Promise<Transfer> {
  const row = await selectTransferById(db, request.transferId);
  if (row === undefined) throw transferNotFound({ id: request.transferId });
  if (row.kind !== 'posted' && row.kind !== 'post_hold') {
    throw new LedgerboxError('transfer_not_reversible', `Transfer ${row.id} is a ${row.kind}; only posted transfers can be reversed (void a hold instead)`, {
      details: { transferId: row.id, kind: row.kind },
    });
  }
  const original = await loadTransfer(db, row, false);
  const legs = await resolveLegs(
    db,
    original.legs.map((leg) => ({ from: leg.to, to: leg.from, amount: readMoney(leg.amount)! })),
    (index) => `reversal.legs.${index}.amount`,
  );
  return writeTransfer(db, {
    transfer: { key: request.key, kind: 'reversal', reversesId: row.id, metadata: request.metadata, effectiveAt: request.effectiveAt },
    legs,
    phase: 'posted',
    precheck: async (db) => {
      const reversal = await selectTransferReferencing(db, { reversesId: row.id });
      if (reversal !== undefined) {
        throw new LedgerboxError('transfer_already_reversed', `Transfer ${row.id} was already reversed by ${reversal.id} (key ${describeValue(reversal.key)})`, {
          details: { transferId: row.id, reversalId: reversal.id },
        });
      }
      assertEffectiveNotBefore(request.effectiveAt, row, 'reversal');
    },
  });
}

const TransferLookup = refine(object({ id: optional(Uuid), key: optional(IdempotencyKey) }), 'id or key', (value) =>
  (value.id === undefined) !== (value.key === undefined) ? true : `give exactly one of \`id\` and \`key\`, got ${describeValue(value)}`,
);

/** Reads a transfer by id or by idempotency key; `transfer_not_found` when there is none. */
export async function getTransfer(db: DatabaseHandle, lookup: { id: string } | { key: string }): Promise<Transfer> {
  const { id, key } = validate(TransferLookup, lookup, 'lookup');
  const session = autocommitSession(db);
  const row = id !== undefined ? await selectTransferById(session, id) : await selectTransferByKey(session, key!);
  if (row === undefined) throw transferNotFound(id !== undefined ? { id } : { key: key! });
  return loadTransfer(session, row, false);
}

function transferNotFound(lookup: { id: string } | { key: string }): LedgerboxError {
  const [field, value] = Object.entries(lookup)[0]!;
  return new LedgerboxError('transfer_not_found', `No transfer with ${field} ${describeValue(value)}`, { details: lookup });
}
