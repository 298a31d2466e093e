import { boolean, defaulted, object } from 'superstruct';
import { AccountKey, CurrencyCode, Metadata, validate } from '../contracts.js';
import { autocommitSession, inTransaction } from '../db/handle.js';
import { LedgerboxError, describeValue } from '../errors.js';
import { insertAccount, selectAccountsByKey, selectCurrency, type AccountRow } from './ledger-queries.js';
import type { Account } from './types.js';
import type { Session, DatabaseHandle } from '../db/handle.js';
import { canonicalJson } from './canonical-json.js';

const AccountInput = object({
  key: AccountKey,
  currency: CurrencyCode,
  allowNegative: defaulted(boolean(), false),
  clearing: defaulted(boolean(), false),
  metadata: defaulted(Metadata, () => ({})),
});

/**
 * Opens an account under the host's own stable key. Idempotent: opening the same key with
 * the same currency, limit and metadata returns the existing account; anything different is
 * `account_exists_with_different_request`.
 */
export async function createAccount(
  db: DatabaseHandle,
  input: {
    key: string;
    currency: string;
    allowNegative?: boolean;
    /** Money only passes through it (funds awaiting payout): reconciliation warns while it is not back at zero. */
    clearing?: boolean;
    metadata?: Record<string, unknown>;
  },
): Promise<Account> {
  const account = validate(AccountInput, input, 'account');
  return inTransaction(db, async (db) => {
    if ((await selectCurrency(db, account.currency)) === undefined) {
      throw new LedgerboxError('unknown_currency', `Unknown currency ${describeValue(account.currency)}: define it with defineCurrency first`, {
        details: { currency: account.currency },
      });
    }
    await insertAccount(db, account);
    const stored = await readAccount(db, account.key);
    const differs =
      stored.currency !== account.currency
        ? 'currency'
        : stored.allow_negative !== account.allowNegative
          ? 'allowNegative'
          : stored.clearing !== account.clearing
            ? 'clearing'
          : canonicalJson(stored.metadata) !== canonicalJson(account.metadata)
            ? 'metadata'
            : undefined;
    if (differs !== undefined) {
      throw new LedgerboxError(
        'account_exists_with_different_request',
        `Account ${describeValue(account.key)} already exists with a different \`${differs}\``,
        { details: { account: account.key, field: differs } },
      );
    }
    return toAccount(stored);
  });
}

/** Reads one account; `account_not_found` when the key is unknown. */
export async function getAccount(db: DatabaseHandle, key: string): Promise<Account> {
  const accountKey = validate(AccountKey, key, 'key');
  const [row] = await selectAccountsByKey(autocommitSession(db), [accountKey]);
  if (row === undefined) throw accountNotFound(accountKey);
  return toAccount(row);
}

/** @internal */
export async function readAccount(db: Session, key: string): Promise<AccountRow> {
  const [row] = await selectAccountsByKey(db, [key]);
  if (row === undefined) throw accountNotFound(key);
  return row;
}

function accountNotFound(key: string): LedgerboxError {
  return new LedgerboxError('account_not_found', `No account with key ${describeValue(key)}`, { details: { accounts: [key] } });
}

function toAccount(row: AccountRow): Account {
  return {
    key: row.key,
    currency: row.currency,
    allowNegative: row.allow_negative,
    clearing: row.clearing,
    metadata: row.metadata,
    version: row.version,
    createdAt: row.created_at,
  };
}
