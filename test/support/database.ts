import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { after } from 'node:test';
import pg from 'pg';
import { migrate } from '../../src/index.ts';
import { assertLedgerInvariants } from './invariants.ts';

/**
 * One database per test file, cloned from a template migrated once per migration set.
 * `test/run.ts` sets DATABASE_URL (a server, or the embedded fallback) before any file runs.
 */
export interface TestDatabase {
  connectionString: string;
  name: string;
  /** A pool for the test's own use; closed after the file. */
  pool: pg.Pool;
  /** Runs `close` when the file's tests end, before the database is checked and dropped (workers, pools). */
  onClose(close: () => Promise<unknown>): void;
}

const templateLock = 424242;
const closersOf = new WeakMap<TestDatabase, (() => Promise<unknown>)[]>();

export function serverUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set: run the tests with `npm test`, which provides one');
  return url;
}

export function databaseUrl(name: string): string {
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/** A name that changes whenever a migration (ours or graphile-worker's) changes. */
function templateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync('migrations').sort()) hash.update(file).update(readFileSync(`migrations/${file}`));
  hash.update(JSON.parse(readFileSync('node_modules/graphile-worker/package.json', 'utf8')).version);
  return `ledgerbox_template_${hash.digest('hex').slice(0, 16)}`;
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [templateLock]);
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const template = templateName();
  const name = `ledgerbox_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(async (admin) => {
    const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [template]);
    if (rowCount === 0) {
      await admin.query(`create database "${template}_building"`).catch(async () => {
        await admin.query(`drop database "${template}_building"`);
        await admin.query(`create database "${template}_building"`);
      });
      await migrate({ connectionString: databaseUrl(`${template}_building`) });
      await admin.query(`alter database "${template}_building" rename to "${template}"`);
    }
    await admin.query(`create database "${name}" template "${template}"`);
  });
  const pool = new pg.Pool({ connectionString: databaseUrl(name), max: 20 });
  const closers: (() => Promise<unknown>)[] = [];
  const database: TestDatabase = { connectionString: databaseUrl(name), name, pool, onClose: (close) => void closers.push(close) };
  closersOf.set(database, closers);
  return database;
}

/**
 * Creates this file's database now; when the file's tests end, re-checks the ledger's
 * invariants on whatever the tests left behind, then drops it.
 */
export async function useTestDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  after(async () => {
    for (const close of (closersOf.get(database) ?? []).reverse()) await close();
    try {
      await assertLedgerInvariants(database.pool);
    } finally {
      await database.pool.end();
    }
    await dropDatabase(database.name);
  });
  return database;
}

/**
 * pg-pool's end() resolves while its connections are still saying goodbye; a forced drop
 * would kill them mid-way and their 'error' events would escape. So wait (bounded) for the
 * database to empty, then drop it, forcing only what a test leaked.
 */
export async function dropDatabase(name: string): Promise<void> {
  await withAdmin(async (admin) => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const { rows } = await admin.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
      if (rows[0].n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await admin.query(`drop database if exists "${name}" with (force)`);
  });
}
