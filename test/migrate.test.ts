import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { after, test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { migrate, startWorker } from '../src/index.ts';
import { workerLoggerFor } from '../src/logger.ts';
import { databaseUrl, dropDatabase, serverUrl } from './support/database.ts';

/** Every migration file, in order: what a first migrate applies. */
const allMigrations = readdirSync('migrations').filter((file) => file.endsWith('.sql')).sort().map((file) => file.replace(/\.sql$/, ''));

// These tests migrate empty databases of their own: the template path is what the rest use.
async function emptyDatabase(): Promise<string> {
  const name = `ledgerbox_migrate_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  after(() => dropDatabase(name));
  return databaseUrl(name);
}

async function scalar<T>(connectionString: string, text: string): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return Object.values((await client.query(text)).rows[0] as object)[0] as T;
  } finally {
    await client.end();
  }
}

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ledgerbox.js', ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

test('migrate installs graphile-worker and the ledger schema, and a second run applies nothing', async () => {
  const url = await emptyDatabase();
  const first = await migrate({ connectionString: url });
  assert.deepEqual(first.applied, allMigrations);
  assert.equal(await scalar(url, `select count(*)::int from ledgerbox.migrations`), allMigrations.length);
  assert.equal(await scalar(url, `select to_regproc('graphile_worker.add_job') is not null`), true);
  assert.equal(await scalar(url, `select count(*)::int from ledgerbox.currencies where code in ('USD', 'EUR', 'JPY')`), 3);

  const second = await migrate({ connectionString: url });
  assert.deepEqual(second.applied, []);
});

test('20 concurrent migrators all succeed and apply each migration exactly once', async () => {
  const url = await emptyDatabase();
  const results = await Promise.all(Array.from({ length: 20 }, () => migrate({ connectionString: url })));
  assert.equal(results.filter((result) => result.applied.length > 0).length, 1);
  assert.equal(await scalar(url, `select count(*)::int from ledgerbox.migrations`), allMigrations.length);
});

test('20 concurrent `ledgerbox migrate` processes all exit 0', async () => {
  const url = await emptyDatabase();
  const runs = await Promise.all(Array.from({ length: 20 }, () => runCli(['migrate'], { DATABASE_URL: url })));
  for (const run of runs) assert.equal(run.code, 0, run.stderr);
  assert.equal(runs.filter((run) => run.stdout.includes(`applied ${allMigrations.join(', ')}`)).length, 1);
  assert.equal(runs.filter((run) => run.stdout.includes('already up to date')).length, 19);
  assert.equal(await scalar(url, `select count(*)::int from ledgerbox.migrations`), allMigrations.length);
});

test('a migration edited after it was applied is refused with migration_checksum_mismatch', async () => {
  const url = await emptyDatabase();
  await migrate({ connectionString: url });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`update ledgerbox.migrations set checksum = 'edited' where id = 1`);
  await client.end();
  await assert.rejects(migrate({ connectionString: url }), { code: 'migration_checksum_mismatch' });
});

test('a database migrated by a newer version is refused with migration_unknown_to_code', async () => {
  const url = await emptyDatabase();
  await migrate({ connectionString: url });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`insert into ledgerbox.migrations (id, name, checksum) values (999, '0999_future', 'x')`);
  await client.end();
  await assert.rejects(migrate({ connectionString: url }), { code: 'migration_unknown_to_code' });
});

test('a migration that fails is migration_failed, rolled back whole, and not recorded as applied', async () => {
  const url = await emptyDatabase();
  // a schema someone made by hand, in the way of migration 0001
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`create schema ledgerbox; create table ledgerbox.currencies (code text)`);
  await client.end();
  await assert.rejects(migrate({ connectionString: url }), { code: 'migration_failed', message: /0001_ledger failed: relation "currencies" already exists/ });
  assert.equal(await scalar(url, `select count(*)::int from ledgerbox.migrations`), 0);
  assert.equal(await scalar(url, `select to_regclass('ledgerbox.accounts') is null`), true);
});

test('migrate without a target is database_not_configured', async () => {
  await assert.rejects(migrate({}), { code: 'database_not_configured' });
});

test('`ledgerbox migrate` with an unreachable database exits non-zero with a clear message', async () => {
  const run = await runCli(['migrate'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /ledgerbox migrate: error/);
});

test('migrate on boot with a pool of one connection does not wait on itself', async () => {
  const url = await emptyDatabase();
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    const result = await migrate({ pgPool: pool });
    assert.deepEqual(result.applied, allMigrations);
  } finally {
    await pool.end();
  }
});

test('startWorker refuses a database that lacks any of its migrations (migrations_pending, naming them), and starts once migrated', async () => {
  const url = await emptyDatabase();
  const logger = pino({ level: 'silent' });
  const options = { connectionString: url, noHandleSignals: true, reconciliation: false as const, logger };
  await assert.rejects(startWorker(options), (error: any) => {
    assert.equal(error.code, 'migrations_pending');
    assert.deepEqual(error.details.pending, allMigrations);
    return true;
  });
  await migrate({ connectionString: url });
  // a newer version's worker on a database one migration behind: the rolled-out code first
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query(`delete from ledgerbox.migrations where id = (select max(id) from ledgerbox.migrations) returning *`);
  await assert.rejects(startWorker(options), { code: 'migrations_pending', message: new RegExp(allMigrations.at(-1)!) });
  await client.query(`insert into ledgerbox.migrations select * from json_populate_record(null::ledgerbox.migrations, $1)`, [JSON.stringify(rows[0])]);
  await client.end();
  const worker = await startWorker(options);
  await worker.stop();
});

test('a database with step results and attempts keeps every one through the lean-steps migration, each result on its attempt, read as before', async () => {
  const url = await emptyDatabase();
  // the database as the release before it left it: graphile-worker's schema and every migration
  // before lean_steps, applied and recorded as migrate applies them (found by name: its number
  // is whatever its place in the sequence is)
  const files = readdirSync('migrations').filter((file) => file.endsWith('.sql')).sort();
  const lean = files.findIndex((file) => file.endsWith('_lean_steps.sql'));
  assert.ok(lean > 0, 'the lean_steps migration is there');
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined); // an idle connection lost meanwhile: the next query says so
  await runWorkerMigrations({ pgPool: pool, logger: workerLoggerFor(pino({ level: 'silent' })) });
  await pool.end();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`create schema ledgerbox; create table ledgerbox.migrations (id integer primary key, name text not null, checksum text not null, applied_at timestamptz not null default now())`);
    for (const [index, file] of files.slice(0, lean).entries()) {
      const text = readFileSync(`migrations/${file}`, 'utf8');
      await client.query('begin');
      await client.query('insert into ledgerbox.migrations (id, name, checksum) values ($1, $2, $3)', [index + 1, file.replace(/\.sql$/, ''), createHash('sha256').update(text).digest('hex')]);
      await client.query(text);
      await client.query('commit');
    }
    // what steps had written: a result with its succeeded attempt after a failure, one whose
    // attempt is missing, a step that only failed, a step recorded twice (before already_done)
    const { rows } = await client.query<{ id: string }>(`insert into ledgerbox.workflows (kind, key, current_step) values ('old', 'old:1', 'third') returning id::text`);
    const id = rows[0]!.id;
    await client.query(
      `insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, outcome, error, started_at, finished_at) values
         ($1, 'first', 1, 5, 'failed', 'boom', '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z'),
         ($1, 'first', 2, 5, 'succeeded', null, '2026-01-01T00:00:02Z', '2026-01-01T00:00:03Z'),
         ($1, 'third', 1, 5, 'failed', 'later', '2026-01-01T00:00:06Z', '2026-01-01T00:00:07Z'),
         ($1, 'twice', 1, 5, 'succeeded', null, '2026-01-01T00:00:08Z', '2026-01-01T00:00:09Z'),
         ($1, 'twice', 1, 5, 'succeeded', null, '2026-01-01T00:00:08Z', '2026-01-01T00:00:10Z')`,
      [id],
    );
    await client.query(
      `insert into ledgerbox.step_results (workflow_id, step, result, recorded_at) values
         ($1, 'first', '{"quote": "q-1", "amount": "1234"}', '2026-01-01T00:00:03Z'),
         ($1, 'second', 'null', '2026-01-01T00:00:05Z'),
         ($1, 'twice', '[1, 2]', '2026-01-01T00:00:09Z')`,
      [id],
    );
    const read = `select workflow_id::text, step, result, to_json(recorded_at) #>> '{}' as recorded_at from ledgerbox.step_results order by step`;
    const resultsBefore = (await client.query(read)).rows;
    const attemptsBefore = (await client.query(`select id::text, step, outcome, error from ledgerbox.step_attempts order by id`)).rows;

    const migrated = await migrate({ connectionString: url });
    assert.deepEqual(migrated.applied, allMigrations.slice(lean));

    // psql users read the same results, at the same times
    assert.deepEqual((await client.query(read)).rows, resultsBefore);
    // every attempt is still there, in order, unchanged; the result without an attempt has one now
    const attemptsAfter = (await client.query(`select id::text, step, outcome, error, attempt, result from ledgerbox.step_attempts order by id`)).rows;
    assert.deepEqual(attemptsAfter.slice(0, attemptsBefore.length).map(({ id, step, outcome, error }) => ({ id, step, outcome, error })), attemptsBefore);
    // (node-postgres reads the JSON null of `second` as null too: its presence is checked in SQL)
    assert.deepEqual(
      attemptsAfter.map(({ step, outcome, attempt, result }) => [step, outcome, attempt, result]),
      [
        ['first', 'failed', 1, null],
        ['first', 'succeeded', 2, { quote: 'q-1', amount: '1234' }],
        ['third', 'failed', 1, null],
        ['twice', 'succeeded', 1, [1, 2]],
        ['twice', 'succeeded', 1, null],
        ['second', 'succeeded', 1, null],
      ],
    );
    assert.equal(await scalar(url, `select result is not null from ledgerbox.step_attempts where step = 'second'`), true);
    // and the rules hold from here on: no second result for a step
    await assert.rejects(
      client.query(`insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, outcome, started_at, result) values ($1, 'first', 3, 5, 'succeeded', now(), '{}')`, [id]),
      { code: '23505', constraint: 'step_attempts_one_result' },
    );
  } finally {
    await client.end();
  }
});
