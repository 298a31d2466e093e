import { array, size } from 'superstruct';
import { validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { InvalidInputError, LedgerboxError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { int8_max, readMoney } from '../money/money.js';
import {
  insertTransfers,
  selectTransfersByKeys,
  type AccountRow,
  type NewEntry,
} from './ledger-queries.js';
import { lockLegAccounts, resolveLegs, toTransfer, writeTransfer, type PostingRequest } from './posting.js';
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
    return writeBatch(db, items, jobs.jobKeyMode);
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

async function writeBatch(db: Session, items: readonly BatchItem[], jobKeyMode: 'replace' | 'preserve_run_at'): Promise<Transfer[]> {
  const byKey = await lockLegAccounts(db, items.flatMap((item) => item.request.legs));

  // Under the locks, as in writeTransfer. Keys already written go through writeTransfer itself,
  // so a replay is compared exactly as a single postTransfer compares it (replays are rare).
  const results = new Map<number, Transfer>();
  const written = new Set((await selectTransfersByKeys(db, items.map((item) => item.request.transfer.key))).map((row) => row.key));
  for (const item of items) {
    if (written.has(item.request.transfer.key)) results.set(item.index, await writeTransfer(db, item.request));
  }
  const fresh = items.filter((item) => !results.has(item.index));
  if (fresh.length === 0) return items.map((item) => results.get(item.index)!);

  const entries = fresh.map((item) => entriesOf(item, byKey));
  assertFundsInOrder(fresh, byKey);

  // Every fresh transfer, its entries and the jobs of the transfers written here (and of no
  // replay) in one statement, checked by the database once for the statement
  // (migrations/0012_set_based_posting.sql); the cached balances follow in it, by trigger.
  const rows = await insertTransfers(
    db,
    fresh.map((item) => item.request.transfer),
    fresh.flatMap((item, position) => entries[position]!.map((entry) => ({ ...entry, transferKey: item.request.transfer.key }))),
    { specs: fresh.flatMap((item) => item.request.jobs?.specs ?? []), jobKeyMode },
  );
  const rowByKey = new Map(rows.map((row) => [row.key, row]));
  const raced = fresh.find((item) => !rowByKey.has(item.request.transfer.key));
  if (raced !== undefined) {
    // Written by a concurrent call since our lookup: writeTransfer replays it or reports the
    // conflict; either way the batch as computed is stale, and nothing of it may commit.
    await writeTransfer(db, raced.request);
    throw new LedgerboxError('transaction_conflict', `Idempotency key ${describeValue(raced.request.transfer.key)} was written concurrently; retry the batch`, {
      retryable: true,
      details: { transfer: raced.index },
    });
  }
  for (const item of fresh) results.set(item.index, toTransfer(rowByKey.get(item.request.transfer.key)!, item.request.legs, [...byKey.values()], false));
  return items.map((item) => results.get(item.index)!);
}

function entriesOf(item: BatchItem, byKey: Map<string, AccountRow>): NewEntry[] {
  return item.request.legs.flatMap((leg, index) => {
    const from = byKey.get(leg.from)!;
    const to = byKey.get(leg.to)!;
    for (const account of [from, to]) {
      if (account.currency !== leg.currency) {
        throw new LedgerboxError(
          'currency_mismatch',
          `Transfer ${item.index}, leg ${index} moves ${leg.currency}, but account ${describeValue(account.key)} holds ${account.currency}`,
          { details: { transfer: item.index, leg: index, account: account.key, accountCurrency: account.currency, legCurrency: leg.currency } },
        );
      }
    }
    return [
      { leg: index, accountId: from.id, currency: leg.currency, amount: -leg.amount },
      { leg: index, accountId: to.id, currency: leg.currency, amount: leg.amount },
    ];
  });
}

/**
 * writeTransfer's funds rule applied transfer by transfer over running balances, so a transfer
 * that relies on money an earlier one in the batch moved is judged as if they were posted one
 * after another. The account_available_not_negative constraint enforces it again.
 */
function assertFundsInOrder(items: readonly BatchItem[], byKey: Map<string, AccountRow>): void {
  const posted = new Map([...byKey.values()].map((account) => [account.key, account.posted_balance]));
  for (const item of items) {
    const changes = new Map<string, bigint>();
    for (const leg of item.request.legs) {
      changes.set(leg.from, (changes.get(leg.from) ?? 0n) - leg.amount);
      changes.set(leg.to, (changes.get(leg.to) ?? 0n) + leg.amount);
    }
    for (const [key, change] of changes) {
      if (change === 0n) continue;
      const account = byKey.get(key)!;
      const before = posted.get(key)!;
      const after = before + change;
      if (after > int8_max || after < -int8_max) {
        throw new LedgerboxError(
          'amount_out_of_range',
          `Transfer ${item.index}: account ${describeValue(key)} would hold more than a PostgreSQL bigint can (${int8_max} minor units)`,
          { details: { transfer: item.index, account: key, currency: account.currency } },
        );
      }
      const availableBefore = before - account.pending_outgoing;
      const availableAfter = after - account.pending_outgoing;
      if (!account.allow_negative && availableAfter < 0n && availableAfter < availableBefore) {
        throw new LedgerboxError(
          'insufficient_funds',
          `Transfer ${item.index}: account ${describeValue(key)} has ${availableBefore} ${account.currency} (minor units) available after the transfers before it, needs ${-change}`,
          {
            details: {
              transfer: item.index,
              account: key,
              currency: account.currency,
              available: availableBefore.toString(),
              requested: (-change).toString(),
            },
          },
        );
      }
      posted.set(key, after);
    }
  }
}
