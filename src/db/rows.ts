import pg from 'pg';
import { StructError, create, nullable, object, string, bigint, date, type Infer, type Struct } from 'superstruct';
import { coerceWhen } from '../contracts.js';
import { LedgerboxError } from '../errors.js';

/**
 * Rows read back are checked before they become domain objects. Queries select bigints as
 * text and timestamps as ISO strings, so the host's own type parsers (which may turn int8
 * into numbers) can never change a value on its way to us.
 */

/** An int8 column selected as text, as a bigint. */
const int8Pattern = /^-?\d{1,19}$/;
export const Int8Text = coerceWhen(bigint(), (value) => typeof value === 'string' && int8Pattern.test(value), (value: string) => BigInt(value));

/** A timestamptz selected as an ISO string (or a Date from a host whose parser made one). */
export const TimestampText = coerceWhen(date(), (value) => typeof value === 'string', (value: string) => new Date(value));

/** Validates one row; a mismatch means schema drift, not bad input, so it is not `invalid_input`. */
export function readRow<T, S>(struct: Struct<T, S>, row: unknown, what: string): T {
  try {
    return create(row, struct);
  } catch (error) {
    if (!(error instanceof StructError)) throw error;
    throw new LedgerboxError('unexpected_row', `Unexpected ${what} row from the database at \`${error.path.join('.')}\`: ${error.message}. Has \`ledgerbox migrate\` run?`, { cause: error });
  }
}

/**
 * An error a one-statement function caught in its exception block (and undid), as it reports
 * it: the fields of PostgreSQL's error (ledgerbox.try_post_transfer, ledgerbox.try_add_jobs).
 */
export const CaughtDatabaseError = object({
  code: string(),
  message: string(),
  detail: nullable(string()),
  hint: nullable(string()),
  constraint: nullable(string()),
  table: nullable(string()),
  schema: nullable(string()),
  column: nullable(string()),
});

/** The error node-postgres would have raised for the statement, rebuilt from its fields. */
export function rebuiltDatabaseError(fields: Infer<typeof CaughtDatabaseError>): pg.DatabaseError {
  const error = new pg.DatabaseError(fields.message, fields.message.length, 'error');
  error.severity = 'ERROR';
  error.code = fields.code;
  for (const name of ['detail', 'hint', 'constraint', 'table', 'schema', 'column'] as const) {
    if (fields[name] !== null) error[name] = fields[name];
  }
  return error;
}
