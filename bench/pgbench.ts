import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** pgbench on PATH, else the newest under /usr/lib/postgresql/<version>/bin; undefined when neither exists. */
export async function findPgbench(): Promise<string | undefined> {
  try {
    await run('pgbench', ['--version']);
    return 'pgbench';
  } catch {
    // not on PATH: look where Debian's server packages put it
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((version) => existsSync(`${root}/${version}/bin/pgbench`))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? `${root}/${versions[0]}/bin/pgbench` : undefined;
}

export async function initialize(pgbench: string, connectionString: string): Promise<void> {
  await run(pgbench, ['-i', '-s', '1', '-q', connectionString], { maxBuffer: 16 * 1024 * 1024 });
}

/** The built-in TPC-B-like script; returns transactions per second without connection time. */
export async function tpcb(pgbench: string, connectionString: string, clients: number, duration_s: number): Promise<number> {
  const threads = Math.min(clients, 2);
  const { stdout } = await run(pgbench, ['-c', String(clients), '-j', String(threads), '-T', String(duration_s), '-n', connectionString], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const match = /tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(stdout);
  if (match === null) throw new Error(`Expected pgbench to print its tps, got:\n${stdout}`);
  return Number(match[1]);
}
