import { dinero, toDecimal } from 'dinero.js/bigint';
import { formatMinorUnits, groupThousands } from '../money/format.js';

/** The ledger's own exponent per currency code (ledgerbox.currencies), read once per page. */
export type Exponents = ReadonlyMap<string, number>;

/**
 * Minor units as people read them, with the ledger's exponent for its own currencies
 * (`POINTS` with exponent 0, `USDC` with 6) and ISO 4217's otherwise: `1,234.56 USD`.
 * bigint all the way, never a float.
 */
export function formatAmount(amount: bigint, currency: string | null, exponents: Exponents): string {
  const exponent = currency === null ? undefined : exponents.get(currency);
  if (currency === null || exponent === undefined) return formatMinorUnits(amount, currency);
  const decimal = toDecimal(dinero({ amount, currency: { code: currency, base: 10n, exponent: BigInt(exponent) } }));
  return `${groupThousands(decimal)} ${currency}`;
}

/** `2026-12-04 09:15:02Z`: UTC, to the second, the way the logs and psql show it. */
export function formatTime(at: Date | null): string {
  if (at === null) return '';
  return `${at.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** 3 723 000 ms → `1h 2m`: how long, for people. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
