/**
 * Many workers on one database (issue 16): four worker processes, alike (startWorker in
 * test/support/host-workflow-worker.ts, none special), share a few thousand host workflows and
 * host jobs; one is killed with SIGKILL while it is inside a step; the other three finish.
 * Outcomes are read back from rows: every workflow terminal, the ledger's invariants, every
 * effect done once, and no job left locked by the dead process.
 *
 * graphile-worker 0.17 frees the locks of a crashed process only after its four-hour lock
 * timeout (or when a caller runs graphile_worker.force_unlock_workers); ledgerbox's runner
 * heartbeats into ledgerbox.workers and every live worker force-unlocks the jobs of one whose
 * heartbeat is stale (src/worker/worker-queries.ts). So no restart is needed: the survivors free
 * the dead one's jobs, and the test configures a short stale delay for that.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { createAccount, enqueue, postTransfer, startWorkflow } from '../src/index.ts';
import { crashHostTables, crashPaymentWorkflow, merchantAvailable, merchantPending, payerAccount, transactionalEffectTask } from './support/crash-host.ts';
import { useTestDatabase } from './support/database.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const workflows = 2_000;
const hostJobs = 300;
/** Payments share these account triples, so the workers contend on accounts as a real ledger's do. */
const groups = 20;
const amountOf = (group: number) => BigInt(100 + group);

const db = await useTestDatabase();
await db.pool.query(crashHostTables);
const workflow = crashPaymentWorkflow(undefined);

interface WorkerProcess {
  child: ChildProcess;
  name: string;
  workerIds: Promise<string[]>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const children: ChildProcess[] = [];
after(() => children.forEach((child) => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));

function workerProcess(name: string): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/host-workflow-worker.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: db.connectionString,
      CRASH_AT_PLANNED_POINTS: '0',
      WORKER_CONCURRENCY: '4',
      // generous for a loaded 2-core machine (a live worker's beat must not look stale), short
      // enough that the survivors free the dead one's jobs within seconds
      WORKER_HEARTBEAT_MS: '250',
      WORKER_STALE_MS: '2500',
      // node-postgres names every connection of the process after it: the test can tell from
      // pg_stat_activity when this process is inside a transaction
      PGAPPNAME: name,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => {
    stderr += chunk;
    if (process.env.DEBUG_WORKER) process.stderr.write(chunk);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const workerIds = new Promise<string[]>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) if (line.startsWith('{"ready":true')) resolve(JSON.parse(line).workerIds);
    });
    void exit.then(({ code, signal }) => reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${stderr}`)));
  });
  return { child, name, workerIds, exit, output: () => `${name} stdout:\n${stdout}\nstderr:\n${stderr}` };
}

async function count(text: string, values: unknown[] = []): Promise<number> {
  return (await db.pool.query(text, values)).rows[0].n;
}

test('four worker processes share thousands of workflows and jobs; one killed with SIGKILL mid-step; the rest finish, each effect once', async () => {
  await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
  for (let group = 0; group < groups; group++) {
    const payment = `group-${group}`;
    for (const account of [payerAccount(payment), merchantPending(payment), merchantAvailable(payment)]) await createAccount(db.pool, { key: account, currency: 'USD' });
    await postTransfer(db.pool, { key: `fund:${payment}`, legs: [{ from: 'world:USD', to: payerAccount(payment), amount: usd(1_000_000_00n) }] });
    await db.pool.query('insert into crash_payments (key, amount) values ($1, $2)', [payment, amountOf(group).toString()]);
  }
  for (let index = 0; index < workflows; index++) {
    await startWorkflow(db.pool, workflow, { key: `many-${index}`, input: { payment: `group-${index % groups}` } });
  }
  for (let index = 0; index < hostJobs; index++) await enqueue(db.pool, transactionalEffectTask, { effect: `job-${index}` });

  const workers = ['many-a', 'many-b', 'many-c', 'many-d'].map(workerProcess);
  const ids = await Promise.all(workers.map((worker) => worker.workerIds));
  const victim = workers[1]!;
  const victimIds = ids[1]!;

  // inside a step: one of its connections holds a transaction that has written (an xid) while a
  // step job is locked by it, and work is left for the others
  await waitFor(
    `${victim.name} to be inside a step with work left`,
    async () => {
      const { rows } = await db.pool.query(
        `select
           (select count(*)::int from pg_stat_activity
             where application_name = $1 and backend_xid is not null and state in ('active', 'idle in transaction')) as writing,
           (select count(*)::int from graphile_worker.jobs where task_identifier = 'ledgerbox:step' and locked_by = any($2::text[])) as locked,
           (select count(*)::int from ledgerbox.workflows where status = 'completed') as completed`,
        [victim.name, victimIds],
      );
      const { writing, locked, completed } = rows[0];
      return writing > 0 && locked > 0 && completed >= 50 && completed < workflows / 2 ? true : undefined;
    },
    60_000,
  );
  const heldByTheDead = await count(`select count(*)::int as n from graphile_worker.jobs where locked_by = any($1::text[])`, [victimIds]);
  victim.child.kill('SIGKILL');
  assert.equal((await victim.exit).signal, 'SIGKILL');

  await waitFor(
    'every workflow to be terminal and every host job done',
    async () => {
      const open = await count(`select count(*)::int as n from ledgerbox.workflows where status not in ('completed', 'compensated', 'compensation_failed')`);
      const jobs = await count(`select count(*)::int as n from graphile_worker.jobs`);
      return open === 0 && jobs === 0 ? true : undefined;
    },
    150_000,
  ).catch(async (error) => {
    const { rows } = await db.pool.query(`select status, current_step, count(*)::int as n from ledgerbox.workflows group by 1, 2`);
    const jobs = await db.pool.query(`select task_identifier, attempts, locked_by, last_error from graphile_worker.jobs limit 20`);
    throw new Error(`${(error as Error).message}: ${JSON.stringify(rows)} ${JSON.stringify(jobs.rows)}\n${workers.map((w) => w.output()).join('\n')}`);
  });

  // terminal means completed here: nothing in this workload fails
  assert.equal(await count(`select count(*)::int as n from ledgerbox.workflows where status = 'completed'`), workflows);
  assert.ok(heldByTheDead > 0, 'the dead worker held jobs when it died');
  // freed by the survivors (force_unlock_workers), not by graphile-worker's four-hour timeout
  assert.equal(await count(`select count(*)::int as n from graphile_worker._private_jobs where locked_by = any($1::text[])`, [victimIds]), 0);
  assert.equal(await count(`select count(*)::int as n from ledgerbox.workers where worker_id = any($1::text[])`, [victimIds]), 0, 'the dead worker is forgotten');

  // no process was special: each of the four ran steps (the victim before it died)
  const { rows: byWorker } = await db.pool.query(`select worker_id, count(*)::int as n from ledgerbox.step_attempts where worker_id is not null group by 1`);
  for (const [index, worker] of workers.entries()) {
    const ran = byWorker.filter((row) => ids[index]!.includes(row.worker_id)).reduce((sum, row) => sum + row.n, 0);
    assert.ok(ran > 0, `${worker.name} ran steps`);
  }

  // exactly once: one result per step, one hold, post and settlement per workflow, the
  // processor authorized and captured each payment once, each host job's effect applied once
  assert.equal(await count(`select count(*)::int as n from ledgerbox.step_results`), workflows * 4);
  for (const suffix of ['hold', 'post', 'settle']) {
    assert.equal(await count(`select count(distinct key)::int as n from ledgerbox.transfers where key like 'many-%:' || $1`, [suffix]), workflows, suffix);
    assert.equal(await count(`select count(*)::int as n from ledgerbox.transfers where key like 'many-%:' || $1`, [suffix]), workflows, suffix);
  }
  assert.equal(await count(`select count(*)::int as n from processor_authorizations where captured = amount`), workflows);
  assert.equal(await count(`select count(*)::int as n from processor_authorizations`), workflows);
  assert.deepEqual((await db.pool.query(`select runs, count(*)::int as n from task_effects group by runs`)).rows, [{ runs: 1, n: hostJobs }]);

  // the money: every balance equals its entries, and each group's merchant got exactly its payments
  await assertLedgerInvariants(db.pool);
  const { rows: balances } = await db.pool.query(`select key, posted_balance::text as posted, pending_outgoing::text as out from ledgerbox.accounts where key like 'merchant:group-%:available' or key like 'payer:group-%'`);
  for (let group = 0; group < groups; group++) {
    const paid = amountOf(group) * BigInt(workflows / groups);
    assert.equal(balances.find((row) => row.key === merchantAvailable(`group-${group}`))!.posted, paid.toString());
    const payer = balances.find((row) => row.key === payerAccount(`group-${group}`))!;
    assert.deepEqual([payer.posted, payer.out], [(1_000_000_00n - paid).toString(), '0']);
  }

  // the survivors stop gracefully and leave no trace
  for (const worker of workers.filter((w) => w !== victim)) worker.child.kill('SIGTERM');
  for (const worker of workers.filter((w) => w !== victim)) assert.deepEqual(await worker.exit, { code: 0, signal: null }, worker.output());
  assert.equal(await count(`select count(*)::int as n from ledgerbox.workers`), 0);
});
