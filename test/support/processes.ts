import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

/** What a finished process said. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The real psql binary running one of sql/'s files, as the operator runs it. */
export function psqlFile(connectionString: string, file: string, variables: Record<string, string> = {}): Promise<Run> {
  const args = [connectionString, '-X', '-v', 'ON_ERROR_STOP=1', '--pset=pager=off'];
  for (const [name, value] of Object.entries(variables)) args.push('-v', `${name}=${value}`);
  return run('psql', [...args, '-f', file]);
}

/** The built `ledgerbox` command (npm test builds first) against a database. */
export function ledgerbox(connectionString: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return run(process.execPath, ['bin/ledgerbox.js', ...args], { DATABASE_URL: connectionString, LEDGERBOX_LOG_LEVEL: 'silent', ...env });
}

export function assertOk(result: Run, what: string): string {
  assert.equal(result.code, 0, `${what} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}
