import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { migrate } from '../src/index.ts';
import { resolveDatabase, type ResolvedDatabase } from '../src/db/connection.ts';

/** The server every benchmark and every peer of the run shares. */
export interface BenchServer {
  connectionString: string;
  description: string;
  version: string;
  close(): Promise<void>;
}

export async function openServer(): Promise<BenchServer> {
  const resolved: ResolvedDatabase = await resolveDatabase();
  const admin = new pg.Client({ connectionString: resolved.connectionString });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ server_version: string }>('show server_version');
    return { ...resolved, version: rows[0]!.server_version };
  } finally {
    await admin.end();
  }
}

export function databaseUrl(server: BenchServer, name: string): string {
  const url = new URL(server.connectionString);
  url.pathname = `/${name}`;
  return url.toString();
}

async function withAdmin<T>(server: BenchServer, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: server.connectionString });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/**
 * A database of its own for one benchmark: created empty, migrated when `migrated` (pgbench
 * brings its own schema), and dropped when `work` settles, whatever it did.
 */
export async function withDatabase<T>(
  server: BenchServer,
  purpose: string,
  options: { migrated: boolean },
  work: (connectionString: string) => Promise<T>,
): Promise<T> {
  const name = `ledgerbox_bench_${purpose}_${randomBytes(4).toString('hex')}`;
  await withAdmin(server, (admin) => admin.query(`create database "${name}"`));
  const connectionString = databaseUrl(server, name);
  try {
    if (options.migrated) await migrateWithOwnPool(connectionString);
    return await work(connectionString);
  } finally {
    await withAdmin(server, (admin) => admin.query(`drop database if exists "${name}" with (force)`));
  }
}

/**
 * graphile-worker's migrations keep a pool of their own when given a connection string, and
 * the forced DROP DATABASE at the end would kill its idle connections under it: lend one we end.
 */
async function migrateWithOwnPool(connectionString: string): Promise<void> {
  const pool = quietPool({ connectionString, max: 2 });
  try {
    await migrate({ pgPool: pool, logger: pino({ level: 'silent' }) });
  } finally {
    await pool.end();
  }
}

/**
 * A pool whose connections may be killed by the forced DROP DATABASE after a benchmark without
 * crashing the run (graphile-worker also asks for these handlers on a pool it is lent).
 */
export function quietPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
