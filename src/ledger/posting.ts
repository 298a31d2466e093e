import type { Session } from '../db/handle.js';
import { IdempotencyConflictError, LedgerboxError, describeValue } from '../errors.js';
import { int8_max, toDinero, toLedgerMinorUnits, type MinorUnits } from '../money/money.js';
import {
  insertTransfers,
  lockAccountsByKey,
  selectCurrency,
  selectEntriesOfTransfer,
  selectTransfersByKeys,
  tryPostTransfer,
  type LockedAccountRow,
  type CurrencyRow,
  type NewEntry,
  type NewTransfer,
  type PostingJobs,
  type TransferRow,
} from './ledger-queries.js';
import type { Transfer, TransferKind } from './types.js';
import { canonicalJson } from './canonical-json.js';

/** A leg with its amount already in the ledger's minor units. @internal */
export interface ResolvedLeg {
  from: string;
  to: string;
  currency: string;
  amount: bigint;
}

/**
 * What one ledger call writes. Every call that moves money goes through writeTransfer, so
 * locking, the funds check, idempotency and the balance cache have exactly one implementation.
 * @internal
 */
export interface PostingRequest {
  transfer: NewTransfer;
  legs: readonly ResolvedLeg[];
  /** Holds reserve (pending); everything else moves posted money. */
  phase: 'posted' | 'pending';
  /** A hold's reservation that this transfer releases (post or void). */
  release?: ResolvedLeg;
  /** Runs after the accounts are locked and before anything is written; may throw. */
  precheck?: (db: Session) => Promise<void>;
  /** Added with the transfer when this call writes it; a replay adds none. */
  jobs?: PostingJobs | undefined;
}

/** Resolves every amount to the ledger's minor units, rejecting unknown currencies. @internal */
export async function resolveLegs(
  db: Session,
  legs: readonly { from: string; to: string; amount: MinorUnits }[],
  amountPath: (index: number) => string,
): Promise<ResolvedLeg[]> {
  const currencies = new Map<string, CurrencyRow>();
  const resolved: ResolvedLeg[] = [];
  for (const [index, leg] of legs.entries()) {
    const code = leg.amount.currency;
    let currency = currencies.get(code);
    if (currency === undefined) {
      currency = await selectCurrency(db, code);
      if (currency === undefined) {
        throw new LedgerboxError('unknown_currency', `Unknown currency ${describeValue(code)} at \`${amountPath(index)}\`: define it with defineCurrency first`, {
          details: { currency: code },
        });
      }
      currencies.set(code, currency);
    }
    const amount = toLedgerMinorUnits(leg.amount, currency);
    if (typeof amount === 'string') {
      throw new LedgerboxError('currency_exponent_mismatch', `Invalid \`${amountPath(index)}\`: ${amount}`, {
        details: { currency: code },
      });
    }
    resolved.push({ from: leg.from, to: leg.to, currency: code, amount });
  }
  return resolved;
}

/**
 * Locks every account the legs name, once, in the one global order (ascending id), and
 * refuses a key with no account. @internal
 */
export async function lockLegAccounts(db: Session, legs: readonly ResolvedLeg[]): Promise<Map<string, LockedAccountRow>> {
  const keys = [...new Set(legs.flatMap((leg) => [leg.from, leg.to]))];
  const byKey = new Map((await lockAccountsByKey(db, keys)).map((account) => [account.key, account]));
  const missing = keys.filter((key) => !byKey.has(key));
  if (missing.length > 0) {
    throw new LedgerboxError('account_not_found', `No account with key ${missing.map((key) => describeValue(key)).join(', ')}`, {
      details: { accounts: missing },
    });
  }
  return byKey;
}

/**
 * The common postings (a transfer, a hold, a hold's post in full or its void) in one statement
 * on the server (ledgerbox.try_post_transfer), which writes what writeTransfer writes and
 * checks nothing itself: the database's rules refuse what must not be written. Undefined when
 * it wrote nothing and left the case to writeTransfer: a replay, a refusal, anything unusual,
 * so every error is explained here, once. On a pool the statement is its own transaction;
 * inside the caller's it needs no savepoint: the function never fails, it undoes its own
 * writes. `jobs` are added by the same statement when it writes the transfer; a job refused
 * undoes it too.
 * @internal
 */
export async function tryWriteInOneStatement(
  db: Session,
  request: { transfer: NewTransfer; legs: readonly { from: string; to: string; amount: MinorUnits }[]; jobs?: PostingJobs | undefined },
): Promise<Transfer | undefined> {
  const posted = await tryPostTransfer(db, request);
  if (posted === undefined) return undefined;
  const currencies = new Map(posted.currencies.map((currency) => [currency.code, currency]));
  return toTransferWithCurrencies(posted.transfer, posted.legs, currencies, false);
}

export async function writeTransfer(db: Session, request: PostingRequest): Promise<Transfer> {
  return (await writeTransfers(db, [request], { batch: false }))[0]!;
}

/**
 * The one TypeScript posting path, for one transfer (writeTransfer) or a batch (postTransfers):
 * every account locked once in the one global order, replays found under the locks, each
 * transfer's precheck, then its refusals explained before anything is written (currencies,
 * funds judged transfer by transfer over running balances, so a transfer that relies on money
 * an earlier one in the batch moved is judged as if they were posted one after another), and
 * every fresh transfer written in one statement. The database enforces the same rules again
 * (migrations/0012_set_based_posting.sql); what is checked here is for the error that says
 * which account and by how much. In a batch, messages and details name the transfer's index,
 * and a key written concurrently fails the whole batch as `transaction_conflict`.
 * @internal
 */
export async function writeTransfers(db: Session, requests: readonly PostingRequest[], options: { batch: boolean }): Promise<Transfer[]> {
  const byKey = await lockLegAccounts(db, requests.flatMap((request) => [...request.legs, ...(request.release ? [request.release] : [])]));
  const accounts = [...byKey.values()];

  // Checked under the locks, so a concurrent call with the same key that committed while we
  // waited is seen here (one round trip: replays are rare, first calls are not).
  const earlier = new Map((await selectTransfersByKeys(db, requests.map((request) => request.transfer.key))).map((row) => [row.key, row]));
  const results = new Map<number, Transfer>();
  for (const [index, request] of requests.entries()) {
    const row = earlier.get(request.transfer.key);
    if (row !== undefined) results.set(index, await replay(db, row, request));
  }
  const fresh = [...requests.entries()].filter(([index]) => !results.has(index));
  if (fresh.length > 0) {
    for (const [, request] of fresh) await request.precheck?.(db);
    const entries = fresh.map(([index, request]) => entriesOf(request.legs, byKey, options.batch ? index : undefined));
    assertFundsInOrder(fresh, byKey, options.batch);

    // The transfers, their entries and their jobs in one statement; the cached balances follow
    // in it, by trigger: what was predicted above is what the database now enforces. Jobs only
    // when every transfer is written, so never on a replay.
    const withJobs = fresh.filter(([, request]) => request.jobs !== undefined && request.jobs.specs.length > 0);
    const rows = await insertTransfers(
      db,
      fresh.map(([, request]) => request.transfer),
      fresh.flatMap(([, request], position) => entries[position]!.map((entry) => ({ ...entry, transferKey: request.transfer.key }))),
      withJobs.length === 0 ? undefined : { specs: withJobs.flatMap(([, request]) => request.jobs!.specs), jobKeyMode: withJobs[0]![1].jobs!.jobKeyMode },
    );
    const rowByKey = new Map(rows.map((row) => [row.key, row]));
    for (const [index, request] of fresh) {
      const row = rowByKey.get(request.transfer.key);
      if (row !== undefined) {
        results.set(index, toTransfer(row, request.legs, accounts, false));
        continue;
      }
      // Written by a concurrent call since our lookup (nothing of this statement was written):
      // the same request replays, another one is an idempotency conflict.
      const winner = (await selectTransfersByKeys(db, [request.transfer.key]))[0];
      if (winner === undefined) throw new LedgerboxError('transaction_conflict', 'Idempotency key vanished during insert', { retryable: true });
      const replayed = await replay(db, winner, request);
      if (!options.batch) return [replayed];
      // In a batch the rest was computed on stale balances: nothing of it may commit.
      throw new LedgerboxError('transaction_conflict', `Idempotency key ${describeValue(request.transfer.key)} was written concurrently; retry the batch`, {
        retryable: true,
        details: { transfer: index },
      });
    }
  }
  return requests.map((_, index) => results.get(index)!);
}

function entriesOf(legs: readonly ResolvedLeg[], byKey: Map<string, LockedAccountRow>, transfer: number | undefined): NewEntry[] {
  return legs.flatMap((leg, index) => {
    const from = byKey.get(leg.from)!;
    const to = byKey.get(leg.to)!;
    for (const account of [from, to]) {
      if (account.currency !== leg.currency) {
        throw new LedgerboxError(
          'currency_mismatch',
          `${transfer === undefined ? 'Leg' : `Transfer ${transfer}, leg`} ${index} moves ${leg.currency}, but account ${describeValue(account.key)} holds ${account.currency}`,
          { details: { ...(transfer === undefined ? {} : { transfer }), leg: index, account: account.key, accountCurrency: account.currency, legCurrency: leg.currency } },
        );
      }
    }
    return [
      { leg: index, accountId: from.id, currency: leg.currency, amount: -leg.amount },
      { leg: index, accountId: to.id, currency: leg.currency, amount: leg.amount },
    ];
  });
}

function balanceChanges(request: PostingRequest): Map<string, { posted: bigint; pendingIncoming: bigint; pendingOutgoing: bigint }> {
  const changes = new Map<string, { posted: bigint; pendingIncoming: bigint; pendingOutgoing: bigint }>();
  const change = (key: string) => {
    let found = changes.get(key);
    if (found === undefined) {
      found = { posted: 0n, pendingIncoming: 0n, pendingOutgoing: 0n };
      changes.set(key, found);
    }
    return found;
  };
  for (const leg of request.legs) {
    if (request.phase === 'posted') {
      change(leg.from).posted -= leg.amount;
      change(leg.to).posted += leg.amount;
    } else {
      change(leg.from).pendingOutgoing += leg.amount;
      change(leg.to).pendingIncoming += leg.amount;
    }
  }
  if (request.release) {
    change(request.release.from).pendingOutgoing -= request.release.amount;
    change(request.release.to).pendingIncoming -= request.release.amount;
  }
  return changes;
}

/**
 * The rule of the account_available_not_negative constraint (and bigint's range), checked first
 * for a clear error, transfer by transfer over the balances the transfers before it leave.
 */
function assertFundsInOrder(requests: readonly (readonly [number, PostingRequest])[], byKey: Map<string, LockedAccountRow>, batch: boolean): void {
  const running = new Map([...byKey.values()].map((account) => [account.key, { posted: account.posted_balance, pendingIncoming: account.pending_incoming, pendingOutgoing: account.pending_outgoing }]));
  for (const [index, request] of requests) {
    const prefix = batch ? `Transfer ${index}: account` : 'Account';
    const where = batch ? { transfer: index } : {};
    for (const [key, change] of balanceChanges(request)) {
      if (change.posted === 0n && change.pendingIncoming === 0n && change.pendingOutgoing === 0n) continue;
      const account = byKey.get(key)!;
      const before = running.get(key)!;
      const after = { posted: before.posted + change.posted, pendingIncoming: before.pendingIncoming + change.pendingIncoming, pendingOutgoing: before.pendingOutgoing + change.pendingOutgoing };
      if ([after.posted, after.pendingIncoming, after.pendingOutgoing].some((value) => value > int8_max || value < -int8_max)) {
        throw new LedgerboxError('amount_out_of_range', `${prefix} ${describeValue(key)} would hold more than a PostgreSQL bigint can (${int8_max} minor units)`, {
          details: { ...where, account: key, currency: account.currency },
        });
      }
      const availableBefore = before.posted - before.pendingOutgoing;
      const availableAfter = after.posted - after.pendingOutgoing;
      if (!account.allow_negative && availableAfter < 0n && availableAfter < availableBefore) {
        throw new LedgerboxError(
          'insufficient_funds',
          `${prefix} ${describeValue(key)} has ${availableBefore} ${account.currency} (minor units) available${batch ? ' after the transfers before it' : ''}, needs ${availableBefore - availableAfter}`,
          {
            details: {
              ...where,
              account: key,
              currency: account.currency,
              available: availableBefore.toString(),
              requested: (availableBefore - availableAfter).toString(),
            },
          },
        );
      }
      running.set(key, after);
    }
  }
}

async function replay(db: Session, existing: TransferRow, request: PostingRequest): Promise<Transfer> {
  const { transfer, legs } = await loadTransferAndLegs(db, existing, true);
  const requested = fingerprint({
    kind: request.transfer.kind,
    legs: request.legs,
    metadata: request.transfer.metadata,
    holdId: request.transfer.holdId ?? null,
    reversesId: request.transfer.reversesId ?? null,
    expiresAt: request.transfer.expiresAt ?? null,
    effectiveAt: request.transfer.effectiveAt,
  });
  const found = fingerprint({
    kind: transfer.kind,
    legs,
    metadata: transfer.metadata,
    holdId: transfer.holdId,
    reversesId: transfer.reversesId,
    expiresAt: transfer.expiresAt,
    effectiveAt: transfer.effectiveAt,
  });
  for (const [field, value] of Object.entries(requested)) {
    if (value !== undefined && value !== found[field]) {
      throw new IdempotencyConflictError(request.transfer.key, field, found[field], value);
    }
  }
  return transfer;
}

function fingerprint(request: {
  kind: TransferKind;
  legs: readonly ResolvedLeg[];
  metadata: Record<string, unknown>;
  holdId: string | null;
  reversesId: string | null;
  expiresAt: Date | null;
  effectiveAt: Date | undefined;
}): Record<string, string | undefined> {
  return {
    kind: request.kind,
    legs: request.legs.map((leg) => `${leg.from} -> ${leg.to}: ${leg.amount} ${leg.currency}`).join('; '),
    metadata: canonicalJson(request.metadata),
    holdId: String(request.holdId),
    reversesId: String(request.reversesId),
    expiresAt: request.expiresAt?.toISOString() ?? 'null',
    // An effective date the caller left out defaulted to the insert time: nothing to compare.
    effectiveAt: request.effectiveAt?.toISOString(),
  };
}

/** Reads a transfer and its legs back from the database. @internal */
export async function loadTransfer(db: Session, row: TransferRow, replayed: boolean): Promise<Transfer> {
  return (await loadTransferAndLegs(db, row, replayed)).transfer;
}

async function loadTransferAndLegs(
  db: Session,
  row: TransferRow,
  replayed: boolean,
): Promise<{ transfer: Transfer; legs: ResolvedLeg[] }> {
  const entries = await selectEntriesOfTransfer(db, row.id);
  const legs: ResolvedLeg[] = [];
  const currencies = new Map<string, CurrencyRow>();
  for (const entry of entries) {
    currencies.set(entry.currency, { code: entry.currency, base: entry.base, exponent: entry.exponent });
    const leg = (legs[entry.leg] ??= { from: '', to: '', currency: entry.currency, amount: 0n });
    if (entry.amount < 0n) leg.from = entry.account_key;
    else {
      leg.to = entry.account_key;
      leg.amount = entry.amount;
    }
  }
  return { transfer: toTransferWithCurrencies(row, legs, currencies, replayed), legs };
}

/** @internal */
export function toTransfer(row: TransferRow, legs: readonly ResolvedLeg[], accounts: readonly LockedAccountRow[], replayed: boolean): Transfer {
  const currencies = new Map(accounts.map((a) => [a.currency, { code: a.currency, base: a.base, exponent: a.exponent }]));
  return toTransferWithCurrencies(row, legs, currencies, replayed);
}

function toTransferWithCurrencies(
  row: TransferRow,
  legs: readonly ResolvedLeg[],
  currencies: Map<string, CurrencyRow>,
  replayed: boolean,
): Transfer {
  return {
    id: row.id,
    key: row.key,
    kind: row.kind as TransferKind,
    legs: legs.map((leg) => ({ from: leg.from, to: leg.to, amount: toDinero(leg.amount, currencies.get(leg.currency)!) })),
    metadata: row.metadata,
    effectiveAt: row.effective_at,
    createdAt: row.created_at,
    holdId: row.hold_id,
    reversesId: row.reverses_id,
    expiresAt: row.expires_at,
    voidReason: row.void_reason as Transfer['voidReason'],
    replayed,
  };
}
