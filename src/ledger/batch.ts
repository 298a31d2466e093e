import { array, size } from 'superstruct';
import { validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { InvalidInputError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { readMoney } from '../money/money.js';
import { resolveLegs, writeTransfers, type PostingRequest } from './posting.js';
import { TransferInputContract, checkTransferJobs, postingJobsOf, type TransferInput } from './transfers.js';
import type { Transfer } from './types.js';

// The same contract as postTransfer's input, element by element, so paths read
// `transfers.3.legs.0.amount`.
const TransferBatch = size(array(TransferInputContract), 1, limits.transfer_batch_max);

interface BatchItem {
  index: number;
  request: PostingRequest;
}

/**
 * Posts many transfers in one transaction, all or nothing: the caller's (under a savepoint)
 * or one ledgerbox owns. Every account of the batch is locked once, in ascending id order;
 * funds are checked cumulatively in the given order. A key already posted with the same
 * request is replayed (`replayed: true`), moves nothing and adds none of its jobs; the jobs of
 * the transfers written are added in the statement that writes their entries. Returns the
 * transfers in input order.
 */
export async function postTransfers(db: DatabaseHandle, transfers: TransferInput[]): Promise<Transfer[]> {
  const requests = validate(TransferBatch, transfers, 'transfers');
  assertDistinctKeys(requests.map((request) => request.key));
  const jobs = checkTransferJobs(
    requests.map((request) => request.jobs),
    (transfer, job) => ['transfers', transfer, 'jobs', job],
  );
  return inTransaction(db, async (db) => {
    const legPaths = requests.flatMap((request, index) => request.legs.map((_, leg) => `transfers.${index}.legs.${leg}.amount`));
    // One resolveLegs call for the whole batch: each currency is read once.
    const resolved = await resolveLegs(
      db,
      requests.flatMap((request) => request.legs.map((leg) => ({ from: leg.from, to: leg.to, amount: readMoney(leg.amount)! }))),
      (flatIndex) => legPaths[flatIndex]!,
    );
    let next = 0;
    const items: BatchItem[] = requests.map((request, index) => {
      const legs = resolved.slice(next, (next += request.legs.length));
      return {
        index,
        request: {
          transfer: { key: request.key, kind: 'posted', metadata: request.metadata, effectiveAt: request.effectiveAt },
          legs,
          phase: 'posted',
          jobs: postingJobsOf(jobs, index),
        },
      };
    });
    return writeTransfers(db, items.map((item) => item.request), { batch: true });
  });
}

function assertDistinctKeys(keys: readonly string[]): void {
  const firstAt = new Map<string, number>();
  for (const [index, key] of keys.entries()) {
    const earlier = firstAt.get(key);
    if (earlier !== undefined) {
      throw new InvalidInputError(
        `Invalid \`transfers.${index}.key\`: idempotency key ${describeValue(key)} is already used by \`transfers.${earlier}\` in this batch`,
        ['transfers', index, 'key'],
        key,
      );
    }
    firstAt.set(key, index);
  }
}
