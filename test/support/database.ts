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

/**
 * The suite's bound on connections, so that it passes beside another run on the same server
 * (two worktrees' `npm test` at once used to fail a few tests on `too many clients already`).
 *
 * A file opens its own pool (`pool` below, at most `test_pool_max`), and some open more: a
 * worker's pool (concurrency + 4) and its heartbeat client, a second pool of clients, an
 * @databases/pg pool (10), a child process's pools, and short admin connections. The largest
 * (exchange.load, workflows.crash, ledger.concurrency) stay under `connections_per_file`.
 * Each file holds one of the server's "file slots" while it runs: an advisory lock, in the
 * server's own database, out of usable connections / connections_per_file (two on a server of
 * 100), taken by every run on that server. test/run.ts runs two files at a time; a second run
 * waits for a slot instead of taking connections the first one needs.
 */
const test_pool_max = 10;
const connections_per_file = 40;
/** Connections left for whatever else uses the server (psql, the other run's admin clients). */
const connections_headroom = 8;
const slotLockClass = 424243;

/** Waits for a free file slot; the slot is held until the returned client ends. */
async function takeFileSlot(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: serverUrl() });
  client.on('error', () => undefined); // a server that goes away ends the slot with it
  await client.connect();
  try {
    const { rows } = await client.query<{ usable: number }>(
      `select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int as usable`,
    );
    const slots = Math.max(1, Math.floor((rows[0]!.usable - connections_headroom) / connections_per_file));
    for (let round = 0; ; round++) {
      for (let slot = 0; slot < slots; slot++) {
        const taken = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, $2) as ok', [slotLockClass, slot]);
        if (taken.rows[0]!.ok) return client;
      }
      // until another file's slot is free: its `after` ends the client that holds it
      await new Promise((resolve) => setTimeout(resolve, Math.min(25 * 2 ** round, 500)));
    }
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}
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
  const pool = new pg.Pool({ connectionString: databaseUrl(name), max: test_pool_max });
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
  const slot = await takeFileSlot();
  const database = await createTestDatabase().catch(async (error: unknown) => {
    await slot.end();
    throw error;
  });
  after(async () => {
    try {
      for (const close of (closersOf.get(database) ?? []).reverse()) await close();
      try {
        await assertLedgerInvariants(database.pool);
      } finally {
        await database.pool.end();
      }
      await dropDatabase(database.name);
    } finally {
      await slot.end();
    }
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
