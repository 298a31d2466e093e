import { defaulted, integer, object, optional, refine, size } from 'superstruct';
import { AccountKey, IdempotencyKey, Metadata, Timestamp, Uuid, validate } from '../contracts.js';
import { inOneStatement, inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { LedgerboxError, describeValue } from '../errors.js';
import { limits } from '../limits.js';
import { PositiveMoney, readMoney, type MinorUnits, type MoneyInput } from '../money/money.js';
import { selectExpiredHoldIds, selectTransferById, selectTransferReferencing, type TransferRow } from './ledger-queries.js';
import { assertEffectiveNotBefore } from './effective-dates.js';
import { loadTransfer, resolveLegs, tryWriteInOneStatement, writeTransfer, type ResolvedLeg } from './posting.js';
import type { Transfer } from './types.js';

const HoldInput = refine(
  object({
    key: IdempotencyKey,
    from: AccountKey,
    to: AccountKey,
    amount: PositiveMoney,
    expiresAt: optional(Timestamp),
    metadata: defaulted(Metadata, () => ({})),
    effectiveAt: optional(Timestamp),
  }),
  'distinct accounts',
  (hold) => (hold.from !== hold.to ? true : `a hold must move money between two different accounts, got ${describeValue(hold.from)} twice`),
);

/**
 * Two-phase transfer, phase one: reserves `amount` from `from` for `to`. The reservation counts
 * against `from`'s available balance until the hold is posted (in full or in part) or voided,
 * exactly once. A hold with `expiresAt` is voided by expireHolds once that time has passed.
 */
export async function createHold(
  db: DatabaseHandle,
  input: {
    key: string;
    from: string;
    to: string;
    amount: MoneyInput;
    expiresAt?: Date | string;
    metadata?: Record<string, unknown>;
    effectiveAt?: Date | string;
  },
): Promise<Transfer> {
  const request = validate(HoldInput, input, 'hold');
  const hold = { ...request, amount: readMoney(request.amount)! };
  return (await inOneStatement(db, (db) => tryHold(db, hold))) ?? inTransaction(db, (db) => holdInSession(db, hold, { tried: true }));
}

type HoldRequest = { key: string; from: string; to: string; amount: MinorUnits; expiresAt?: Date | undefined; metadata: Record<string, unknown>; effectiveAt?: Date | undefined };

function tryHold(db: Session, request: HoldRequest): Promise<Transfer | undefined> {
  return tryWriteInOneStatement(db, {
    transfer: { key: request.key, kind: 'hold', expiresAt: request.expiresAt, metadata: request.metadata, effectiveAt: request.effectiveAt },
    legs: [{ from: request.from, to: request.to, amount: request.amount }],
  });
}

/** @internal */
export async function holdInSession(db: Session, request: HoldRequest, options: { tried?: boolean } = {}): Promise<Transfer> {
  const fast = options.tried ? undefined : await tryHold(db, request);
  if (fast !== undefined) return fast;
  const legs = await resolveLegs(db, [{ from: request.from, to: request.to, amount: request.amount }], () => 'hold.amount');
  return writeTransfer(db, {
    transfer: { key: request.key, kind: 'hold', expiresAt: request.expiresAt, metadata: request.metadata, effectiveAt: request.effectiveAt },
    legs,
    phase: 'pending',
  });
}

const PostHoldInput = object({
  key: IdempotencyKey,
  holdId: Uuid,
  amount: optional(PositiveMoney),
  metadata: defaulted(Metadata, () => ({})),
  effectiveAt: optional(Timestamp),
});

/**
 * Two-phase transfer, phase two: moves the held money (all of it, or `amount` of it; the rest
 * is released) and ends the hold. Refused once the hold is resolved or past its expiry, and
 * with an `effectiveAt` before the hold's (`effective_before_original`); left out, the date is
 * now, or the hold's own when the hold is dated later.
 */
export async function postHold(
  db: DatabaseHandle,
  input: { key: string; holdId: string; amount?: MoneyInput; metadata?: Record<string, unknown>; effectiveAt?: Date | string },
): Promise<Transfer> {
  const request = validate(PostHoldInput, input, 'post');
  const amount = request.amount === undefined ? undefined : readMoney(request.amount)!;
  const post = { ...request, amount };
  return (await inOneStatement(db, (db) => tryPostHold(db, post, []))) ?? inTransaction(db, (db) => postHoldInSession(db, post, [], { tried: true }));
}

type PostHoldRequest = { key: string; holdId: string; amount?: MinorUnits | undefined; metadata: Record<string, unknown>; effectiveAt?: Date | undefined };

/** A post in full in one statement; a partial one (rare) takes the TypeScript path. */
async function tryPostHold(db: Session, request: PostHoldRequest, alsoLegs: readonly ResolvedLeg[]): Promise<Transfer | undefined> {
  if (request.amount !== undefined) return undefined;
  return tryWriteInOneStatement(db, {
    transfer: { key: request.key, kind: 'post_hold', holdId: request.holdId, metadata: request.metadata, effectiveAt: request.effectiveAt },
    legs: alsoLegs.map((leg) => ({ from: leg.from, to: leg.to, amount: { amount: leg.amount, currency: leg.currency } })),
  });
}

/**
 * Posts a hold inside an open transaction; `alsoLegs` are posted in the same transfer (the
 * exchange settles its hold and its FX leg as one balanced transfer). @internal
 */
export async function postHoldInSession(
  db: Session,
  request: PostHoldRequest,
  alsoLegs: readonly ResolvedLeg[] = [],
  options: { tried?: boolean } = {},
): Promise<Transfer> {
  const fast = options.tried ? undefined : await tryPostHold(db, request, alsoLegs);
  if (fast !== undefined) return fast;
  const held = await loadHold(db, request.holdId);
  let amount = held.leg.amount;
  if (request.amount !== undefined) {
    const [requested] = await resolveLegs(db, [{ ...held.leg, amount: request.amount }], () => 'post.amount');
    if (requested!.currency !== held.leg.currency) {
      throw new LedgerboxError('currency_mismatch', `Hold ${held.row.id} holds ${held.leg.currency}, the amount to post is ${requested!.currency}`, {
        details: { holdId: held.row.id, holdCurrency: held.leg.currency, amountCurrency: requested!.currency },
      });
    }
    if (requested!.amount > held.leg.amount) {
      throw new LedgerboxError('post_exceeds_hold', `Cannot post ${requested!.amount} from hold ${held.row.id}, which holds ${held.leg.amount} ${held.leg.currency} (minor units)`, {
        details: { holdId: held.row.id, held: held.leg.amount.toString(), requested: requested!.amount.toString() },
      });
    }
    amount = requested!.amount;
  }
  return writeTransfer(db, {
    transfer: { key: request.key, kind: 'post_hold', holdId: held.row.id, metadata: request.metadata, effectiveAt: request.effectiveAt },
    legs: [{ ...held.leg, amount }, ...alsoLegs],
    phase: 'posted',
    release: held.leg,
    precheck: async (db) => {
      await assertHoldOpen(db, held.row, 'post');
      assertEffectiveNotBefore(request.effectiveAt, held.row, 'post');
    },
  });
}

const VoidHoldInput = object({
  key: IdempotencyKey,
  holdId: Uuid,
  metadata: defaulted(Metadata, () => ({})),
});

/**
 * Cancels a pending hold: the reserved money becomes available again. Effective now, or at the
 * hold's own effective date when the hold is dated later: never before the hold.
 */
export async function voidHold(
  db: DatabaseHandle,
  input: { key: string; holdId: string; metadata?: Record<string, unknown> },
): Promise<Transfer> {
  const request = validate(VoidHoldInput, input, 'void');
  return (
    (await inOneStatement(db, (db) => tryVoid(db, request.key, request.holdId, 'voided', request.metadata))) ??
    inTransaction(db, (db) => voidOne(db, request.key, request.holdId, 'voided', request.metadata, { tried: true }))
  );
}

const ExpireInput = object({
  now: optional(Timestamp),
  limit: defaulted(size(integer(), 1, limits.expire_holds_batch_max), limits.expire_holds_batch_max),
});

/**
 * Voids every pending hold whose expiry has passed (at most `limit` per call), each in its own
 * transaction when given a pool. The job runner calls this on a schedule. Returns the voids.
 */
export async function expireHolds(db: DatabaseHandle, input: { now?: Date | string; limit?: number } = {}): Promise<Transfer[]> {
  const request = validate(ExpireInput, input, 'expire');
  const now = request.now ?? new Date();
  const holdIds = await inTransaction(db, (db) => selectExpiredHoldIds(db, now, request.limit));
  const voids: Transfer[] = [];
  for (const holdId of holdIds) {
    const voided = await inTransaction(db, async (db) => {
      return voidOne(db, `ledgerbox:expire:${holdId}`, holdId, 'expired', {});
    }).catch((error: unknown) => {
      // Another expirer, or a post, resolved it since the scan: nothing left to do.
      if (error instanceof LedgerboxError && error.code === 'hold_already_resolved') return undefined;
      throw error;
    });
    if (voided !== undefined && !voided.replayed) voids.push(voided);
  }
  return voids;
}

/** @internal */
export async function voidOne(
  db: Session,
  key: string,
  holdId: string,
  reason: 'voided' | 'expired',
  metadata: Record<string, unknown>,
  options: { tried?: boolean } = {},
): Promise<Transfer> {
  const fast = options.tried ? undefined : await tryVoid(db, key, holdId, reason, metadata);
  if (fast !== undefined) return fast;
  const held = await loadHold(db, holdId);
  return writeTransfer(db, {
    transfer: { key, kind: 'void_hold', holdId: held.row.id, voidReason: reason, metadata },
    legs: [],
    phase: 'posted',
    release: held.leg,
    precheck: (db) => assertHoldOpen(db, held.row, 'void'),
  });
}

function tryVoid(db: Session, key: string, holdId: string, reason: 'voided' | 'expired', metadata: Record<string, unknown>): Promise<Transfer | undefined> {
  return tryWriteInOneStatement(db, { transfer: { key, kind: 'void_hold', holdId, voidReason: reason, metadata }, legs: [] });
}

async function loadHold(db: Session, holdId: string): Promise<{ row: TransferRow; leg: ResolvedLeg }> {
  const row = await selectTransferById(db, holdId);
  if (row === undefined || row.kind !== 'hold') {
    throw new LedgerboxError('hold_not_found', `No hold with id ${describeValue(holdId)}${row ? ` (it is a ${row.kind} transfer)` : ''}`, {
      details: { holdId },
    });
  }
  const hold = await loadTransfer(db, row, false);
  const [leg] = await resolveLegs(db, hold.legs.map((leg) => ({ from: leg.from, to: leg.to, amount: readMoney(leg.amount)! })), () => 'hold.amount');
  return { row, leg: leg! };
}

/** Runs with the hold's accounts locked, so no other post or void can slip in between. */
async function assertHoldOpen(db: Session, hold: TransferRow, action: 'post' | 'void'): Promise<void> {
  const resolution = await selectTransferReferencing(db, { holdId: hold.id });
  if (resolution !== undefined) {
    const status = resolution.kind === 'post_hold' ? 'posted' : resolution.void_reason;
    throw new LedgerboxError('hold_already_resolved', `Hold ${hold.id} is already ${status} (by ${resolution.id}, key ${describeValue(resolution.key)})`, {
      details: { holdId: hold.id, status, resolvedBy: resolution.id },
    });
  }
  if (action === 'post' && hold.expires_at !== null && hold.expires_at.getTime() <= Date.now()) {
    throw new LedgerboxError('hold_expired', `Hold ${hold.id} expired at ${hold.expires_at.toISOString()}; it can only be voided`, {
      details: { holdId: hold.id, expiresAt: hold.expires_at.toISOString() },
    });
  }
}
