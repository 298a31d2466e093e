import { dinero, toDecimal, type DineroCurrency } from 'dinero.js/bigint';
import * as isoCurrencies from 'dinero.js/bigint/currencies';

const byCode: ReadonlyMap<string, DineroCurrency<bigint>> = new Map(
  Object.values(isoCurrencies as Record<string, DineroCurrency<bigint>>).map((currency) => [currency.code, currency]),
);

/**
 * Minor units for people: `123456n`, `USD` → `1,234.56 USD`; `-5000n`, `JPY` → `-5,000 JPY`.
 * The exponent comes from dinero.js's ISO 4217 list; a code it does not know (`POINTS`,
 * `USDC`) is shown in minor units, saying so (`1,500 POINTS (minor units)`), because a guess
 * would misstate the amount — unless `exponent` (the ledger's own, from ledgerbox.currencies,
 * as the CLI reads it) is given, which wins. The one formatter of money for people: the email
 * and the CLI both use it.
 * Never goes through a float.
 */
export function formatMinorUnits(amount: bigint, currency: string | null, exponent?: number): string {
  if (currency === null) return `${groupThousands(amount.toString())} (minor units)`;
  // the ledger's own exponent (ledgerbox.currencies) when the caller has it, else ISO 4217's
  const iso = byCode.get(currency);
  const known = exponent ?? (iso === undefined ? undefined : Number(iso.exponent));
  if (known === undefined) return `${groupThousands(amount.toString())} ${currency} (minor units)`;
  if (!Number.isInteger(known) || known < 0 || known > 18) throw new Error(`Expected an exponent from 0 to 18 for ${currency}, got ${known}`);
  const decimal = toDecimal(dinero({ amount, currency: { code: currency, base: 10n, exponent: BigInt(known) } }));
  return `${groupThousands(decimal)} ${currency}`;
}

/** As formatMinorUnits, with a `+` on positive amounts: for differences. */
export function formatSignedMinorUnits(amount: bigint, currency: string | null, exponent?: number): string {
  const text = formatMinorUnits(amount, currency, exponent);
  return amount > 0n ? `+${text}` : text;
}

/** `-1234567.89` → `-1,234,567.89`: commas every three digits of the integer part. */
export function groupThousands(decimal: string): string {
  const match = /^(-?)(\d+)(\.\d+)?$/.exec(decimal);
  if (match === null) throw new Error(`Expected a decimal number, got ${JSON.stringify(decimal)}`);
  const [, sign = '', integer = '', fraction = ''] = match;
  return `${sign}${integer.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${fraction}`;
}
