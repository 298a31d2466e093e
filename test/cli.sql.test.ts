// `ledgerbox sql`: the operator's psql files from wherever the package is installed (issue 15),
// run against a real database through psql exactly as the README shows.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { useTestDatabase } from './support/database.ts';

const run = promisify(execFile);
const db = await useTestDatabase();

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/ledgerbox.js', ...args], { env: { ...process.env, DATABASE_URL: db.connectionString } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test('lists every operator query with the question it answers', async () => {
  const { code, stdout } = await cli(['sql']);
  assert.equal(code, 0);
  assert.match(stdout, /^failed_jobs\s+What failed, for whom, how much money, and why\?/m);
  assert.match(stdout, /^workflow_timeline\s+Where did this workflow break\?/m);
});

test('prints a query, or its path, and refuses an unknown name with exit code 2', async () => {
  const printed = await cli(['sql', 'failed_jobs']);
  assert.equal(printed.code, 0);
  assert.equal(printed.stdout, readFileSync('sql/failed_jobs.sql', 'utf8'));
  const withSuffix = await cli(['sql', 'failed_jobs.sql', '--path']);
  assert.equal(withSuffix.code, 0);
  assert.ok(existsSync(withSuffix.stdout.trim()), withSuffix.stdout);
  const unknown = await cli(['sql', 'drop_everything']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /\[invalid_input\]: No operator query "drop_everything": expected one of .*failed_jobs/);
});

test('piped into psql it answers on the database', async () => {
  await db.pool.query(`select graphile_worker.add_job('shop.receipt', '{}'::json, max_attempts => 1)`);
  await db.pool.query(`update graphile_worker._private_jobs set attempts = 1, last_error = 'smtp refused' where task_id = (select id from graphile_worker._private_tasks where identifier = 'shop.receipt')`);
  const printed = await cli(['sql', 'failed_jobs']);
  const output: string = await new Promise((resolve, reject) => {
    const psql = spawn('psql', [db.connectionString, '-X', '-q', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    psql.stdout.on('data', (chunk) => (text += chunk));
    psql.stderr.on('data', (chunk) => (text += chunk));
    psql.on('error', reject);
    psql.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`psql exited ${code}: ${text}`))));
    psql.stdin.end(printed.stdout);
  });
  assert.match(output, /shop\.receipt/);
  assert.match(output, /smtp refused/);
});
