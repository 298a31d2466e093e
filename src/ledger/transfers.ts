import { array, defaulted, object, optional, refine, size } from 'superstruct';
import { AccountKey, IdempotencyKey, Metadata, Timestamp, Uuid, validate } from '../contracts.js';
import { autocommitSession, inOneStatement, inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { LedgerboxError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { PositiveMoney, readMoney, type MoneyInput } from '../money/money.js';
import { selectTransferById, selectTransferByKey, selectTransferReferencing } from './ledger-queries.js';
import { loadTransfer, resolveLegs, tryWriteInOneStatement, writeTransfer } from './posting.js';
import type { Transfer } from './types.js';

/** @internal */
export const Leg = refine(object({ from: AccountKey, to: AccountKey, amount: PositiveMoney }), 'distinct accounts', (leg) =>
  leg.from !== leg.to ? true : `a leg must move money between two different accounts, got ${describeValue(leg.from)} twice`,
);

/** @internal: also one element of postTransfers' batch. */
export const TransferInputContract = object({
  key: IdempotencyKey,
  legs: size(array(Leg), 1, limits.transfer_legs_max),
  metadata: defaulted(Metadata, () => ({})),
  effectiveAt: optional(Timestamp),
});

export interface TransferInput {
  /** Idempotency key: the same key always means the same transfer. */
  key: string;
  /** Each leg moves `amount` from one account to another of the same currency. */
  legs: { from: string; to: string; amount: MoneyInput }[];
  metadata?: Record<string, unknown>;
  /** When the money moved, for point-in-time balances; defaults to the insert time. */
  effectiveAt?: Date | string;
}

/**
 * Moves money: one or more legs, written atomically with balanced entries in each currency.
 * Replaying the same key with the same request returns the original transfer (`replayed: true`).
 */
export async function postTransfer(db: DatabaseHandle, input: TransferInput): Promise<Transfer> {
  const request = validate(TransferInputContract, input, 'transfer');
  const legs = request.legs.map((leg) => ({ from: leg.from, to: leg.to, amount: readMoney(leg.amount)! }));
  const transfer = { key: request.key, kind: 'posted' as const, metadata: request.metadata, effectiveAt: request.effectiveAt };
  // one round trip on the handle as it is; anything out of the ordinary takes the path below
  const posted = await inOneStatement(db, (db) => tryWriteInOneStatement(db, { transfer, legs }));
  if (posted !== undefined) return posted;
  return inTransaction(db, async (db) => {
    const resolved = await resolveLegs(db, legs, (index) => `transfer.legs.${index}.amount`);
    return writeTransfer(db, { transfer, legs: resolved, phase: 'posted' });
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
 * at most once.
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
