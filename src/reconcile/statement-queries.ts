import { sql } from '@databases/pg';
import { bigint, coerce, enums, nullable, number, object, pattern, string, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../db/rows.js';

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
  description: string | null;
}

/** Inserts one batch of a statement's balances; returns how many rows were written. */
export async function insertStatementBalances(db: Session, statementId: string, balances: readonly StatementBalanceRow[]): Promise<number> {
  const rows = await db.query(sql`
    insert into ledgerbox.statement_balances (statement_id, line, account, currency, as_of, balance, description)
    select ${statementId}::bigint, balance.line, balance.account, balance.currency, balance.as_of, balance.balance, balance.description
    from unnest(
      ${balances.map((b) => b.line)}::int[],
      ${balances.map((b) => b.account)}::text[],
      ${balances.map((b) => b.currency)}::text[],
      ${balances.map((b) => b.asOf.toISOString())}::timestamptz[],
      ${balances.map((b) => b.balance.toString())}::bigint[],
      ${balances.map((b) => b.description)}::text[]
    ) as balance(line, account, currency, as_of, balance, description)
    returning line`);
  return rows.length;
}

export interface StatementLineRow {
  line: number;
  account: string;
  currency: string;
  /** When the bank booked it. */
  asOf: Date;
  /** Signed minor units of `currency`: positive adds to the account's balance. */
  amount: bigint;
  /** The ledgerbox transfer key the line is matched to, when the bank gives one. */
  reference: string | null;
  description: string | null;
}

/** Inserts one batch of a statement's transaction lines; returns how many rows were written. */
export async function insertStatementLines(db: Session, statementId: string, lines: readonly StatementLineRow[]): Promise<number> {
  const rows = await db.query(sql`
    insert into ledgerbox.statement_lines (statement_id, line, account, currency, as_of, amount, reference, description)
    select ${statementId}::bigint, l.line, l.account, l.currency, l.as_of, l.amount, l.reference, l.description
    from unnest(
      ${lines.map((l) => l.line)}::int[],
      ${lines.map((l) => l.account)}::text[],
      ${lines.map((l) => l.currency)}::text[],
      ${lines.map((l) => l.asOf.toISOString())}::timestamptz[],
      ${lines.map((l) => l.amount.toString())}::bigint[],
      ${lines.map((l) => l.reference)}::text[],
      ${lines.map((l) => l.description)}::text[]
    ) as l(line, account, currency, as_of, amount, reference, description)
    returning line`);
  return rows.length;
}

// Reconciliation's reads of statements with lines, on its snapshot. For each account, the
// latest statement that has lines for it and whose closing balance is at or before the run's
// `asOf` is checked (as for balances, the newer statement wins): its period runs from the
// account's first balance in it (opening, exclusive) to its last (closing, inclusive).
const latestPeriods = (asOf: Date) => sql`
  periods as (
    select b.statement_id, b.account, min(b.as_of) as opening_at, max(b.as_of) as closing_at
    from ledgerbox.statement_balances b
    where exists (select 1 from ledgerbox.statement_lines l where l.statement_id = b.statement_id and l.account = b.account)
    group by b.statement_id, b.account
  ),
  latest as (
    select distinct on (p.account) p.statement_id, p.account, p.opening_at, p.closing_at, s.source
    from periods p join ledgerbox.statements s on s.id = p.statement_id
    where p.closing_at <= ${asOf.toISOString()}::timestamptz
    order by p.account, p.closing_at desc, p.statement_id desc
  )`;

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

/** A sum of bigints, which may outgrow one. */
const WholeNumberText = coerce(bigint(), pattern(string(), /^-?\d{1,40}$/), (value) => BigInt(value));

export const StatementStepRow = object({
  statement_id: string(),
  source: string(),
  account: string(),
  currency: string(),
  opening_line: number(),
  opening_at: TimestampText,
  opening_balance: Int8Text,
  closing_line: number(),
  closing_at: TimestampText,
  closing_balance: Int8Text,
  lines: number(),
  lines_total: WholeNumberText,
});
export type StatementStepRow = Infer<typeof StatementStepRow>;

/**
 * Where a statement does not add up: two consecutive balances of an account whose difference is
 * not the sum of the lines between them (after the first, up to and including the second).
 */
export async function selectInconsistentStatementSteps(db: Session, asOf: Date): Promise<StatementStepRow[]> {
  const rows = await db.query(sql`
    with ${latestPeriods(asOf)},
    steps as (
      select p.statement_id, p.source, b.account, b.currency, b.line, b.as_of, b.balance,
        lag(b.line) over w as opening_line, lag(b.as_of) over w as opening_at, lag(b.balance) over w as opening_balance
      from latest p
      join ledgerbox.statement_balances b on b.statement_id = p.statement_id and b.account = p.account
      window w as (partition by b.statement_id, b.account order by b.as_of)
    ),
    totals as (
      select s.*, l.lines, coalesce(l.total, 0) as lines_total
      from steps s
      cross join lateral (
        select count(*)::int as lines, sum(l.amount) as total from ledgerbox.statement_lines l
        where l.statement_id = s.statement_id and l.account = s.account and l.as_of > s.opening_at and l.as_of <= s.as_of
      ) l
      where s.opening_line is not null
    )
    select t.statement_id::text as statement_id, t.source, t.account, t.currency,
      t.opening_line, ${iso('t.opening_at')} as opening_at, t.opening_balance::text as opening_balance,
      t.line as closing_line, ${iso('t.as_of')} as closing_at, t.balance::text as closing_balance,
      t.lines, t.lines_total::text as lines_total
    from totals t
    where t.opening_balance + t.lines_total <> t.balance
    order by t.account, t.as_of`);
  return rows.map((row) => readRow(StatementStepRow, row, 'statement step'));
}

export const StatementMatchRow = object({
  kind: enums(['line_not_in_ledger', 'line_differs', 'movement_not_on_statement']),
  statement_id: string(),
  source: string(),
  account: string(),
  currency: string(),
  /** The statement's line, for the kinds about a line. */
  line: nullable(number()),
  /** The line's or the ledger movement's moment. */
  at: TimestampText,
  /** The line's reference, or the ledger transfer's key. */
  reference: nullable(string()),
  statement_amount: nullable(Int8Text),
  ledger_amount: nullable(WholeNumberText),
});
export type StatementMatchRow = Infer<typeof StatementMatchRow>;

/**
 * Matches the latest statements' lines with the ledger. A line with a reference is matched to
 * the transfer whose key it is, and compared with what that transfer moved on the account; a
 * line without one is paired with a ledger movement of the same amount on the account in the
 * period that no line references (the n-th such line with the n-th such movement, by time).
 * What is left is reported: lines the ledger does not have (or has for another amount), and
 * ledger movements in the period the statement does not show.
 */
export async function selectStatementMismatches(db: Session, asOf: Date): Promise<StatementMatchRow[]> {
  const rows = await db.query(sql`
    with ${latestPeriods(asOf)},
    lines as (
      select p.statement_id, p.source, l.line, l.account, l.currency, l.as_of, l.amount, l.reference
      from latest p join ledgerbox.statement_lines l on l.statement_id = p.statement_id and l.account = p.account
    ),
    referenced as (
      -- the transfer's few entries, found by its id; the account is a filter on them, so the
      -- planner cannot scan every entry of the account once per line
      select l.*, t.id is not null as found,
        (select coalesce(sum(e.amount) filter (where e.account_id = a.id and e.phase = 'posted'), 0)
          from ledgerbox.entries e where e.transfer_id = t.id) as ledger_amount
      from lines l
      left join ledgerbox.accounts a on a.key = l.account
      left join ledgerbox.transfers t on t.key = l.reference
      where l.reference is not null
    ),
    movements as (
      select p.statement_id, p.source, p.account, a.currency, t.key, min(e.effective_at) as effective_at, sum(e.amount) as amount
      from latest p
      join ledgerbox.accounts a on a.key = p.account
      join ledgerbox.entries e on e.account_id = a.id and e.phase = 'posted' and e.effective_at > p.opening_at and e.effective_at <= p.closing_at
      join ledgerbox.transfers t on t.id = e.transfer_id
      group by p.statement_id, p.source, p.account, a.currency, t.key
      having sum(e.amount) <> 0
    ),
    unreferenced_movements as (
      select m.*, row_number() over (partition by m.statement_id, m.account, m.amount order by m.effective_at, m.key) as nth
      from movements m
      where not exists (select 1 from lines l where l.statement_id = m.statement_id and l.account = m.account and l.reference = m.key)
    ),
    unreferenced_lines as (
      select l.*, row_number() over (partition by l.statement_id, l.account, l.amount order by l.as_of, l.line) as nth
      from lines l where l.reference is null
    ),
    -- one hash join pairs them: what is left on either side is unmatched
    paired as (
      select l.statement_id as line_statement_id, l.source as line_source, l.account as line_account, l.currency as line_currency,
        l.line, l.as_of as line_at, l.amount as line_amount,
        m.statement_id as movement_statement_id, m.source as movement_source, m.account as movement_account,
        m.currency as movement_currency, m.key, m.effective_at, m.amount as movement_amount
      from unreferenced_lines l
      full join unreferenced_movements m
        on m.statement_id = l.statement_id and m.account = l.account and m.amount = l.amount and m.nth = l.nth
      where l.line is null or m.key is null
    )
    select 'line_not_in_ledger' as kind, r.statement_id::text as statement_id, r.source, r.account, r.currency, r.line,
      ${iso('r.as_of')} as at, r.reference, r.amount::text as statement_amount, null as ledger_amount
    from referenced r where not r.found
    union all
    select 'line_differs', r.statement_id::text, r.source, r.account, r.currency, r.line,
      ${iso('r.as_of')}, r.reference, r.amount::text, r.ledger_amount::text
    from referenced r where r.found and r.ledger_amount <> r.amount
    union all
    select 'line_not_in_ledger', p.line_statement_id::text, p.line_source, p.line_account, p.line_currency, p.line,
      ${iso('p.line_at')}, null, p.line_amount::text, null
    from paired p where p.key is null
    union all
    select 'movement_not_on_statement', p.movement_statement_id::text, p.movement_source, p.movement_account, p.movement_currency, null,
      ${iso('p.effective_at')}, p.key, null, p.movement_amount::text
    from paired p where p.line is null
    order by account, at, kind`);
  return rows.map((row) => readRow(StatementMatchRow, row, 'statement match'));
}
