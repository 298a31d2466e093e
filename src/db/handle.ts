import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type pg from 'pg';
import {
  isConnection,
  isConnectionPool,
  isTransaction,
  pgFormat,
  type Queryable,
  type SQLQuery,
} from '@databases/pg';
import { LedgerboxError } from '../errors.js';
import { limits } from '../limits.js';
import { foreignDatabasesHandle, isForeignQueryRefusal, rethrowDatabaseError } from './database-errors.js';

/**
 * Any database handle a host service already has. Writes go through the handle itself, so
 * they share the caller's transaction when there is one:
 * - an @databases/pg ConnectionPool, Connection or Transaction;
 * - a node-postgres Pool, or a Client / PoolClient (inside `BEGIN … COMMIT` or not).
 */
export type DatabaseHandle = Queryable | pg.Pool | pg.PoolClient | pg.Client;

export type Row = Record<string, unknown>;

/** What ledgerbox's queries run on: one connection, inside one transaction. @internal */
export interface Session {
  query(query: SQLQuery): Promise<Row[]>;
}

type PgPool = pg.Pool;
type PgClient = pg.PoolClient | pg.Client;

function isObject(handle: unknown): handle is object {
  return typeof handle === 'object' && handle !== null;
}

function isDatabasesQueryable(handle: DatabaseHandle): handle is Queryable {
  if (!isObject(handle)) return false;
  const candidate = handle as Queryable;
  if (!(isTransaction(candidate) || isConnection(candidate) || isConnectionPool(candidate))) return false;
  // @databases/pg tells its queries by `instanceof`: a handle from the host's own copy of the
  // package (another version beside ours) would refuse every query ledgerbox makes.
  if (ourDatabasesClasses !== undefined && !ourDatabasesClasses.some((base) => candidate instanceof base)) throw foreignDatabasesHandle(kindOf(candidate));
  return true;
}

/** The classes every handle of ledgerbox's own copy of @databases/pg extends (those of the
 * @databases/shared that copy loads); undefined if that layout ever changes, when a foreign
 * handle is still told by its refusal of the first query. */
const ourDatabasesClasses: (abstract new (...args: never[]) => unknown)[] | undefined = (() => {
  try {
    const fromPg = createRequire(createRequire(import.meta.url).resolve('@databases/pg'));
    const shared = fromPg('@databases/shared') as Record<string, unknown>;
    const classes = [shared.BaseConnectionPool, shared.BaseConnection, shared.BaseTransaction];
    return classes.every((value) => typeof value === 'function') ? (classes as (abstract new (...args: never[]) => unknown)[]) : undefined;
  } catch {
    return undefined;
  }
})();

function kindOf(handle: Queryable): string {
  return isTransaction(handle) ? 'Transaction' : isConnection(handle) ? 'Connection' : 'ConnectionPool';
}

function isPgPool(handle: DatabaseHandle): handle is PgPool {
  return isObject(handle) && 'totalCount' in handle && 'idleCount' in handle && typeof (handle as PgPool).connect === 'function';
}

function isPgClient(handle: DatabaseHandle): handle is PgClient {
  return isObject(handle) && typeof (handle as PgClient).query === 'function' && 'connection' in handle;
}

/**
 * Pools whose connections run ledgerbox's statements as named (prepared) statements: parsed and
 * planned once per connection instead of on every call, which was about a tenth of the server's
 * time in the demo. startWorker registers its pool unless told `noPreparedStatements`, as
 * graphile-worker prepares its own statements on that same pool; named statements need a
 * connection that stays the same for the session (not a transaction-mode PgBouncer).
 */
const preparingPools = new WeakMap<PgPool, PreparedNames>();

/** A preparing pool's statements: text → name, so a known text is not hashed again on every call. */
type PreparedNames = Map<string, string>;

/** At most this many distinct statements are prepared per pool (so per connection): a text
 * built from a list (a batch of N rows) must not fill the server's memory with one per N. */
const prepared_statements_max = 200;

/** @internal */
export function prepareStatementsOn(pool: PgPool): void {
  if (!preparingPools.has(pool)) preparingPools.set(pool, new Map());
}

/** @internal */
export function stopPreparingStatementsOn(pool: PgPool): void {
  preparingPools.delete(pool);
}

/** The statement as node-postgres takes it: named (by a hash of its text) on a preparing pool. */
function statementFor(query: SQLQuery, names: PreparedNames | undefined): pg.QueryConfig {
  const { text, values } = query.format(pgFormat);
  if (names === undefined) return { text, values };
  let name = names.get(text);
  if (name === undefined) {
    if (names.size >= prepared_statements_max) return { text, values };
    name = `ledgerbox_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return { name, text, values };
}

function pgSession(client: PgClient, names?: PreparedNames): Session {
  return {
    async query(query) {
      const result = await client.query(statementFor(query, names)).catch(rethrowStatementError);
      return result.rows as Row[];
    },
  };
}

function databasesSession(db: Queryable): Session {
  if (isConnectionPool(db)) {
    // through task(), to know whether a failure came before the connection was ours
    return {
      query(query) {
        let connected = false;
        return db
          .task((connection) => ((connected = true), connection.query(query) as Promise<Row[]>))
          .catch((error: unknown) => rethrowDatabasesError(db, error, !connected));
      },
    };
  }
  return { query: (query) => (db.query(query) as Promise<Row[]>).catch((error: unknown) => rethrowDatabasesError(db, error, false)) };
}

function rethrowDatabasesError(db: Queryable, error: unknown, connecting: boolean): never {
  if (isForeignQueryRefusal(error)) throw foreignDatabasesHandle(kindOf(db), error);
  if (connecting) rethrowDatabaseError(error, { connecting: true });
  return rethrowStatementError(error);
}

/** A statement of ours failed on a connection that was already open. */
function rethrowStatementError(error: unknown): never {
  if ((error as { code?: string }).code === '25P02') throw hostTransactionAborted(error);
  return rethrowDatabaseError(error, { connecting: false });
}

/** Checks a connection out of the host's (or our) node-postgres pool, with its failures typed. */
function connectTo(pool: PgPool): Promise<pg.PoolClient> {
  return pool.connect().catch((error: unknown) => rethrowDatabaseError(error, { connecting: true }));
}

/** One statement on a node-postgres pool, as pool.query runs it, but with the checkout's failures
 * told from the statement's; a connection is dropped only when the failure was the connection's. */
async function poolQuery(pool: PgPool, query: SQLQuery): Promise<Row[]> {
  const client = await connectTo(pool);
  let lost: Error | undefined;
  const onError = (error: Error) => (lost = error);
  client.on('error', onError);
  try {
    return (await client.query(statementFor(query, preparingPools.get(pool)))).rows as Row[];
  } catch (error) {
    if (isConnectionLost(error)) lost ??= error as Error;
    return rethrowStatementError(error);
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}

function hostTransactionAborted(cause?: unknown): LedgerboxError {
  return new LedgerboxError(
    'host_transaction_aborted',
    'The transaction on this connection has already failed; roll it back before calling ledgerbox',
    cause === undefined ? {} : { cause },
  );
}

/** 25P02: the caller's transaction failed before we were called; say so by name. */
function rethrowAborted(error: unknown): never {
  if ((error as { code?: string }).code === '25P02') throw hostTransactionAborted(error);
  throw error;
}

/** Runs one statement on the handle as it is: no transaction of our own. @internal */
export async function queryOnce(handle: DatabaseHandle, query: SQLQuery): Promise<Row[]> {
  if (isDatabasesQueryable(handle)) return databasesSession(handle).query(query);
  if (isPgPool(handle)) return poolQuery(handle, query);
  if (isPgClient(handle)) return oneAtATime(handle, () => pgSession(handle).query(query));
  throw unsupportedHandle(handle);
}

/**
 * Runs `work` atomically on the caller's handle.
 *
 * Inside the caller's transaction, `work` runs under a savepoint: if it fails, its writes are
 * undone and the caller's transaction stays usable; if it succeeds, its writes commit or roll
 * back with the caller's. On a pool (or a client outside a transaction) ledgerbox owns the
 * transaction, and retries it on serialization failure or deadlock a bounded number of times.
 * @internal
 */
export async function inTransaction<T>(handle: DatabaseHandle, work: (db: Session, client?: PgClient) => Promise<T>): Promise<T> {
  if (isDatabasesQueryable(handle)) {
    // A Transaction's tx() is a savepoint; a pool's or connection's tx() is a new transaction.
    // A failure before `work` began is the connect's (or BEGIN's / SAVEPOINT's); after, `work`'s
    // own statements are already typed and anything else is the host's, passed on as it is.
    const attempt = () => {
      let began = false;
      return handle
        .tx((db) => ((began = true), work(databasesSession(db))))
        .catch((error: unknown) => (began ? Promise.reject(error) : rethrowDatabasesError(handle, error, isConnectionPool(handle))));
    };
    if (isTransaction(handle)) return attempt().catch(rethrowConflict);
    return withRetries(attempt);
  }
  if (isPgPool(handle)) {
    return withRetries(async () => {
      const client = await connectTo(handle);
      // A connection terminated while idle between our statements emits 'error' on the client;
      // with no listener that is an uncaught exception that ends the host's process (the pool's
      // own listener only covers idle pooled clients). The next query fails and reports it.
      let lost: Error | undefined;
      const onError = (error: Error) => (lost = error);
      client.on('error', onError);
      let broken: Error | undefined;
      try {
        return await ownTransaction(client, work, preparingPools.get(handle));
      } catch (error) {
        if (isConnectionLost(error)) broken = error as Error;
        throw error;
      } finally {
        client.off('error', onError);
        client.release(broken ?? lost);
      }
    });
  }
  if (isPgClient(handle)) {
    return oneAtATime(handle, async () => {
      const status = await transactionStatus(handle);
      if (status === 'E') throw hostTransactionAborted();
      if (status === 'T') return underSavepoint(handle, work).catch(rethrowConflict);
      return withRetries(() => ownTransaction(handle, work));
    });
  }
  throw unsupportedHandle(handle);
}

/**
 * Runs `work`, which makes one statement that is atomic on its own and never leaves the
 * transaction failed (a function whose exception block undoes its writes and reports the error,
 * which `work` throws), with inTransaction's handling of errors but none of its extra round
 * trips: no savepoint inside the caller's transaction (a conflict there becomes
 * transaction_conflict, not retried), no BEGIN/COMMIT on a pool or a client outside a
 * transaction (the statement is its own transaction, retried on serialization failure or
 * deadlock as inTransaction retries). @internal
 */
export async function inOneStatement<T>(handle: DatabaseHandle, work: (db: Session) => Promise<T>): Promise<T> {
  if (isDatabasesQueryable(handle)) {
    const session = databasesSession(handle);
    if (isTransaction(handle)) return work(session).catch(rethrowConflict);
    return withRetries(() => work(session));
  }
  if (isPgPool(handle)) return withRetries(() => work(autocommitSession(handle)));
  if (isPgClient(handle)) {
    return oneAtATime(handle, async () => {
      const status = await transactionStatus(handle);
      if (status === 'E') throw hostTransactionAborted();
      if (status === 'T') return work(pgSession(handle)).catch(rethrowConflict);
      return withRetries(() => work(pgSession(handle)));
    });
  }
  throw unsupportedHandle(handle);
}

// Calls made at once on one connection (Promise.all over a client) would interleave their
// statements and savepoints; they take turns instead, as @databases/pg's transactions do.
const callsInFlight = new WeakMap<PgClient, Promise<unknown>>();

function oneAtATime<T>(client: PgClient, call: () => Promise<T>): Promise<T> {
  const previous = callsInFlight.get(client) ?? Promise.resolve();
  const current = previous.then(call, call);
  callsInFlight.set(client, current.catch(() => undefined));
  return current;
}

let savepointSequence = 0;

async function ownTransaction<T>(client: PgClient, work: (db: Session, client?: PgClient) => Promise<T>, names?: PreparedNames): Promise<T> {
  await client.query('begin');
  try {
    // the client too, for work that hands the transaction on (a host's workflow step)
    const result = await work(pgSession(client, names), client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined); // the connection may be gone
    throw error;
  }
}

async function underSavepoint<T>(client: PgClient, work: (db: Session, client?: PgClient) => Promise<T>): Promise<T> {
  const savepoint = `ledgerbox_${++savepointSequence}`;
  // The status pg reports can lag an error by a moment, so a failed transaction may first
  // show up here.
  await client.query(`savepoint ${savepoint}`).catch(rethrowAborted);
  try {
    const result = await work(pgSession(client), client);
    await client.query(`release savepoint ${savepoint}`);
    return result;
  } catch (error) {
    await client.query(`rollback to savepoint ${savepoint}; release savepoint ${savepoint}`).catch(() => undefined);
    throw error;
  }
}

/** 'I' idle, 'T' in a transaction, 'E' in a failed transaction. */
async function transactionStatus(client: PgClient): Promise<'I' | 'T' | 'E'> {
  const known = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.();
  if (known === 'I' || known === 'T' || known === 'E') return known;
  // Older pg without getTransactionStatus: a savepoint is only accepted inside a transaction.
  try {
    await client.query('savepoint ledgerbox_probe');
    await client.query('release savepoint ledgerbox_probe');
    return 'T';
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '25P01') return 'I'; // no_active_sql_transaction
    if (code === '25P02') return 'E'; // in_failed_sql_transaction
    throw error;
  }
}

const retryableCodes = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected

/** Retries a transaction ledgerbox owns; gives up after a bounded number of attempts. */
async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
  for (let attemptNumber = 1; ; attemptNumber++) {
    try {
      return await attempt();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === undefined || !retryableCodes.has(code)) throw error;
      if (attemptNumber >= limits.transaction_attempts_max) {
        throw new LedgerboxError(
          'transaction_conflict',
          `Gave up after ${attemptNumber} attempts: ${(error as Error).message}`,
          { retryable: true, cause: error, details: { attempts: attemptNumber, sqlstate: code } },
        );
      }
      const backoff_ms = limits.transaction_retry_backoff_ms * 2 ** (attemptNumber - 1);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * backoff_ms));
    }
  }
}

/**
 * Inside the caller's transaction we must not retry (their earlier work is part of it), but the
 * savepoint has undone ours: say so with a typed, retryable error instead of a raw SQLSTATE.
 */
function rethrowConflict(error: unknown): never {
  const code = (error as { code?: string }).code;
  if (code !== undefined && retryableCodes.has(code)) {
    throw new LedgerboxError(
      'transaction_conflict',
      `${(error as Error).message}: ledgerbox's writes were rolled back to its savepoint; retry the call or the whole transaction`,
      { retryable: true, cause: error, details: { sqlstate: code } },
    );
  }
  throw error;
}

function isConnectionLost(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === undefined || code.startsWith('08') || code === '57P01';
}

function unsupportedHandle(handle: unknown): LedgerboxError {
  return new LedgerboxError(
    'unsupported_database_handle',
    `Expected an @databases/pg pool, connection or transaction, or a node-postgres Pool or Client, got ${describeHandle(handle)}`,
  );
}

function describeHandle(handle: unknown): string {
  if (handle === null || typeof handle !== 'object') return String(handle);
  return handle.constructor?.name ?? 'object';
}

/** Reads that need no transaction: each query runs on the handle as it is. @internal */
export function autocommitSession(handle: DatabaseHandle): Session {
  return { query: (query) => queryOnce(handle, query) };
}
