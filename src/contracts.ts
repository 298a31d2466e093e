import {
  Struct,
  StructError,
  create,
  define,
  never,
  refine,
  size,
  string,
  pattern,
  date,
  type Context,
} from 'superstruct';
import { InvalidInputError, describeValue } from './errors.js';
import { limits } from './limits.js';
import type { Logger } from './logger.js';

/**
 * Checks `value` against `struct` (applying its coercions) and returns the result, or throws
 * InvalidInputError naming the path and showing the bad value. Every public entry point calls
 * this before it touches the database.
 */
export function validate<T, S>(struct: Struct<T, S>, value: unknown, name: string): T {
  try {
    return create(value, struct);
  } catch (error) {
    if (isUnprintable(error)) {
      throw new InvalidInputError(`Invalid \`${name}\`: it holds an object without a prototype (Object.create(null)) where a plain value belongs, got ${describeValue(value)}`, [name], value);
    }
    if (!(error instanceof StructError)) throw error;
    const failure = error.failures()[0] ?? error;
    const path = [name, ...failure.path];
    const where = path.join('.');
    if (failure.type === 'never') throw unknownOption(struct, name, failure.path, failure.value);
    const shown = secretTypes.has(failure.type) ? '(not shown: it is a credential)' : failure.value;
    // superstruct's own messages ("Expected a string, but received: 42") are replaced by ours;
    // a refinement or define() that returned a reason is specific, so it is kept.
    const generic = failure.refinement === undefined && failure.message.startsWith('Expected');
    const message = generic
      ? `Expected \`${where}\` to be ${failure.type}, got ${describeValue(shown)}`
      : `Invalid \`${where}\`: ${failure.message}`;
    throw new InvalidInputError(message, path, shown);
  }
}

/**
 * A key that object() (or knownKeysOnly) does not know: a misspelt option would otherwise be
 * ignored without a word. The message names it, lists the options its object does take, and
 * shows its value, unless that object takes a credential (a misspelt `connectionString` holds
 * one) and the value is text that could be it.
 */
function unknownOption(struct: Struct<any, any>, name: string, path: readonly (string | number)[], value: unknown): InvalidInputError {
  const owner = structAt(struct, path.slice(0, -1));
  const options = owner === undefined ? undefined : optionsOf(owner);
  const ownerWhere = [name, ...path.slice(0, -1)].join('.');
  const mayBeCredential = owner !== undefined && takesCredential(owner) && (typeof value === 'string' || (typeof value === 'object' && value !== null));
  const shown = mayBeCredential ? `(not shown: \`${ownerWhere}\` takes a credential)` : value;
  const takes = options === undefined ? '' : ` (\`${ownerWhere}\` takes ${options.join(', ')})`;
  const fullPath = [name, ...path];
  return new InvalidInputError(`Invalid \`${fullPath.join('.')}\`: unknown option${takes}, got ${describeValue(shown)}`, fullPath, shown);
}

/** The struct that checks the value at `path`, when the path leads through objects and arrays only. */
function structAt(struct: Struct<any, any>, path: readonly (string | number)[]): Struct<any, any> | undefined {
  let current: Struct<any, any> | undefined = struct;
  for (const key of path) {
    if (current === undefined) return undefined;
    // an array's schema is its items' struct, an object's a record of structs (enums() and literal() hold values there)
    const schema: unknown = current.schema;
    const next: unknown = current.type === 'array' ? schema : isStructRecord(schema) ? schema[key] : undefined;
    current = next instanceof Struct ? next : undefined;
  }
  return current;
}

function isStructRecord(schema: unknown): schema is Record<string | number, unknown> {
  return typeof schema === 'object' && schema !== null && !(schema instanceof Struct) && !Array.isArray(schema);
}

/** The keys an object struct takes: its schema's, or those given to knownKeysOnly. */
function optionsOf(struct: Struct<any, any>): readonly string[] | undefined {
  if (struct.type === 'object' && isStructRecord(struct.schema)) return Object.keys(struct.schema);
  return knownKeysOf.get(struct.entries);
}

function takesCredential(struct: Struct<any, any>): boolean {
  return struct.type === 'object' && isStructRecord(struct.schema) && Object.values(struct.schema).some((option) => option instanceof Struct && secretTypes.has(option.type));
}

/** knownKeysOnly's structs, by their entries function (kept by optional(), refine(), defaulted()), and the keys they take. */
const knownKeysOf = new WeakMap<Struct<any, any>['entries'], readonly string[]>();

/**
 * `struct`, also refusing the keys of a plain object that are not in `known`, each at its own
 * path, as object() refuses unknown options: for a define() that takes either a plain object
 * (checked by its key set) or a host's object (`isHostObject`, checked by its shape, as a
 * dinero.js object is). An object with an unknown key is refused for that key alone: the
 * misspelling is what explains the rest (`curency` is why `currency` is missing).
 */
export function knownKeysOnly<T, S>(struct: Struct<T, S>, known: readonly string[], isHostObject: (value: unknown) => boolean): Struct<T, S> {
  const unknownKeys = (value: unknown): string[] =>
    typeof value !== 'object' || value === null || Array.isArray(value) || isHostObject(value) ? [] : Object.keys(value).filter((key) => !known.includes(key));
  const Unknown = never();
  const entries = function* (value: unknown, context: Context): Generator<[string | number, unknown, Struct<any> | Struct<never>]> {
    yield* struct.entries(value, context);
    for (const key of unknownKeys(value)) yield [key, (value as Record<string, unknown>)[key], Unknown];
  };
  knownKeysOf.set(entries, known);
  return new Struct<T, S>({
    ...struct,
    validator: (value, context) => (unknownKeys(value).length > 0 ? true : struct.validator(value, context)),
    entries,
  });
}

/**
 * A pino logger, or anything shaped like one (a host's own copy of pino, a child): checked by
 * the methods ledgerbox calls, never by its keys.
 */
export const LoggerShape = define<Logger>('a pino logger', (value) =>
  typeof value === 'object' && value !== null && ['info', 'warn', 'error', 'debug', 'child'].every((method) => typeof (value as Record<string, unknown>)[method] === 'function'),
);

/**
 * superstruct writes a refused value into its message with a template string, which throws for
 * an object without a prototype: that is bad input too, not a crash.
 */
function isUnprintable(error: unknown): boolean {
  return error instanceof TypeError && error.message === 'Cannot convert object to primitive value' && /superstruct/.test(error.stack ?? '');
}

/** The types of structs whose values are credentials: a refusal names the field, never the value. */
const secretTypes = new Set<string>();

/**
 * Marks a struct's values as credentials (a webhook URL is its own secret), for validate. The
 * mark is by the struct's type name, so it must be a name of its own (a define()), never `string`.
 */
export function secretValue<T, S>(struct: Struct<T, S>): Struct<T, S> {
  if (['string', 'object', 'any', 'unknown'].includes(struct.type)) throw new Error(`secretValue needs a struct with a name of its own, got ${struct.type}`);
  secretTypes.add(struct.type);
  return struct;
}

/**
 * A UTF-16 surrogate without its partner: node-postgres would send it as U+FFFD, so two
 * different keys would become the same row, and jsonb refuses it outright.
 */
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when PostgreSQL stores `text` exactly as given: no NUL (text and jsonb refuse it), no lone surrogate. */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !loneSurrogate.test(text);
}

/** A string PostgreSQL stores exactly as given (see isStorableText), for job keys, reasons and filters. */
export const StorableText = refine(string(), 'storable text', (value) =>
  isStorableText(value) ? true : `must not contain NUL characters or unpaired surrogates (PostgreSQL cannot store them exactly), got ${describeValue(value)}`,
);

const trimmedText = (label: string, maxLength: number) =>
  refine(size(string(), 1, maxLength), label, (value) =>
    value.trim() === value && !/[\u0000-\u001f]/.test(value) && isStorableText(value)
      ? true
      : `${label} must not start or end with spaces or contain control characters or unpaired surrogates, got ${describeValue(value)}`,
  );

/** The host's stable name for an account, e.g. `customer:42:wallet:USD`. */
export const AccountKey = trimmedText('account key', limits.key_length_max);

/** A caller-chosen idempotency key: the same key always means the same request. */
export const IdempotencyKey = trimmedText('idempotency key', limits.key_length_max);

/** ISO 4217 (`USD`) or a custom code (`POINTS`, `USDC`): upper case, 2 to 16 characters. */
export const CurrencyCode = pattern(string(), /^[A-Z][A-Z0-9_]{1,15}$/);

export const Uuid = pattern(string(), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);

/**
 * Free-form JSON object stored with accounts and transfers; bounded so a row stays small.
 * Normalized to what JSON (and so the database) keeps: a Date becomes its ISO string, an
 * undefined field disappears, so a replay compares equal to what was stored.
 */
export const Metadata = coerceWhen(
  define<Record<string, unknown>>('a JSON object', (value) => checkMetadata(value)),
  (value) => typeof value === 'object' && value !== null && !Array.isArray(value) && serializable(value),
  (value) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>,
);

/**
 * superstruct's coerce() with its condition as a plain test: coerce() asks is(value, condition),
 * which builds a StructError (and its stack trace) for every value it does not coerce, such as
 * each transfer's absent effectiveAt or a row's null timestamp; a batch of 100 transfers spent
 * most of its validation there, and the demo's worker 0.7 s reading rows. @internal
 */
export function coerceWhen<T, S>(struct: Struct<T, S>, test: (value: unknown) => boolean, coercer: (value: never) => unknown): Struct<T, S> {
  return new Struct({
    ...struct,
    coercer: (value, context) => (test(value) ? struct.coercer(coercer(value as never), context) : struct.coercer(value, context)),
  });
}

function serializable(value: unknown): boolean {
  try {
    return JSON.stringify(value) !== undefined;
  } catch {
    return false;
  }
}

function checkMetadata(value: unknown): true | string | false {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    return `metadata must be JSON-serializable (no bigint, no cycles), got ${describeValue(value)}`;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.metadata_bytes_max) {
    return `metadata must serialize to at most ${limits.metadata_bytes_max} bytes, got ${bytes}`;
  }
  const unstorable = unstorableString(value);
  if (unstorable !== undefined) {
    return `metadata must not hold NUL characters or unpaired surrogates (jsonb cannot store them), got ${describeValue(unstorable)}`;
  }
  return true;
}

/** The first key or string value PostgreSQL cannot store, in a value already bounded by size. */
function unstorableString(value: unknown): string | undefined {
  if (typeof value === 'string') return isStorableText(value) ? undefined : value;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const found = isStorableText(key) ? unstorableString(inner) : key;
    if (found !== undefined) return found;
  }
  return undefined;
}

const isoTimestamp = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** Rejects what Date would silently roll over: February 30th becomes March 1st. */
function isRealCalendarTime(text: string): boolean {
  const match = isoTimestamp.exec(text);
  if (match === null) return false;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 7].map((index) => Number(match[index] ?? 0)) as [number, number, number, number, number, number];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  return calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
}

/** A point in time: a valid Date, or an ISO 8601 string with a time zone. */
export const Timestamp = coerceWhen(
  refine(date(), 'valid date', (value) => !Number.isNaN(value.getTime())),
  (value) => typeof value === 'string' && isRealCalendarTime(value),
  (value: string) => new Date(value),
);

