import Table from 'cli-table3';
import type pg from 'pg';
import { number, object, string } from 'superstruct';
import { readRow } from '../db/rows.js';
import { formatMinorUnits } from '../money/format.js';

/**
 * How the operations commands print: human tables (no colours, so they survive pipes and
 * logs) or JSON for scripts. Tables show money as the report email does (`101,930.66 USD`,
 * the currency's exponent from ledgerbox.currencies, through the email's formatter); JSON
 * keeps integer minor units, as strings. Never a float.
 */

export type Cell = string | number | boolean | bigint | Date | null | undefined;

export function renderTable(head: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const table = new Table({ head: [...head], style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map(cell));
  return `${table.toString()}\n`;
}

export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, inner: unknown) => (typeof inner === 'bigint' ? inner.toString() : inner), 2)}\n`;
}

/** Each currency's exponent, from ledgerbox.currencies: how many minor units make a major one. */
export type Exponents = ReadonlyMap<string, number>;

const CurrencyExponentRow = object({ code: string(), exponent: number() });

/** Reads every currency's exponent (a few hundred rows at most) for `money`. */
export async function currencyExponents(pool: pg.Pool): Promise<Exponents> {
  const { rows } = await pool.query('select code, exponent::int as exponent from ledgerbox.currencies');
  return new Map(rows.map((row: unknown) => readRow(CurrencyExponentRow, row, 'currency')).map((row) => [row.code, row.exponent]));
}

/**
 * `321.09 USD` from 32109n minor units, with the currency's exponent (`5,000 JPY`, `1.234 BHD`);
 * empty when there is no money. A currency the ledger does not know is shown in minor units, saying so.
 */
export function money(amount: bigint | null, currency: string | null, exponents: Exponents): string {
  if (amount === null) return '';
  return formatMinorUnits(amount, currency, currency === null ? undefined : exponents.get(currency));
}

/** An error without its stack frames (the JSON output keeps them), cut to `lines_max` lines. */
export function errorText(error: string | null, lines_max = 3): string {
  if (error === null) return '';
  const lines = error.split('\n').filter((line) => !/^\s+at\s/.test(line));
  return lines.slice(0, lines_max).map((line) => shorten(line, 120)).join('\n');
}

export function shorten(text: string, length_max: number): string {
  return text.length > length_max ? `${text.slice(0, length_max - 1)}…` : text;
}

/** 3723000 → `1h 02m 03s`. */
export function duration(ms: number): string {
  const seconds_total = Math.floor(ms / 1000);
  const days = Math.floor(seconds_total / 86_400);
  const hours = Math.floor((seconds_total % 86_400) / 3_600);
  const minutes = Math.floor((seconds_total % 3_600) / 60);
  const seconds = seconds_total % 60;
  const pad = (value: number) => String(value).padStart(2, '0');
  if (days > 0) return `${days}d ${pad(hours)}h ${pad(minutes)}m`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m ${pad(seconds)}s`;
  return `${minutes}m ${pad(seconds)}s`;
}

function cell(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  return String(value);
}
