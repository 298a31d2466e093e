/**
 * Host workflows and host tasks against SIGKILL, in real worker processes
 * (test/support/host-workflow-worker.ts): a worker is stopped dead at a named point (it marks
 * the point in the database and hangs there; the test waits for the mark, then kills it with
 * SIGKILL), a fresh worker takes over the dead one's jobs once its heartbeat is stale, and what
 * the processor, the ledger and the engine recorded is read back from rows.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { createAccount, enqueue, getBalance, postTransfer, startWorkflow } from '../src/index.ts';
import {
  crashHostTables,
  crashPaymentWorkflow,
  merchantAvailable,
  merchantPending,
  payerAccount,
  plainEffectTask,
  stepCrashPoints,
  transactionalEffectTask,
  type StepCrashPoint,
} from './support/crash-host.ts';
import { useTestDatabase } from './support/database.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
await db.pool.query(crashHostTables);
const workflow = crashPaymentWorkflow(undefined);

interface WorkerProcess {
  child: ChildProcess;
  /** graphile-worker's ids of this process (what its jobs are locked_by), once it runs. */
  ready: Promise<string[]>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const children: ChildProcess[] = [];
after(() => children.forEach((child) => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));

function workerProcess(options: { crashing: boolean; concurrency: number }): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/host-workflow-worker.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: db.connectionString,
      CRASH_AT_PLANNED_POINTS: options.crashing ? '1' : '0',
      WORKER_CONCURRENCY: String(options.concurrency),
      // a dead worker's jobs are unlocked by the next one within about half a second
      WORKER_HEARTBEAT_MS: '100',
      WORKER_STALE_MS: '500',
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
  const ready = new Promise<string[]>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      for (const line of stdout.split('\n')) {
        if (line.startsWith('{"ready":true')) resolve(JSON.parse(line).workerIds);
      }
    });
    void exit.then(({ code, signal }) => reject(new Error(`worker exited (${code ?? signal}) before it was ready:\n${stderr}`)));
  });
  const bounded = Promise.race([
    ready,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`worker not ready after 20 s:\n${stderr}`)), 20_000).unref()),
  ]);
  return { child, ready: bounded, exit, output: () => `stdout:\n${stdout}\nstderr:\n${stderr}` };
}

async function kill(worker: WorkerProcess): Promise<void> {
  worker.child.kill('SIGKILL');
  assert.equal((await worker.exit).signal, 'SIGKILL');
}

async function stop(worker: WorkerProcess): Promise<void> {
  worker.child.kill('SIGTERM');
  assert.deepEqual(await worker.exit, { code: 0, signal: null }, worker.output());
}

/** Everything written about one workflow: by the engine, the ledger, the processor and graphile-worker. */
async function story(workflowId: string, key: string) {
  const one = async (text: string, values: unknown[]) => (await db.pool.query(text, values)).rows;
  const [row] = await one('select status, current_step from ledgerbox.workflows where id = $1', [workflowId]);
  return {
    status: row.status as string,
    currentStep: row.current_step as string,
    results: (await one('select step from ledgerbox.step_results where workflow_id = $1 order by step', [workflowId])).map((r) => r.step as string),
    attempts: (await one('select step, outcome from ledgerbox.step_attempts where workflow_id = $1 order by id', [workflowId])).map((r) => `${r.step}:${r.outcome}`),
    processor: await one('select idempotency_key, kind, calls, answer from processor_calls where workflow_id = $1 order by kind', [workflowId]),
    authorizations: await one('select authorization_id, amount::text, captured::text from processor_authorizations where workflow_id = $1', [workflowId]),
    recorded: await one('select idempotency_key, step, response from ledgerbox.provider_calls where workflow_id = $1 order by step', [workflowId]),
    transfers: await one(
      `select key, kind, workflow_id::text, metadata from ledgerbox.transfers where key like $1 || ':%' order by created_at, key`,
      [key],
    ),
    jobs: (await one(`select key, locked_by from graphile_worker.jobs where key like 'ledgerbox:step:' || $1 || ':%' order by key`, [workflowId])).map((r) => ({
      step: (r.key as string).split(':').at(-1)!,
      lockedBy: r.locked_by as string | null,
    })),
  };
}
type Story = Awaited<ReturnType<typeof story>>;

const callsOf = (s: Story) => Object.fromEntries(s.processor.map((call) => [call.kind, call.calls]));
const transferKinds = (s: Story) => s.transfers.map((transfer) => transfer.kind);

/**
 * What each kill point leaves, as the dead worker left it (its open transaction gone with it):
 * the steps recorded, the processor's calls by kind, the answers ledgerbox recorded, the
 * transfers made, the steps with a job, and the step whose job the dead worker holds. After a
 * commit the step's own job is gone already: the step's transaction retired it
 * (ledgerbox.retire_step_job), so graphile-worker's completion, which never came, had nothing
 * left to do, and nothing can deliver the step again; the next step's job waits.
 */
const atTheKill: Record<StepCrashPoint, { results: string[]; calls: Record<string, number>; recorded: string[]; transfers: string[]; jobs: string[]; heldByTheDead: string | null }> = {
  'authorize:before_call': { results: [], calls: {}, recorded: [], transfers: [], jobs: ['authorize'], heldByTheDead: 'authorize' },
  'authorize:after_call': { results: [], calls: { authorize: 1 }, recorded: [], transfers: [], jobs: ['authorize'], heldByTheDead: 'authorize' },
  'authorize:before_commit': { results: [], calls: { authorize: 1 }, recorded: ['authorize'], transfers: [], jobs: ['authorize'], heldByTheDead: 'authorize' },
  'authorize:after_commit': { results: ['authorize'], calls: { authorize: 1 }, recorded: ['authorize'], transfers: ['hold'], jobs: ['capture'], heldByTheDead: null },
  'capture:before_call': { results: ['authorize'], calls: { authorize: 1 }, recorded: ['authorize'], transfers: ['hold'], jobs: ['capture'], heldByTheDead: 'capture' },
  'capture:after_call': { results: ['authorize'], calls: { authorize: 1, capture: 1 }, recorded: ['authorize'], transfers: ['hold'], jobs: ['capture'], heldByTheDead: 'capture' },
  'post:before_commit': { results: ['authorize', 'capture'], calls: { authorize: 1, capture: 1 }, recorded: ['authorize', 'capture'], transfers: ['hold'], jobs: ['post'], heldByTheDead: 'post' },
  'post:after_commit': {
    results: ['authorize', 'capture', 'post'],
    calls: { authorize: 1, capture: 1 },
    recorded: ['authorize', 'capture'],
    transfers: ['hold', 'post_hold'],
    jobs: ['settle'],
    heldByTheDead: null,
  },
  'settle:before_commit': {
    results: ['authorize', 'capture', 'post'],
    calls: { authorize: 1, capture: 1 },
    recorded: ['authorize', 'capture'],
    transfers: ['hold', 'post_hold'],
    jobs: ['settle'],
    heldByTheDead: 'settle',
  },
  'settle:after_commit': {
    results: ['authorize', 'capture', 'post', 'settle'],
    calls: { authorize: 1, capture: 1 },
    recorded: ['authorize', 'capture'],
    transfers: ['hold', 'post_hold', 'posted'],
    jobs: [],
    heldByTheDead: null,
  },
};

test('SIGKILL of a worker at every point of a host workflow step (before and after the external call, before and after the commit): a fresh worker finishes every workflow, no effect doubled, balances equal their entries', { timeout: 90_000 }, async (t) => {
  await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
  const payments: { point: StepCrashPoint; key: string; amount: bigint; workflowId: string }[] = [];
  for (const [index, point] of stepCrashPoints.entries()) {
    const key = `pay-${index}-${point.replace(':', '-')}`;
    const amount = BigInt(10_00 + index);
    for (const account of [payerAccount(key), merchantPending(key), merchantAvailable(key)]) await createAccount(db.pool, { key: account, currency: 'USD' });
    await postTransfer(db.pool, { key: `fund:${key}`, legs: [{ from: 'world:USD', to: payerAccount(key), amount: usd(1_000_00n) }] });
    await db.pool.query('insert into crash_payments (key, amount) values ($1, $2)', [key, amount.toString()]);
    await db.pool.query('insert into crash_plan (target, point) values ($1, $2)', [key, point]);
    const { workflowId } = await startWorkflow(db.pool, workflow, { key, input: { payment: key } });
    payments.push({ point, key, amount, workflowId });
  }

  // one worker, a runner for every kill point (and for the step each after_commit parks): each
  // workflow stops at its own point, in its own runner
  const doomed = workerProcess({ crashing: true, concurrency: 14 });
  const deadIds = await doomed.ready;
  await waitFor(
    'every workflow to stand at its kill point',
    async () => ((await db.pool.query('select count(*)::int as n from crash_plan where reached_at is not null')).rows[0].n === payments.length ? true : undefined),
    30_000,
  ).catch(async (error) => {
    const { rows } = await db.pool.query('select target, point, armed_at, reached_at from crash_plan order by target');
    throw new Error(`${(error as Error).message}: ${JSON.stringify(rows)}\n${doomed.output()}`);
  });
  await kill(doomed);

  const before = new Map<string, Story>();
  for (const payment of payments) before.set(payment.key, await story(payment.workflowId, payment.key));

  const fresh = workerProcess({ crashing: false, concurrency: 4 });
  await fresh.ready;
  await waitFor(
    'every workflow to end and every job of theirs to be done',
    async () => {
      const { rows } = await db.pool.query(`
        select (select count(*)::int from ledgerbox.workflows where status not in ('completed', 'compensated', 'failed', 'compensation_failed')) as running,
               (select count(*)::int from graphile_worker.jobs where task_identifier = 'ledgerbox:step') as jobs`);
      return rows[0].running === 0 && rows[0].jobs === 0 ? true : undefined;
    },
    30_000,
  ).catch(async (error) => {
    const states = await db.pool.query('select key, status, current_step from ledgerbox.workflows order by key');
    const jobs = await db.pool.query(`select key, attempts, locked_by, last_error from graphile_worker.jobs`);
    throw new Error(`${(error as Error).message}: ${JSON.stringify(states.rows)} ${JSON.stringify(jobs.rows)}\n${fresh.output()}`);
  });
  await stop(fresh);

  for (const payment of payments) {
    await t.test(`killed at ${payment.point}`, async () => {
      const expected = atTheKill[payment.point];
      const killed = before.get(payment.key)!;
      const where = `${payment.point}: ${JSON.stringify(killed)}`;

      // as the dead worker left it: exactly that much done; the step it stood in still its job,
      // unless that step had committed (its job retired with the commit)
      assert.equal(killed.status, payment.point === 'settle:after_commit' ? 'completed' : 'running', where);
      assert.deepEqual(killed.results, expected.results, where);
      assert.deepEqual(callsOf(killed), expected.calls, where);
      assert.deepEqual(killed.recorded.map((call) => call.step), expected.recorded, where);
      assert.deepEqual(transferKinds(killed), expected.transfers, where);
      assert.deepEqual(killed.jobs.map((job) => job.step), expected.jobs, where);
      if (expected.heldByTheDead !== null) {
        const held = killed.jobs.find((job) => job.step === expected.heldByTheDead);
        assert.ok(held?.lockedBy != null && deadIds.includes(held.lockedBy), `the ${expected.heldByTheDead} job is the dead worker's: ${where}`);
      }

      const done = await story(payment.workflowId, payment.key);
      const story_ = `${payment.point}: ${JSON.stringify(done)}`;
      // every workflow terminal, each step's result once
      assert.equal(done.status, 'completed', story_);
      assert.deepEqual(done.results, ['authorize', 'capture', 'post', 'settle'], story_);
      assert.deepEqual(done.jobs, [], story_);
      // one attempt per step, each succeeded: what the dead worker had not committed left no trace
      assert.deepEqual(done.attempts, ['authorize:succeeded', 'capture:succeeded', 'post:succeeded', 'settle:succeeded'], story_);

      // the processor: one key per call (the step's), acted on once, asked again only when the
      // dead worker had its answer and had not recorded it
      assert.deepEqual(
        done.processor.map((call) => ({ key: call.idempotency_key, kind: call.kind, calls: call.calls })),
        [
          { key: `${payment.workflowId}:authorize`, kind: 'authorize', calls: payment.point === 'authorize:after_call' ? 2 : 1 },
          { key: `${payment.workflowId}:capture`, kind: 'capture', calls: payment.point === 'capture:after_call' ? 2 : 1 },
        ],
        story_,
      );
      assert.deepEqual(done.authorizations, [{ authorization_id: done.processor[0]!.answer.authorizationId, amount: payment.amount.toString(), captured: payment.amount.toString() }], `captured once: ${story_}`);
      // what ledgerbox recorded is what the processor answered, and the hold names that authorization
      assert.deepEqual(
        done.recorded.map((call) => [call.idempotency_key, call.response]),
        done.processor.map((call) => [call.idempotency_key, call.answer]),
        story_,
      );

      // the ledger: each transfer key once, all the workflow's
      assert.deepEqual(
        done.transfers.map((transfer) => [transfer.key, transfer.kind, transfer.workflow_id]),
        [
          [`${payment.key}:hold`, 'hold', payment.workflowId],
          [`${payment.key}:post`, 'post_hold', payment.workflowId],
          [`${payment.key}:settle`, 'posted', payment.workflowId],
        ],
        story_,
      );
      assert.equal(done.transfers[0]!.metadata.authorization, done.processor[0]!.answer.authorizationId);
      const payer = await getBalance(db.pool, payerAccount(payment.key));
      assert.equal(minor(payer.posted), 1_000_00n - payment.amount);
      assert.equal(minor(payer.pendingOutgoing), 0n);
      const pending = await getBalance(db.pool, merchantPending(payment.key));
      assert.deepEqual([minor(pending.posted), minor(pending.pendingIncoming)], [0n, 0n]);
      assert.equal(minor((await getBalance(db.pool, merchantAvailable(payment.key))).posted), payment.amount);

    });
  }

  // the dead worker is forgotten, its jobs were handed on, and nothing is locked by it
  assert.equal((await db.pool.query('select count(*)::int as n from ledgerbox.workers where worker_id = any($1)', [deadIds])).rows[0].n, 0);
  assert.equal((await db.pool.query('select count(*)::int as n from graphile_worker.jobs where locked_by = any($1)', [deadIds])).rows[0].n, 0);
  // every account's cached balance equals the sum of its entries; every transfer balances
  await assertLedgerInvariants(db.pool);
});

test("a transactional host task killed after its transaction committed (before graphile-worker completes the job) never runs its effect again; a plain at-least-once task killed after its effect runs it twice", { timeout: 60_000 }, async () => {
  await db.pool.query(`insert into crash_plan (target, point) values ('tx-effect', 'task:after_commit'), ('plain-effect', 'task:after_effect')`);
  const doomed = workerProcess({ crashing: true, concurrency: 2 });
  // enqueued once the worker has registered its heartbeat, so its death is noticed
  const deadIds = await doomed.ready;
  const { jobId: txJob } = await enqueue(db.pool, transactionalEffectTask, { effect: 'tx-effect' });
  const { jobId: plainJob } = await enqueue(db.pool, plainEffectTask, { effect: 'plain-effect' });
  await waitFor(
    'both tasks to stand at their kill points',
    async () => ((await db.pool.query('select count(*)::int as n from crash_plan where target like $1 and reached_at is not null', ['%-effect'])).rows[0].n === 2 ? true : undefined),
    30_000,
  ).catch((error) => {
    throw new Error(`${(error as Error).message}\n${doomed.output()}`);
  });
  await kill(doomed);

  const runs = async () => Object.fromEntries((await db.pool.query('select effect, runs from task_effects order by effect')).rows.map((row) => [row.effect, row.runs]));
  const job = async (id: string) => (await db.pool.query('select locked_by, attempts from graphile_worker._private_jobs where id = $1', [id])).rows[0] as { locked_by: string | null; attempts: number } | undefined;
  // as the dead worker left them: each effect once; the transactional job completed in the
  // handler's own transaction, the plain one still locked by the dead worker
  assert.deepEqual(await runs(), { 'plain-effect': 1, 'tx-effect': 1 });
  assert.equal(await job(txJob), undefined, 'the transactional job was completed with its writes');
  const plainHeld = await job(plainJob);
  assert.ok(plainHeld !== undefined && plainHeld.locked_by !== null && deadIds.includes(plainHeld.locked_by), JSON.stringify(plainHeld));

  const fresh = workerProcess({ crashing: false, concurrency: 2 });
  await fresh.ready;
  // the plain job is redelivered to the fresh worker once the dead one is taken for dead
  await waitFor('the plain job to be redelivered and completed, and no job of either left', async () => ((await job(plainJob)) === undefined && (await job(txJob)) === undefined ? true : undefined), 30_000).catch((error) => {
    throw new Error(`${(error as Error).message}: ${JSON.stringify(plainHeld)}\n${fresh.output()}`);
  });
  assert.equal((await db.pool.query('select count(*)::int as n from ledgerbox.workers where worker_id = any($1)', [deadIds])).rows[0].n, 0, 'the dead worker was taken for dead');
  await stop(fresh);

  const after = await runs();
  assert.equal(after['tx-effect'], 1, 'the transactional effect ran once: its job was gone before graphile-worker could complete it');
  assert.equal(after['plain-effect'], 2, 'the at-least-once effect ran again on redelivery');
  const left = await db.pool.query(`select task_identifier from graphile_worker.jobs where task_identifier like 'crash.%'`);
  assert.deepEqual(left.rows, []);
});
