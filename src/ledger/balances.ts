import { object, optional, unknown } from 'superstruct';
import { AccountKey, Timestamp, validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { toDinero } from '../money/money.js';
import { readAccount } from './accounts.js';
import { selectBalanceAsOf } from './ledger-queries.js';
import type { Balance } from './types.js';

const BalanceInput = object({ account: AccountKey, asOf: optional(Timestamp) });
/** The options' key set; `asOf` itself is checked with the account, as `balance.asOf`. */
const BalanceOptions = object({ asOf: optional(unknown()) });

/**
 * An account's balances. Without `asOf`: the cached balances kept on the account row, updated
 * in the same transaction as every entry. With `asOf`: computed from the entries effective at
 * or before that moment (and the holds still unresolved then), for point-in-time reports.
 */
export async function getBalance(db: DatabaseHandle, account: string, options: { asOf?: Date | string } = {}): Promise<Balance> {
  validate(BalanceOptions, options, 'options');
  const request = validate(BalanceInput, { account, asOf: options.asOf }, 'balance');
  // One transaction, so the account row and its entries are read consistently.
  return inTransaction(db, async (db) => {
    const row = await readAccount(db, request.account);
    const currency = { code: row.currency, base: row.base, exponent: row.exponent };
    const sums =
      request.asOf === undefined
        ? { posted: row.posted_balance, pending_incoming: row.pending_incoming, pending_outgoing: row.pending_outgoing }
        : await selectBalanceAsOf(db, row.id, request.asOf);
    return {
      account: row.key,
      currency: row.currency,
      posted: toDinero(sums.posted, currency),
      pendingIncoming: toDinero(sums.pending_incoming, currency),
      pendingOutgoing: toDinero(sums.pending_outgoing, currency),
      available: toDinero(sums.posted - sums.pending_outgoing, currency),
      asOf: request.asOf ?? null,
    };
  });
}
