import { LedgerboxError, type ErrorCode } from '../errors.js';

/**
 * The database's own failures (no server, refused login, no such database, no free connection,
 * a schema never migrated) as typed errors, with the driver's error kept as `cause`.
 *
 * Only ever applied to ledgerbox's own connects and statements (src/db/handle.ts), never to what
 * a host's code throws inside a call (a workflow step's HTTP request refused with ECONNREFUSED
 * is not the database). Messages carry what the server and driver say (user, database, host and
 * port, never a password: neither repeats one) and never a connection string.
 * See docs/database-errors.md.
 */

/** Where the error came from: `connecting` when it is known to be ledgerbox's connect (or the
 * statement's own checkout from a pool), so an ambiguous "Connection terminated" means the server
 * went away before the session began, not in the middle of a statement. */
export interface ErrorPhase {
  connecting: boolean;
}

interface DriverError {
  code?: unknown;
  message?: unknown;
  severity?: unknown;
  address?: unknown;
  port?: unknown;
  hostname?: unknown;
}

/** Network errors that only a connection attempt (or a dead route to the server) produces. */
const unreachableNetworkCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ETIMEDOUT']);
/** These also end a statement on a live connection: the server is unreachable only at connect. */
const connectOnlyNetworkCodes = new Set(['ECONNRESET', 'EPIPE']);
const connectOnlyMessages = [/^Connection terminated unexpectedly$/, /^Connection terminated due to connection timeout$/, /^timeout expired$/];

/** SQLSTATEs the server sends as a FATAL before a session begins. */
const authenticationCodes = new Set(['28P01', '28000']); // invalid_password, invalid_authorization_specification
const notMigratedCodes = new Set(['42P01', '42883', '42704', '3F000']); // undefined_table, undefined_function, undefined_object, invalid_schema_name
const ledgerboxObject = /"ledgerbox"|\bledgerbox\./;

/** The typed error for a driver or server error, or undefined when it is none of the above. @internal */
export function databaseError(error: unknown, phase: ErrorPhase): LedgerboxError | undefined {
  if (error instanceof LedgerboxError || typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as DriverError;
  const text = typeof message === 'string' ? message : '';
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;

  if (sqlstate !== undefined && notMigratedCodes.has(sqlstate) && ledgerboxObject.test(text)) {
    return typed(
      'schema_not_migrated',
      `The database has no ledgerbox schema, or an older one than this version of ledgerbox needs (${text}): run \`npx ledgerbox migrate\` (or migrate()) against it`,
      error,
      { sqlstate },
    );
  }
  if (sqlstate === '53300') {
    return typed(
      'database_too_many_connections',
      `The PostgreSQL server refused a new connection (${text}): every connection slot (max_connections, or the role's or database's CONNECTION LIMIT) is taken; retry later, or use fewer or smaller pools`,
      error,
      { sqlstate },
      true,
    );
  }
  if (sqlstate === '3D000' && (error as DriverError).severity === 'FATAL') {
    return typed('database_not_found', `The PostgreSQL server has no such database (${text}): create it, or fix the database name in the connection settings`, error, { sqlstate });
  }
  if (sqlstate !== undefined && authenticationCodes.has(sqlstate) && (error as DriverError).severity === 'FATAL') {
    return typed(
      'database_authentication_failed',
      `The PostgreSQL server refused to log in (${text}): check the user and password in the connection settings, the role's LOGIN attribute and pg_hba.conf`,
      error,
      { sqlstate },
    );
  }
  // node-postgres itself, when the server asks for a password it was not given (or a bad one)
  if (sqlstate === undefined && (/^SASL: /.test(text) || text === 'Password must be a string')) {
    return typed(
      'database_authentication_failed',
      `The PostgreSQL server asked for a password the connection settings do not give correctly (${text}): set the password in the connection settings`,
      error,
      {},
    );
  }
  if (sqlstate === '57P03') {
    return typed('database_unreachable', `The PostgreSQL server is not accepting connections yet (${text}); retry shortly`, error, { sqlstate }, true);
  }
  if (typeof code === 'string' && (unreachableNetworkCodes.has(code) || (phase.connecting && connectOnlyNetworkCodes.has(code)))) {
    return typed('database_unreachable', `Cannot reach the PostgreSQL server${serverOf(error as DriverError)} (${code}): check that it is running and that the host and port are right; retry later`, error, { errno: code }, true);
  }
  if (phase.connecting && sqlstate === undefined && connectOnlyMessages.some((pattern) => pattern.test(text))) {
    return typed(
      'database_unreachable',
      `The server closed the connection before a PostgreSQL session began (${text}): check that the host and port are a PostgreSQL server's and that it is up; retry later`,
      error,
      {},
      true,
    );
  }
  return undefined;
}

/** Throws the typed error for `error` when there is one, else `error` itself. @internal */
export function rethrowDatabaseError(error: unknown, phase: ErrorPhase): never {
  throw databaseError(error, phase) ?? error;
}

function serverOf(error: DriverError): string {
  if (typeof error.address === 'string') return ` at ${error.address}${typeof error.port === 'number' ? `:${error.port}` : ''}`;
  if (typeof error.hostname === 'string') return ` at ${error.hostname}`;
  return '';
}

function typed(code: ErrorCode, message: string, cause: unknown, details: Record<string, unknown>, retryable = false): LedgerboxError {
  return new LedgerboxError(code, message, { cause, details, retryable });
}

/** What @databases/pg says when a query was made by another copy of @databases/sql. */
const foreignQueryMessage = 'Invalid query, you must use @databases/sql to create your queries';

/** True for @databases/pg's refusal of a query from another copy of the package. @internal */
export function isForeignQueryRefusal(error: unknown): boolean {
  return error instanceof Error && !(error instanceof LedgerboxError) && error.message.startsWith(foreignQueryMessage);
}

/** The refusal of a handle made by another copy of @databases/pg than ledgerbox's. @internal */
export function foreignDatabasesHandle(kind: string, cause?: unknown): LedgerboxError {
  return new LedgerboxError(
    'unsupported_database_handle',
    `This @databases/pg ${kind} comes from another copy of @databases/pg than ledgerbox's (npm installs a second copy when the version ranges differ), and it refuses ledgerbox's queries: ` +
      'make both use one copy (`npm ls @databases/pg` shows them; align your version range with ledgerbox\'s and run `npm dedupe`), or pass a node-postgres Pool or Client instead',
    cause === undefined ? { details: { handle: kind } } : { cause, details: { handle: kind } },
  );
}
