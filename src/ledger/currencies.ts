import { defaulted, integer, object, size } from 'superstruct';
import { CurrencyCode, validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle } from '../db/handle.js';
import { LedgerboxError } from '../errors.js';
import type { CurrencyDefinition } from '../money/money.js';
import { insertCurrency, selectCurrency } from './ledger-queries.js';

const CurrencyInput = object({
  code: CurrencyCode,
  exponent: size(integer(), 0, 18),
  base: defaulted(size(integer(), 2, 100), 10),
});

/**
 * Registers a custom currency (ISO 4217 ones are already there). Safe to call on every boot:
 * the same definition again is a no-op; a different exponent for a known code is refused,
 * because every amount already stored in it would change meaning.
 */
export async function defineCurrency(
  db: DatabaseHandle,
  input: { code: string; exponent: number; base?: number },
): Promise<CurrencyDefinition> {
  const currency = validate(CurrencyInput, input, 'currency');
  return inTransaction(db, async (db) => {
    await insertCurrency(db, currency);
    const stored = (await selectCurrency(db, currency.code))!;
    if (stored.exponent !== currency.exponent || stored.base !== currency.base) {
      throw new LedgerboxError(
        'currency_exists_with_different_exponent',
        `Currency ${currency.code} exists with exponent ${stored.exponent} and base ${stored.base}, not exponent ${currency.exponent} and base ${currency.base}`,
        { details: { currency: currency.code, exponent: stored.exponent, base: stored.base } },
      );
    }
    return stored;
  });
}

