// The PostgreSQL a chaos run uses. Without DATABASE_URL: an embedded server of the run's own,
// in a fresh temporary data directory on a free port, which the run can stop and start (the
// PostgreSQL restart fault). With DATABASE_URL: a fresh database on that server, which the run
// does not control, so the restart fault is skipped. Either way the run starts from an empty
// ledger, so every figure it checks is its own.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../src/db/embedded.ts';

export interface ChaosDatabase {
  /** The run's database. */
  connectionString: string;
  /** For humans: where it is (no password). */
  description: string;
  /** What `close(true)` leaves behind: the database's name on the server, or the embedded data directory. */
  location: string;
  /** Why the PostgreSQL restart fault cannot be injected, if it cannot. */
  restartSkipped: string | null;
  /** Stops the server, waits `downtime_ms`, starts it again on the same data and port. */
  restart(downtime_ms: number): Promise<void>;
  /** Stops what the run started; `keep` leaves the data for a look around. */
  close(keep: boolean): Promise<void>;
}

/** `url` with its application_name set: how the fault injector finds a process's connections. */
export function withApplicationName(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', name);
  return parsed.toString();
}

export function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

export async function openChaosDatabase(options: { seed: number; log: (line: string) => void }): Promise<ChaosDatabase> {
  const given = process.env.DATABASE_URL;
  return given !== undefined && given !== '' ? freshDatabaseOn(given, options.seed) : ownEmbeddedServer(options.log);
}

async function freshDatabaseOn(serverUrl: string, seed: number): Promise<ChaosDatabase> {
  const name = `ledgerbox_chaos_${seed}_${randomBytes(4).toString('hex')}`;
  await withClient(serverUrl, (client) => client.query(`create database "${name}"`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const connectionString = url.toString();
  return {
    connectionString,
    description: `database ${name} on DATABASE_URL's server (${redact(serverUrl)})`,
    location: name,
    restartSkipped: 'DATABASE_URL is set: the run does not control that server, so it does not restart it',
    restart: async () => {
      throw new Error('this run cannot restart a server it did not start');
    },
    close: async (keep) => {
      if (!keep) await withClient(serverUrl, (client) => client.query(`drop database if exists "${name}" with (force)`));
    },
  };
}

async function ownEmbeddedServer(log: (line: string) => void): Promise<ChaosDatabase> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ledgerbox-chaos-'));
  // as root the server runs as the `postgres` user, who must be able to walk into it
  await fs.chmod(parent, 0o755);
  const dataDirectory = path.join(parent, 'data');
  const port = await freePort();
  let server: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dataDirectory, port, logger: log });
  const connectionString = server.connectionString;
  return {
    connectionString,
    description: `embedded PostgreSQL of this run (${redact(connectionString)}, data in ${dataDirectory})`,
    location: dataDirectory,
    restartSkipped: null,
    restart: async (downtime_ms) => {
      await server?.stop();
      server = undefined;
      await new Promise((resolve) => setTimeout(resolve, downtime_ms));
      server = await startEmbeddedPostgres({ dataDirectory, port, logger: log });
    },
    close: async (keep) => {
      await server?.stop();
      server = undefined;
      if (!keep) await fs.rm(parent, { recursive: true, force: true });
    },
  };
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withApplicationName(url, 'chaos-admin') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A port nothing listens on now (the OS picks it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
