import { limits } from '../limits.js';
import { CsvError, parse, type Info } from 'csv-parse/sync';
import { is, object, refine, size, string } from 'superstruct';
import { AccountKey, CurrencyCode, Timestamp, validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { InvalidInputError, describeValue } from '../errors.js';
import { int8_max } from '../money/money.js';
import {
  insertStatement,
  insertStatementBalances,
  selectAccountCurrencies,
  selectCurrencies,
  type StatementBalanceRow,
  type StatementCurrencyRow,
} from './statement-queries.js';

/**
 * A bank's or a processor's statement, imported to be compared with the ledger by
 * reconciliation: one balance per account at a moment (`as_of`), in the account's currency.
 */
export interface ImportStatementInput {
  /** The file's text: a header row `account,currency,as_of,balance` (any order), then one row per balance. */
  csv: string;
  /** Who says so, e.g. `bank:acme` or `stripe`: named in reconciliation's findings. */
  source: string;
  /** The file the text came from, kept with the statement. */
  fileName: string;
}

export interface ImportedStatement {
  statementId: string;
  /** How many balances were written. */
  balances: number;
}

/** The bounds of one statement import. */
const statement_limits = limits.statements;

const columns = ['account', 'currency', 'as_of', 'balance'] as const;
type Column = (typeof columns)[number];

const label = (name: string, length_max: number) =>
  refine(size(string(), 1, length_max), name, (value) =>
    value.trim() === value && !/[\u0000-\u001f]/.test(value) ? true : `${name} must not start or end with spaces or contain control characters, got ${describeValue(value)}`,
  );

const ImportStatementInput = object({
  csv: size(string(), 0, statement_limits.csv_chars_max),
  source: label('source', 200),
  fileName: label('fileName', 1_000),
});

/**
 * Imports a statement: every row is checked first (format, currency known and matching the
 * ledger account's, amounts exact in the currency's minor units) and every bad row is named in
 * one `invalid_input` error; then the statement and all its balances are written in one
 * transaction on the caller's handle, all or nothing. Accounts the ledger does not know are
 * kept: reconciliation reports them.
 */
export async function importStatement(db: DatabaseHandle, input: ImportStatementInput): Promise<ImportedStatement> {
  const request = validate(ImportStatementInput, input, 'statement');
  const { rows, problems } = readRows(request.csv, request.fileName);
  return inTransaction(db, async (db) => {
    const balances = await checkRows(db, rows, problems, request.fileName);
    const statementId = await insertStatement(db, request);
    let written = 0;
    for (let start = 0; start < balances.length; start += statement_limits.insert_batch_max) {
      written += await insertStatementBalances(db, statementId, balances.slice(start, start + statement_limits.insert_batch_max));
    }
    if (written !== balances.length) throw new Error(`statement ${statementId}: wrote ${written} balances of ${balances.length}`);
    return { statementId, balances: written };
  });
}

interface Problem {
  line: number;
  problem: string;
}

/** A data row as the file has it, with the line it starts on (the header is line 1). */
interface RawRow {
  line: number;
  fields: Record<Column, string>;
}

function refuse(fileName: string, problems: readonly Problem[]): InvalidInputError {
  const sorted = [...problems].sort((a, b) => a.line - b.line);
  const shown = sorted.slice(0, statement_limits.problems_reported_max).map(({ line, problem }) => (line > 0 ? `line ${line}: ${problem}` : problem));
  const more = sorted.length - shown.length;
  const message =
    `Invalid \`csv\`: statement ${fileName} refused, nothing imported (${sorted.length} problem${sorted.length === 1 ? '' : 's'}):\n` +
    shown.join('\n') +
    (more > 0 ? `\n… and ${more} more` : '');
  return new InvalidInputError(message, ['csv'], sorted);
}

/**
 * Parses the CSV (csv-parse) and maps its rows onto the header's columns. A file whose shape is
 * wrong is refused here; a row with the wrong number of fields is a problem reported with the rest.
 */
function readRows(csv: string, fileName: string): { rows: RawRow[]; problems: Problem[] } {
  const records = parseRecords(csv, fileName);
  const [header, ...data] = records;
  const expected = `a header row ${columns.join(',')} and one row per account balance`;
  if (header === undefined) throw refuse(fileName, [{ line: 0, problem: `the file is empty; expected ${expected}` }]);
  const positions = readHeader(header, fileName);
  const problems: Problem[] = [];
  const rows: RawRow[] = [];
  for (const record of data) {
    if (record.fields.every((field) => field === '')) continue; // a spreadsheet's `,,,` line holds no balance
    if (record.fields.length !== columns.length) {
      problems.push({ line: record.line, problem: `expected ${columns.length} fields (${header.fields.join(',')}), got ${record.fields.length}` });
      continue;
    }
    const fields = Object.fromEntries(columns.map((column) => [column, record.fields[positions.get(column)!]!])) as Record<Column, string>;
    rows.push({ line: record.line, fields });
  }
  if (rows.length + problems.length === 0) throw refuse(fileName, [{ line: 0, problem: `the file has a header but no balances; expected ${expected}` }]);
  if (rows.length + problems.length > statement_limits.balances_max) {
    throw refuse(fileName, [{ line: 0, problem: `the file has ${rows.length + problems.length} rows, at most ${statement_limits.balances_max} balances in one statement: split it` }]);
  }
  return { rows, problems };
}

interface CsvRecord {
  line: number;
  fields: string[];
}

function parseRecords(csv: string, fileName: string): CsvRecord[] {
  // One line ending, so csv-parse's line count is the line an editor shows. No valid field
  // holds a line break, so nothing that could be imported changes.
  const text = csv.replace(/\r\n?/g, '\n');
  try {
    // with `info`, csv-parse returns each record beside the parser's counts at its end (its
    // types do not say so)
    const records = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
      record_delimiter: '\n',
      max_record_size: statement_limits.row_chars_max,
      info: true,
    }) as unknown as { record: string[]; info: Info }[];
    // the line count at the record's end, less the line breaks inside its quoted fields
    return records.map(({ record, info }) => ({
      fields: record,
      line: info.lines - record.reduce((breaks, field) => breaks + field.split('\n').length - 1, 0),
    }));
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    const line = typeof error.lines === 'number' ? error.lines : 0;
    throw refuse(fileName, [{ line, problem: `the CSV cannot be read: ${error.message}` }]);
  }
}

/** Where each column is; unknown, repeated and missing columns are refused together. */
function readHeader(header: CsvRecord, fileName: string): Map<Column, number> {
  const positions = new Map<Column, number>();
  const problems: Problem[] = [];
  header.fields.forEach((name, position) => {
    if (!(columns as readonly string[]).includes(name)) {
      problems.push({ line: header.line, problem: `unknown column ${describeValue(name)}; the columns are ${columns.join(', ')} (separated by commas)` });
    } else if (positions.has(name as Column)) {
      problems.push({ line: header.line, problem: `column ${describeValue(name)} appears twice` });
    } else {
      positions.set(name as Column, position);
    }
  });
  for (const column of columns) {
    if (!positions.has(column)) problems.push({ line: header.line, problem: `missing column "${column}"` });
  }
  if (problems.length > 0) throw refuse(fileName, problems);
  return positions;
}

const decimal = /^(-?)(\d+)(?:\.(\d+))?$/;
const dateOnly = /^\d{4}-\d{2}-\d{2}$/;

/** An ISO 8601 timestamp with a zone, or a date meaning the end of that day in UTC. */
function readAsOf(text: string): Date | undefined {
  if (dateOnly.test(text)) {
    const endOfDay = new Date(`${text}T23:59:59.999Z`);
    // February 30th would roll over to March: refused
    return !Number.isNaN(endOfDay.getTime()) && endOfDay.toISOString().startsWith(text) ? endOfDay : undefined;
  }
  try {
    return validate(Timestamp, text, 'as_of');
  } catch (error) {
    if (error instanceof InvalidInputError) return undefined;
    throw error;
  }
}

/** Major units as written (`-12.30`) to exact minor units, or why not. */
function toMinorUnits(text: string, currency: StatementCurrencyRow): bigint | string {
  const [, sign, whole, fraction = ''] = decimal.exec(text)!;
  if (currency.base !== 10) {
    return `currency ${currency.code} has ${currency.base} minor units to the major one (base ${currency.base}), which a decimal balance cannot express exactly`;
  }
  if (fraction.length > currency.exponent) return `balance ${describeValue(text)} has more decimals than ${currency.code} allows (${currency.exponent})`;
  const magnitude = BigInt(`${whole}${fraction.padEnd(currency.exponent, '0')}`);
  const minor = sign === '-' ? -magnitude : magnitude;
  if (minor > int8_max || minor < -int8_max - 1n) {
    return `balance ${describeValue(text)} is ${minor} ${currency.code} minor units, beyond what a PostgreSQL bigint holds (${-int8_max - 1n} to ${int8_max})`;
  }
  return minor;
}

/** Checks every row (format, then against the ledger's currencies and accounts); refuses with every problem found. */
async function checkRows(db: Session, rows: readonly RawRow[], shapeProblems: readonly Problem[], fileName: string): Promise<StatementBalanceRow[]> {
  const codes = new Set(rows.map((row) => row.fields.currency).filter((code) => is(code, CurrencyCode)));
  const currencies = new Map((await selectCurrencies(db, [...codes])).map((currency) => [currency.code, currency]));
  const keys = new Set(rows.map((row) => row.fields.account).filter((key) => is(key, AccountKey)));
  const accounts = new Map((await selectAccountCurrencies(db, [...keys])).map((account) => [account.key, account.currency]));
  const problems: Problem[] = [...shapeProblems];
  const balances: StatementBalanceRow[] = [];
  const seen = new Map<string, number>();
  for (const row of rows) {
    const rowProblems = checkRow(row, currencies, accounts);
    const balance = rowProblems.length === 0 ? toBalance(row, currencies) : undefined;
    if (balance !== undefined) {
      const identity = `${balance.account}\u0000${balance.asOf.getTime()}`;
      const earlier = seen.get(identity);
      if (earlier !== undefined) rowProblems.push(`account ${describeValue(balance.account)} at ${balance.asOf.toISOString()} is already on line ${earlier}`);
      else seen.set(identity, row.line);
    }
    for (const problem of rowProblems) problems.push({ line: row.line, problem });
    if (balance !== undefined && rowProblems.length === 0) balances.push(balance);
  }
  if (problems.length > 0) throw refuse(fileName, problems);
  return balances;
}

function checkRow(row: RawRow, currencies: ReadonlyMap<string, StatementCurrencyRow>, accounts: ReadonlyMap<string, string>): string[] {
  const { account, currency: code, as_of, balance } = row.fields;
  const problems: string[] = [];
  if (!is(account, AccountKey)) {
    problems.push(`account ${describeValue(account)} is not an account key (1 to 200 characters, no control characters)`);
  }
  const currency = currencies.get(code);
  if (!is(code, CurrencyCode)) problems.push(`currency ${describeValue(code)} is not a currency code (upper case, like USD)`);
  else if (currency === undefined) problems.push(`currency ${describeValue(code)} is not a ledgerbox currency (defineCurrency adds one)`);
  const ledgerCurrency = accounts.get(account);
  if (currency !== undefined && ledgerCurrency !== undefined && ledgerCurrency !== code) {
    problems.push(`currency ${describeValue(code)} does not match account ${describeValue(account)}, which is in ${ledgerCurrency} in the ledger`);
  }
  if (readAsOf(as_of) === undefined) {
    problems.push(`as_of ${describeValue(as_of)} is not an ISO 8601 timestamp with a time zone (2026-11-21T09:30:00Z) or a date (2026-11-21)`);
  }
  if (!decimal.test(balance)) {
    problems.push(`balance ${describeValue(balance)} is not a decimal number like 1234.56, -12.30 or 0 (no thousands separators, no exponent)`);
  } else if (currency !== undefined) {
    const minor = toMinorUnits(balance, currency);
    if (typeof minor === 'string') problems.push(minor);
  }
  return problems;
}

/** A row that passed every check, as it is stored. */
function toBalance(row: RawRow, currencies: ReadonlyMap<string, StatementCurrencyRow>): StatementBalanceRow {
  const currency = currencies.get(row.fields.currency)!;
  const asOf = readAsOf(row.fields.as_of)!;
  const balance = toMinorUnits(row.fields.balance, currency);
  if (typeof balance === 'string') throw new Error(`line ${row.line} passed its checks but its balance does not convert: ${balance}`);
  return { line: row.line, account: row.fields.account, currency: currency.code, asOf, balance };
}
