import { StructError, coerce, create, pattern, string, bigint, date, type Struct } from 'superstruct';
import { LedgerboxError } from '../errors.js';

/**
 * Rows read back are checked before they become domain objects. Queries select bigints as
 * text and timestamps as ISO strings, so the host's own type parsers (which may turn int8
 * into numbers) can never change a value on its way to us.
 */

/** An int8 column selected as text, as a bigint. */
export const Int8Text = coerce(bigint(), pattern(string(), /^-?\d{1,19}$/), (value) => BigInt(value));

/** A timestamptz selected as an ISO string (or a Date from a host whose parser made one). */
export const TimestampText = coerce(date(), string(), (value) => new Date(value));

/** Validates one row; a mismatch means schema drift, not bad input, so it is not `invalid_input`. */
export function readRow<T, S>(struct: Struct<T, S>, row: unknown, what: string): T {
  try {
    return create(row, struct);
  } catch (error) {
    if (!(error instanceof StructError)) throw error;
    throw new LedgerboxError('unexpected_row', `Unexpected ${what} row from the database at \`${error.path.join('.')}\`: ${error.message}. Has \`ledgerbox migrate\` run?`, { cause: error });
  }
}
