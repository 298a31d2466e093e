import { sql } from '@databases/pg';
import { number, object, string, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { readRow } from '../db/rows.js';

/** External statements' SQL: one statement per function, `db` first. */

export const StatementCurrencyRow = object({ code: string(), base: number(), exponent: number() });
export type StatementCurrencyRow = Infer<typeof StatementCurrencyRow>;

/** The currencies among `codes` that ledgerbox knows, with the exponent that turns major units into minor. */
export async function selectCurrencies(db: Session, codes: readonly string[]): Promise<StatementCurrencyRow[]> {
  const rows = await db.query(sql`
    select code, base::int as base, exponent::int as exponent
    from ledgerbox.currencies where code = any(${[...codes]}::text[])`);
  return rows.map((row) => readRow(StatementCurrencyRow, row, 'currency'));
}

export const AccountCurrencyRow = object({ key: string(), currency: string() });
export type AccountCurrencyRow = Infer<typeof AccountCurrencyRow>;

/** The ledger accounts among `keys`, with their currencies; keys the ledger does not know are simply absent. */
export async function selectAccountCurrencies(db: Session, keys: readonly string[]): Promise<AccountCurrencyRow[]> {
  const rows = await db.query(sql`
    select key, currency from ledgerbox.accounts where key = any(${[...keys]}::text[])`);
  return rows.map((row) => readRow(AccountCurrencyRow, row, 'account'));
}

export async function insertStatement(db: Session, statement: { source: string; fileName: string }): Promise<string> {
  const [row] = await db.query(sql`
    insert into ledgerbox.statements (source, file_name)
    values (${statement.source}, ${statement.fileName})
    returning id::text as id`);
  return readRow(object({ id: string() }), row, 'statement').id;
}

export interface StatementBalanceRow {
  line: number;
  account: string;
  currency: string;
  asOf: Date;
  /** Minor units of `currency`. */
  balance: bigint;
}

/** Inserts one batch of a statement's balances; returns how many rows were written. */
export async function insertStatementBalances(db: Session, statementId: string, balances: readonly StatementBalanceRow[]): Promise<number> {
  const rows = await db.query(sql`
    insert into ledgerbox.statement_balances (statement_id, line, account, currency, as_of, balance)
    select ${statementId}::bigint, balance.line, balance.account, balance.currency, balance.as_of, balance.balance
    from unnest(
      ${balances.map((b) => b.line)}::int[],
      ${balances.map((b) => b.account)}::text[],
      ${balances.map((b) => b.currency)}::text[],
      ${balances.map((b) => b.asOf.toISOString())}::timestamptz[],
      ${balances.map((b) => b.balance.toString())}::bigint[]
    ) as balance(line, account, currency, as_of, balance)
    returning line`);
  return rows.length;
}
