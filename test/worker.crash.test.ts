import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { createAccount, getBalance, getExchange, postTransfer, startExchange } from '../src/index.ts';
import { inTransaction } from '../src/db/handle.ts';
import { unlockStaleWorkers } from '../src/worker/worker-queries.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
const children: ChildProcess[] = [];
after(() => children.forEach((child) => child.exitCode === null && child.kill('SIGKILL')));

/** `ledgerbox worker` in a process of its own, the way it runs in production. */
function workerProcess(extra: string[] = []): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      'bin/ledgerbox.js', 'worker', '--fake-providers', '--concurrency', '4', '--poll-interval-ms', '50',
      '--retry-base-ms', '20', '--stale-worker-ms', '1000', '--heartbeat-ms', '200', ...extra,
    ],
    { env: { ...process.env, DATABASE_URL: db.connectionString, LEDGERBOX_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.resume();
  child.stderr!.on('data', (chunk) => process.env.DEBUG_WORKER && process.stderr.write(chunk));
  children.push(child);
  return child;
}

const exitOf = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

async function count(sql: string, values: unknown[] = []): Promise<number> {
  return (await db.pool.query(sql, values)).rows[0].n;
}

test('a worker killed with SIGKILL mid-step, then another started: every exchange completes, nothing is posted twice', async () => {
  await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
  const customers = ['kai', 'lea', 'max'];
  for (const name of customers) {
    await createAccount(db.pool, { key: `${name}:USD`, currency: 'USD' });
    await createAccount(db.pool, { key: `${name}:EUR`, currency: 'EUR' });
    await postTransfer(db.pool, { key: `fund:${name}`, legs: [{ from: 'world:USD', to: `${name}:USD`, amount: usd(10_000_00n) }] });
  }
  const ids: string[] = [];
  for (let index = 0; index < 30; index++) {
    const name = customers[index % customers.length]!;
    ids.push((await startExchange(db.pool, { key: `crash-${index}`, from: `${name}:USD`, to: `${name}:EUR`, amount: usd(BigInt(1_00 + index)) })).exchangeId);
  }

  // half the provider calls take 250 ms, so steps are in flight when the process dies
  const first = workerProcess(['--slow-rate', '0.5', '--slow-ms', '250', '--seed', '11']);
  await waitFor('some progress, with jobs in flight', async () => {
    const done = await count(`select count(*)::int as n from ledgerbox.workflows where status = 'completed'`);
    const locked = await count(`select count(*)::int as n from graphile_worker.jobs where locked_by is not null`);
    return done >= 3 && done < ids.length && locked > 0 ? true : undefined;
  });
  first.kill('SIGKILL');
  assert.equal((await exitOf(first)).signal, 'SIGKILL');
  const lockedByTheDead = await count(`select count(*)::int as n from graphile_worker.jobs where locked_by is not null`);

  const second = workerProcess(['--seed', '12']);
  await waitFor(
    'every exchange to complete',
    async () => ((await count(`select count(*)::int as n from ledgerbox.workflows where status = 'completed'`)) === ids.length ? true : undefined),
    60_000,
  ).catch(async (error) => {
    const { rows } = await db.pool.query(`select status, current_step, count(*)::int as n from ledgerbox.workflows group by 1, 2`);
    const jobs = await db.pool.query(`select task_identifier, attempts, locked_by, last_error, run_at from graphile_worker.jobs where task_identifier = 'ledgerbox:step'`);
    throw new Error(`${(error as Error).message}: ${JSON.stringify(rows)} ${JSON.stringify(jobs.rows)} second worker exit ${second.exitCode}`);
  });
  assert.ok(lockedByTheDead > 0, 'the dead worker held jobs that had to be unlocked');

  // nothing twice: one hold and one settlement per exchange, one result per step
  assert.equal(await count(`select count(*)::int as n from ledgerbox.transfers where key like 'crash-%:settle'`), ids.length);
  assert.equal(await count(`select count(*)::int as n from ledgerbox.transfers where key like 'crash-%:hold'`), ids.length);
  assert.equal(await count(`select count(*)::int as n from ledgerbox.step_results`), ids.length * 4);
  for (const name of customers) {
    const spent = ids
      .map((_, index) => index)
      .filter((index) => customers[index % customers.length] === name)
      .reduce((sum, index) => sum + BigInt(1_00 + index), 0n);
    assert.equal(minor((await getBalance(db.pool, `${name}:USD`)).posted), 10_000_00n - spent);
    assert.equal(minor((await getBalance(db.pool, `${name}:USD`)).pendingOutgoing), 0n);
  }
  let converted = 0n;
  for (const id of ids) converted += minor((await getExchange(db.pool, id)).targetAmount!);
  let credited = 0n;
  for (const name of customers) credited += minor((await getBalance(db.pool, `${name}:EUR`)).posted);
  assert.equal(credited, converted);

  // a graceful stop: SIGTERM lets running jobs finish, then the worker leaves no trace of itself
  second.kill('SIGTERM');
  assert.deepEqual(await exitOf(second), { code: 0, signal: null });
  assert.equal(await count(`select count(*)::int as n from ledgerbox.workers`), 0);
});

test('a worker that died before its first heartbeat is taken for dead once it has held a ledgerbox job too long; other tasks are left to their holder', async () => {
  // as graphile-worker's pool would: two jobs locked by a pool id that never beat
  const { rows } = await db.pool.query(`
    select (graphile_worker.add_job('ledgerbox:step', '{"workflowId": "00000000-0000-4000-8000-000000000001", "step": "settle"}'::json)).id::text as step,
           (graphile_worker.add_job('someone_else.long_task', '{}'::json)).id::text as other`);
  const { step, other } = rows[0];
  const lockedAgo = async (id: string, holder: string, seconds: number) =>
    db.pool.query(`update graphile_worker._private_jobs set locked_by = $2, locked_at = now() - make_interval(secs => $3) where id = $1`, [id, holder, seconds]);
  await lockedAgo(step, 'pool-never-beat', 5);
  await lockedAgo(other, 'pool-of-another-deployment', 3_600);
  const unlock = (staleAfter_ms: number) => inTransaction(db.pool, (session) => unlockStaleWorkers(session, staleAfter_ms));
  const holders = async () =>
    (await db.pool.query(`select id::text, locked_by from graphile_worker._private_jobs where id = any($1::bigint[]) order by id`, [[step, other]])).rows;

  assert.deepEqual(await unlock(30_000), [], 'held for 5 s only: maybe alive, not yet registered');
  await lockedAgo(step, 'pool-never-beat', 60);
  assert.deepEqual(await unlock(30_000), ['pool-never-beat']);
  assert.deepEqual(await holders(), [
    { id: step, locked_by: null },
    // not a ledgerbox task: its holder may be a live worker of another deployment
    { id: other, locked_by: 'pool-of-another-deployment' },
  ]);
  await db.pool.query(`delete from graphile_worker._private_jobs where id = any($1::bigint[])`, [[step, other]]);
});
