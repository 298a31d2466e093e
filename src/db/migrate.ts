import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { assign, define, object, optional } from 'superstruct';
import { LoggerShape, secretValue, validate } from '../contracts.js';
import { LedgerboxError } from '../errors.js';
import { defaultLogger, workerLoggerFor, type Logger } from '../logger.js';

export interface MigrateOptions {
  /** Where to migrate. Give this or `pgPool`. */
  connectionString?: string;
  /** A node-postgres pool to borrow one connection from (returned when done). */
  pgPool?: pg.Pool;
  /** Default: silent unless LEDGERBOX_LOG_LEVEL is set. */
  logger?: Logger;
}

export interface MigrateResult {
  /** Our migrations applied by this call, e.g. `['0001_ledger']`; empty when already up to date. */
  applied: string[];
}

interface MigrationFile {
  id: number;
  name: string;
  checksum: string;
  sql: string;
}

/** What migrate and startWorker connect with. The connection string is a secret: shown by name only. @internal */
export const DatabaseOptions = object({
  connectionString: optional(secretValue(define<string>('a connection string', (value) => typeof value === 'string' && value !== ''))),
  // by shape, not instanceof: a host's pg may be another copy of the package
  pgPool: optional(
    define<pg.Pool>('a node-postgres Pool', (value) => typeof value === 'object' && value !== null && ['connect', 'query', 'end'].every((method) => typeof (value as Record<string, unknown>)[method] === 'function') && 'options' in value),
  ),
});

/** Every option migrate takes: anything else (a misspelling) is refused before it connects. */
const MigrateOptionsStruct = assign(DatabaseOptions, object({ logger: optional(LoggerShape) }));

/** Taken for the whole run, so concurrent migrators (20 pods booting at once) queue up. */
const migration_lock_key = '7310584171329216623';

const migrationsDirectory = fileURLToPath(new URL('../../migrations/', import.meta.url));
const fileNamePattern = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/**
 * Brings the database up to date: graphile-worker's schema first (the outbox lives in its job
 * table), then ledgerbox's numbered, forward-only migrations, each in its own transaction.
 * Applied migrations are recorded with a sha256 checksum; a file edited after it was applied
 * is refused rather than silently skipped. Safe to run concurrently and repeatedly.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  validate(MigrateOptionsStruct, options, 'options');
  if (options.pgPool === undefined && options.connectionString === undefined) {
    throw new LedgerboxError('database_not_configured', 'migrate needs `connectionString` or `pgPool`');
  }
  const logger = (options.logger ?? defaultLogger()).child({ component: 'migrate' });
  const files = await loadMigrationFiles();
  // The lock lives on a connection of its own, not one borrowed from the pool: graphile-worker
  // migrates through the pool meanwhile, and a pool of one would wait on itself.
  const client = new pg.Client(options.pgPool ? options.pgPool.options : { connectionString: options.connectionString });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1::bigint)', [migration_lock_key]);
    try {
      await runWorkerMigrations({
        ...(options.pgPool ? { pgPool: options.pgPool } : { connectionString: options.connectionString }),
        logger: workerLoggerFor(logger),
      });
      return { applied: await applyOurs(client, files, logger) };
    } finally {
      await client.query('select pg_advisory_unlock($1::bigint)', [migration_lock_key]);
    }
  } finally {
    await client.end();
  }
}

/**
 * The migrations this version of ledgerbox has that the database has not applied, by name: a
 * worker started on a database its code is newer than would fail every step (their functions
 * are missing), so startWorker refuses to start instead. @internal
 */
export async function pendingMigrations(pool: pg.Pool): Promise<string[]> {
  const files = await loadMigrationFiles();
  const { rows } = await pool.query<{ exists: boolean; readable: boolean }>(`
    select to_regclass('ledgerbox.migrations') is not null as exists,
      to_regclass('ledgerbox.migrations') is not null and has_table_privilege('ledgerbox.migrations', 'select') as readable`);
  if (rows[0]?.exists !== true) return files.map((file) => file.name);
  // a role that may not read the table (a least-privilege worker role) cannot tell: no refusal
  if (rows[0].readable !== true) return [];
  const applied = await pool.query<{ id: number }>('select id from ledgerbox.migrations');
  const ids = new Set(applied.rows.map((row) => row.id));
  return files.filter((file) => !ids.has(file.id)).map((file) => file.name);
}

async function applyOurs(client: pg.Client, files: MigrationFile[], logger: Logger): Promise<string[]> {
  await client.query(`
    create schema if not exists ledgerbox;
    create table if not exists ledgerbox.migrations (
      id integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    );`);
  const { rows } = await client.query<{ id: number; name: string; checksum: string }>(
    'select id, name, checksum from ledgerbox.migrations order by id',
  );
  for (const row of rows) {
    const file = files.find((candidate) => candidate.id === row.id);
    if (file === undefined) {
      throw new LedgerboxError(
        'migration_unknown_to_code',
        `The database has migration ${row.id} (${row.name}) that this version of ledgerbox does not know: it was migrated by a newer version`,
        { details: { id: row.id, name: row.name } },
      );
    }
    if (file.checksum !== row.checksum) {
      throw new LedgerboxError(
        'migration_checksum_mismatch',
        `Migration ${file.name} was edited after it was applied (checksum ${row.checksum.slice(0, 12)}… in the database, ${file.checksum.slice(0, 12)}… on disk); add a new migration instead`,
        { details: { id: file.id, name: file.name, applied: row.checksum, onDisk: file.checksum } },
      );
    }
  }
  const applied: string[] = [];
  for (const file of files.filter((candidate) => !rows.some((row) => row.id === candidate.id))) {
    logger.info({ migration: file.name }, 'applying migration');
    await client.query('begin');
    try {
      await client.query('insert into ledgerbox.migrations (id, name, checksum) values ($1, $2, $3)', [file.id, file.name, file.checksum]);
      await client.query(file.sql);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw new LedgerboxError('migration_failed', `Migration ${file.name} failed: ${(error as Error).message}`, {
        cause: error,
        details: { id: file.id, name: file.name },
      });
    }
    applied.push(file.name);
  }
  return applied;
}

async function loadMigrationFiles(): Promise<MigrationFile[]> {
  const names = (await readdir(migrationsDirectory)).filter((name) => name.endsWith('.sql')).sort();
  const files: MigrationFile[] = [];
  for (const [index, fileName] of names.entries()) {
    const match = fileNamePattern.exec(fileName);
    if (match === null || Number(match[1]) !== index + 1) {
      throw new LedgerboxError('migration_failed', `Migration files must be numbered 0001_name.sql, 0002_… without gaps; found ${fileName} at position ${index + 1}`);
    }
    const sql = await readFile(`${migrationsDirectory}${fileName}`, 'utf8');
    files.push({
      id: index + 1,
      name: fileName.replace(/\.sql$/, ''),
      checksum: createHash('sha256').update(sql).digest('hex'),
      sql,
    });
  }
  return files;
}
