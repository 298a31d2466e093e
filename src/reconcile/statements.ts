import { limits } from '../limits.js';
import { CsvError, parse, type Info } from 'csv-parse/sync';
import { is, object, refine, size, string } from 'superstruct';
import { AccountKey, CurrencyCode, IdempotencyKey, Timestamp, validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { InvalidInputError, describeValue } from '../errors.js';
import { int8_max } from '../money/money.js';
import {
  insertStatement,
  insertStatementBalances,
  insertStatementLines,
  selectAccountCurrencies,
  selectCurrencies,
  type StatementBalanceRow,
  type StatementCurrencyRow,
  type StatementLineRow,
} from './statement-queries.js';

/**
 * A bank's or a processor's statement, imported to be compared with the ledger by
 * reconciliation: balances per account at a moment (`as_of`), in the account's currency, and
 * optionally the transaction lines between them.
 */
export interface ImportStatementInput {
  /**
   * The file's text: a header row `account,currency,as_of,balance` (any order), then one row per
   * balance; or, with lines, `type,account,currency,as_of,balance,amount,reference,description`
   * where `type` is `balance` or `line` (see docs/reconciliation.md, "Statement CSV format").
   */
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
  /** How many transaction lines were written (0 for a balances-only statement). */
  lines: number;
}

/** The bounds of one statement import. */
const statement_limits = limits.statements;

const columns = ['type', 'account', 'currency', 'as_of', 'balance', 'amount', 'reference', 'description'] as const;
type Column = (typeof columns)[number];
/** Every file has these; a file without `type` is the balances-only format and needs `balance`. */
const requiredColumns = ['account', 'currency', 'as_of'] as const satisfies readonly Column[];
/** With `type`, rows are balances or lines, so both amount columns are there (one empty per row). */
const typedColumns = ['balance', 'amount'] as const satisfies readonly Column[];
/** Only lines have these: without `type`, every row is a balance and they mean nothing. */
const lineOnlyColumns = ['amount', 'reference'] as const satisfies readonly Column[];
const rowTypes = ['balance', 'line'] as const;
/** A description is the bank's words, kept as they are: bounded, one line. */
const description_chars_max = 1_000;

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
 * ledger account's, amounts exact in the currency's minor units, each line inside its account's
 * period between an opening and a closing balance) and every bad row is named in one
 * `invalid_input` error; then the statement, its balances and its lines are written in one
 * transaction on the caller's handle, all or nothing. Accounts the ledger does not know are
 * kept: reconciliation reports them.
 */
export async function importStatement(db: DatabaseHandle, input: ImportStatementInput): Promise<ImportedStatement> {
  const request = validate(ImportStatementInput, input, 'statement');
  const { rows, problems } = readRows(request.csv, request.fileName);
  return inTransaction(db, async (db) => {
    const { balances, lines } = await checkRows(db, rows, problems, request.fileName);
    const statementId = await insertStatement(db, request);
    let written = 0;
    for (let start = 0; start < balances.length; start += statement_limits.insert_batch_max) {
      written += await insertStatementBalances(db, statementId, balances.slice(start, start + statement_limits.insert_batch_max));
    }
    if (written !== balances.length) throw new Error(`statement ${statementId}: wrote ${written} balances of ${balances.length}`);
    let writtenLines = 0;
    for (let start = 0; start < lines.length; start += statement_limits.insert_batch_max) {
      writtenLines += await insertStatementLines(db, statementId, lines.slice(start, start + statement_limits.insert_batch_max));
    }
    if (writtenLines !== lines.length) throw new Error(`statement ${statementId}: wrote ${writtenLines} lines of ${lines.length}`);
    return { statementId, balances: written, lines: writtenLines };
  });
}

interface Problem {
  line: number;
  problem: string;
}

/**
 * A data row as the file has it, with the line it starts on (the header is line 1). Absent
 * columns read as empty, and an absent `type` as `balance`: a file without it is the
 * balances-only format.
 */
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
  const expected = `a header row ${[...requiredColumns, 'balance'].join(',')} and one row per account balance (or, with lines, ${columns.join(',')})`;
  if (header === undefined) throw refuse(fileName, [{ line: 0, problem: `the file is empty; expected ${expected}` }]);
  const positions = readHeader(header, fileName);
  const problems: Problem[] = [];
  const rows: RawRow[] = [];
  for (const record of data) {
    if (record.fields.every((field) => field === '')) continue; // a spreadsheet's `,,,` line holds nothing
    if (record.fields.length !== header.fields.length) {
      problems.push({ line: record.line, problem: `expected ${header.fields.length} fields (${header.fields.join(',')}), got ${record.fields.length}` });
      continue;
    }
    const fields = Object.fromEntries(
      columns.map((column) => {
        const position = positions.get(column);
        return [column, position === undefined ? (column === 'type' ? 'balance' : '') : record.fields[position]!];
      }),
    ) as Record<Column, string>;
    rows.push({ line: record.line, fields });
  }
  if (rows.length + problems.length === 0) throw refuse(fileName, [{ line: 0, problem: `the file has a header but no balances; expected ${expected}` }]);
  if (rows.length + problems.length > statement_limits.balances_max) {
    throw refuse(fileName, [
      { line: 0, problem: `the file has ${rows.length + problems.length} rows, at most ${statement_limits.balances_max} balances and lines in one statement: split it` },
    ]);
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


/**
 * Where each column is. Unknown, repeated and missing columns are refused together, and so are
 * line columns in a file without `type` (its rows are all balances: an amount there would be
 * silently ignored).
 */
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
  const typed = positions.has('type');
  for (const column of [...requiredColumns, ...(typed ? typedColumns : ['balance' as const])]) {
    if (!positions.has(column)) problems.push({ line: header.line, problem: `missing column "${column}"${typed && column === 'amount' ? ' (a file with a type column has lines: their amounts go there)' : ''}` });
  }
  if (!typed) {
    for (const column of lineOnlyColumns) {
      if (positions.has(column)) {
        problems.push({ line: header.line, problem: `column "${column}" is for statement lines, so the file needs a "type" column (balance or line) to tell its rows apart` });
      }
    }
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

/** Major units as written (`-12.30`) to exact minor units, or why not; `column` names the field in the reason. */
function toMinorUnits(text: string, currency: StatementCurrencyRow, column: 'balance' | 'amount'): bigint | string {
  const [, sign, whole, fraction = ''] = decimal.exec(text)!;
  if (currency.base !== 10) {
    return `currency ${currency.code} has ${currency.base} minor units to the major one (base ${currency.base}), which a decimal ${column} cannot express exactly`;
  }
  if (fraction.length > currency.exponent) return `${column} ${describeValue(text)} has more decimals than ${currency.code} allows (${currency.exponent})`;
  const magnitude = BigInt(`${whole}${fraction.padEnd(currency.exponent, '0')}`);
  const minor = sign === '-' ? -magnitude : magnitude;
  if (minor > int8_max || minor < -int8_max - 1n) {
    return `${column} ${describeValue(text)} is ${minor} ${currency.code} minor units, beyond what a PostgreSQL bigint holds (${-int8_max - 1n} to ${int8_max})`;
  }
  return minor;
}

type CheckedRow = { type: 'balance'; balance: StatementBalanceRow } | { type: 'line'; line: StatementLineRow };

/**
 * Checks every row (format, then against the ledger's currencies and accounts, then each line
 * against its account's balances); refuses with every problem found.
 */
async function checkRows(
  db: Session,
  rows: readonly RawRow[],
  shapeProblems: readonly Problem[],
  fileName: string,
): Promise<{ balances: StatementBalanceRow[]; lines: StatementLineRow[] }> {
  const codes = new Set(rows.map((row) => row.fields.currency).filter((code) => is(code, CurrencyCode)));
  const currencies = new Map((await selectCurrencies(db, [...codes])).map((currency) => [currency.code, currency]));
  const keys = new Set(rows.map((row) => row.fields.account).filter((key) => is(key, AccountKey)));
  const accounts = new Map((await selectAccountCurrencies(db, [...keys])).map((account) => [account.key, account.currency]));
  const problems: Problem[] = [...shapeProblems];
  const balances: StatementBalanceRow[] = [];
  const lines: StatementLineRow[] = [];
  const seenBalances = new Map<string, number>();
  const seenReferences = new Map<string, number>();
  for (const row of rows) {
    const rowProblems = checkRow(row, currencies, accounts);
    const checked = rowProblems.length === 0 ? toStored(row, currencies) : undefined;
    if (checked?.type === 'balance') {
      const identity = `${checked.balance.account}\u0000${checked.balance.asOf.getTime()}`;
      const earlier = seenBalances.get(identity);
      if (earlier !== undefined) rowProblems.push(`account ${describeValue(checked.balance.account)} at ${checked.balance.asOf.toISOString()} is already on line ${earlier}`);
      else seenBalances.set(identity, row.line);
    } else if (checked?.type === 'line' && checked.line.reference !== null) {
      // a reference is what a line is matched by: twice on one account, it would match one transfer twice
      const identity = `${checked.line.account}\u0000${checked.line.reference}`;
      const earlier = seenReferences.get(identity);
      if (earlier !== undefined) rowProblems.push(`reference ${describeValue(checked.line.reference)} of account ${describeValue(checked.line.account)} is already on line ${earlier}`);
      else seenReferences.set(identity, row.line);
    }
    for (const problem of rowProblems) problems.push({ line: row.line, problem });
    if (checked !== undefined && rowProblems.length === 0) {
      if (checked.type === 'balance') balances.push(checked.balance);
      else lines.push(checked.line);
    }
  }
  problems.push(...linesOutsidePeriods(balances, lines));
  if (problems.length > 0) throw refuse(fileName, problems);
  return { balances, lines };
}

/**
 * A statement's lines explain how one balance became the next, so each line must lie after a
 * balance of its account (the opening one) and at or before another (the closing one).
 */
function linesOutsidePeriods(balances: readonly StatementBalanceRow[], lines: readonly StatementLineRow[]): Problem[] {
  const periods = new Map<string, { opening: StatementBalanceRow; closing: StatementBalanceRow }>();
  for (const balance of balances) {
    const period = periods.get(balance.account);
    if (period === undefined) periods.set(balance.account, { opening: balance, closing: balance });
    else {
      if (balance.asOf < period.opening.asOf) period.opening = balance;
      if (balance.asOf > period.closing.asOf) period.closing = balance;
    }
  }
  const problems: Problem[] = [];
  for (const line of lines) {
    const period = periods.get(line.account);
    const at = line.asOf.toISOString();
    if (period === undefined) {
      problems.push({ line: line.line, problem: `account ${describeValue(line.account)} has lines but no balances: a statement's lines need the account's opening balance (before them) and closing balance (at or after them)` });
    } else if (line.asOf <= period.opening.asOf) {
      problems.push({
        line: line.line,
        problem: `line at ${at} is not after the first balance of account ${describeValue(line.account)} (line ${period.opening.line}, ${period.opening.asOf.toISOString()}): give the opening balance from before the first line (a date means the end of that day)`,
      });
    } else if (line.asOf > period.closing.asOf) {
      problems.push({
        line: line.line,
        problem: `line at ${at} is after the last balance of account ${describeValue(line.account)} (line ${period.closing.line}, ${period.closing.asOf.toISOString()}): give the closing balance at or after the last line`,
      });
    }
  }
  return problems;
}

function checkRow(row: RawRow, currencies: ReadonlyMap<string, StatementCurrencyRow>, accounts: ReadonlyMap<string, string>): string[] {
  const { type, account, currency: code, as_of, description } = row.fields;
  const problems: string[] = [];
  if (!(rowTypes as readonly string[]).includes(type)) {
    problems.push(`type ${describeValue(type)} is neither "balance" nor "line"`);
  }
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
  if (description.length > description_chars_max || /[\u0000-\u001f\u007f]/.test(description)) {
    problems.push(`description ${describeValue(description.slice(0, 40))}${description.length > 40 ? '…' : ''} must be one line of at most ${description_chars_max} characters (it has ${description.length})`);
  }
  if (type === 'line') problems.push(...checkLineFields(row, currency));
  else if (type === 'balance') problems.push(...checkBalanceFields(row, currency));
  return problems;
}

function checkBalanceFields(row: RawRow, currency: StatementCurrencyRow | undefined): string[] {
  const { balance, amount, reference } = row.fields;
  const problems: string[] = [];
  if (!decimal.test(balance)) {
    problems.push(`balance ${describeValue(balance)} is not a decimal number like 1234.56, -12.30 or 0 (no thousands separators, no exponent)`);
  } else if (currency !== undefined) {
    const minor = toMinorUnits(balance, currency, 'balance');
    if (typeof minor === 'string') problems.push(minor);
  }
  if (amount !== '') problems.push(`a balance row has no amount, got ${describeValue(amount)} (a transaction is a "line" row)`);
  if (reference !== '') problems.push(`a balance row has no reference, got ${describeValue(reference)} (a transaction is a "line" row)`);
  return problems;
}

function checkLineFields(row: RawRow, currency: StatementCurrencyRow | undefined): string[] {
  const { balance, amount, reference } = row.fields;
  const problems: string[] = [];
  if (!decimal.test(amount)) {
    problems.push(`amount ${describeValue(amount)} is not a decimal number like 250.00 or -12.30 (no thousands separators, no exponent)`);
  } else if (/^-?[0.]+$/.test(amount)) {
    problems.push(`amount ${describeValue(amount)} is zero: a line moves money`);
  } else if (currency !== undefined) {
    const minor = toMinorUnits(amount, currency, 'amount');
    if (typeof minor === 'string') problems.push(minor);
  }
  if (balance !== '') problems.push(`a line has no balance, got ${describeValue(balance)} (a balance is a "balance" row of its own)`);
  if (reference !== '' && !is(reference, IdempotencyKey)) {
    problems.push(`reference ${describeValue(reference)} is not a transfer key (1 to 200 characters, no control characters or surrounding spaces)`);
  }
  return problems;
}

/** A row that passed every check, as it is stored. */
function toStored(row: RawRow, currencies: ReadonlyMap<string, StatementCurrencyRow>): CheckedRow {
  const currency = currencies.get(row.fields.currency)!;
  const asOf = readAsOf(row.fields.as_of)!;
  const description = row.fields.description === '' ? null : row.fields.description;
  const column = row.fields.type === 'line' ? 'amount' : 'balance';
  const minor = toMinorUnits(row.fields[column], currency, column);
  if (typeof minor === 'string') throw new Error(`line ${row.line} passed its checks but its ${column} does not convert: ${minor}`);
  const common = { line: row.line, account: row.fields.account, currency: currency.code, asOf, description };
  return row.fields.type === 'line'
    ? { type: 'line', line: { ...common, amount: minor, reference: row.fields.reference === '' ? null : row.fields.reference } }
    : { type: 'balance', balance: { ...common, balance: minor } };
}
