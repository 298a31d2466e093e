// Host workflows on the public API (issue 12): started in the host's transaction, steps of every
// kind, signals, deadlines, sleeps, one at a time per subject, versions, and the refusals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import {
  createAccount,
  createHold,
  defineTask,
  defineWorkflow,
  getBalance,
  getWorkflow,
  postHold,
  postTransfer,
  signalWorkflow,
  startWorker,
  startWorkflow,
  stuckWorkflows,
  voidHold,
  type StepDatabase,
} from '../src/index.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
const silent = pino({ level: 'silent' });

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'shop:USD', currency: 'USD' });

const receipt = defineTask('shop.receipt', object({ order: string() }));

const Input = object({ order: string(), customer: string() });
const holdOf = (results: Readonly<Record<string, unknown>>) => (results.reserve as { holdId: string }).holdId;

/** reserve (hold) → wait for 'paid' (deadline) → post; a missed deadline or 'cancelled' voids and fails. */
const checkout = defineWorkflow({
  kind: 'checkout',
  version: 1,
  input: Input,
  steps: {
    reserve: {
      type: 'database',
      async run(tx, { key, input }) {
        const hold = await createHold(tx, { key: `${key}:hold`, from: input.customer, to: 'shop:USD', amount: usd(10_00n) });
        return { result: { holdId: hold.id }, next: 'await_payment' };
      },
    },
    await_payment: {
      type: 'signal',
      signals: ['paid', 'cancelled'],
      deadline: { after_ms: 1_500 },
      async onSignal(_tx, { signal }) {
        return signal.name === 'paid' ? { result: { reference: signal.payload.reference }, next: 'post' } : { result: { cancelled: true }, next: 'release' };
      },
      async onDeadline() {
        return { result: { missedDeadline: true }, next: 'release' };
      },
    },
    post: {
      type: 'database',
      async run(tx, { key, results, input }) {
        await postHold(tx, { key: `${key}:post`, holdId: holdOf(results) });
        return { result: null, complete: true, jobs: [{ task: receipt, payload: { order: input.order } }] };
      },
    },
    release: {
      type: 'database',
      async run(tx, { key, results }) {
        await voidHold(tx, { key: `${key}:void`, holdId: holdOf(results) });
        return { result: null, fail: 'not paid in time, or cancelled' };
      },
    },
  },
  compensate: { type: 'database', run: async () => ({ result: { released: 'by the release step' }, complete: true }) },
});

/** Sleeps until a time given by its input, then completes. */
const sleeper = defineWorkflow({
  kind: 'sleeper',
  version: 1,
  input: object({ until: string() }),
  steps: {
    nap: { type: 'sleep', until: ({ input }) => new Date(input.until), next: 'wake' },
    wake: { type: 'database', run: async () => ({ result: { woke: new Date().toISOString() }, complete: true }) },
  },
  compensate: { type: 'database', run: async () => ({ result: null, complete: true }) },
});

/** One payout per merchant at a time: each waits for a 'go' signal, so the test decides when it ends. */
const payout = defineWorkflow({
  kind: 'payout',
  version: 1,
  input: object({ payout: string() }),
  oneAtATimePerSubject: true,
  steps: {
    hold_on: {
      type: 'signal',
      signals: ['go'],
      deadline: { after_ms: 600_000 },
      onSignal: async () => ({ result: { done: new Date().toISOString() }, complete: true }),
      onDeadline: async () => ({ result: null, fail: 'never told to go' }),
    },
  },
  compensate: { type: 'database', run: async () => ({ result: null, complete: true }) },
});

/** Branches on its input's parity; an external step whose answer decides, with a provider that counts calls. */
let providerCalls = 0;
const branching = defineWorkflow({
  kind: 'branching',
  version: 1,
  input: object({ n: string() }),
  steps: {
    ask: {
      type: 'external',
      provider: 'parity',
      async call({ input, idempotencyKey }) {
        providerCalls += 1;
        return { even: Number(input.n) % 2 === 0, key: idempotencyKey };
      },
      decide: ({ answer }) => ((answer as { even: boolean }).even ? { result: answer, next: 'even' } : { result: answer, next: 'odd' }),
    },
    even: { type: 'database', run: async () => ({ result: 'even', complete: true }) },
    odd: { type: 'database', run: async () => ({ result: 'odd', fail: 'odd numbers are declined' }) },
  },
  compensate: { type: 'database', run: async () => ({ result: 'nothing to undo', complete: true }) },
});

const worker = await startWorker({
  connectionString: db.connectionString,
  workflows: [checkout, sleeper, payout, branching],
  pollInterval_ms: 50,
  retry: { base_ms: 20, max_ms: 200 },
  heldBackRetry_ms: 200,
  reconciliation: false,
  noHandleSignals: true,
  logger: silent,
});
db.onClose(() => worker.stop());

let customers = 0;
async function customer(): Promise<string> {
  customers += 1;
  const key = `customer:${customers}:USD`;
  await createAccount(db.pool, { key, currency: 'USD' });
  await postTransfer(db.pool, { key: `fund:${key}`, legs: [{ from: 'world:USD', to: key, amount: usd(100_00n) }] });
  return key;
}

const terminal = ['completed', 'compensated', 'compensation_failed'];
const finished = (key: string) => waitFor(`workflow ${key} to finish`, async () => {
  const state = await getWorkflow(db.pool, { key });
  return terminal.includes(state.status) ? state : undefined;
});
const waitingAt = (key: string, step: string) => waitFor(`workflow ${key} to wait at ${step}`, async () => {
  const state = await getWorkflow(db.pool, { key });
  return state.waiting?.step === step ? state : undefined;
});

async function inHostTransaction<T>(work: (client: StepDatabase) => Promise<T>, commit = true): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query(commit ? 'commit' : 'rollback');
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query<{ n: string }>(`select count(*) as n from (${sql}) x`, values)).rows[0]!.n);

test('a workflow started in a rolled-back transaction leaves nothing; committed, it runs to the end and its money is found through its transfers', async () => {
  const who = await customer();
  await inHostTransaction(async (client) => {
    await client.query(`create temp table if not exists noop (x int)`);
    await startWorkflow(client, checkout, { key: 'order:rolled-back', input: { order: 'rolled-back', customer: who } });
  }, false);
  assert.equal(await count(`select 1 from ledgerbox.workflows where key = 'order:rolled-back'`), 0);
  assert.equal(await count(`select 1 from graphile_worker._private_jobs where payload->>'step' = 'reserve'`), 0);

  const started = await inHostTransaction((client) => startWorkflow(client, checkout, { key: 'order:1', input: { order: '1', customer: who } }));
  assert.deepEqual({ status: started.status, replayed: started.replayed }, { status: 'running', replayed: false });
  await waitingAt('order:1', 'await_payment');
  // reserved by the workflow's own step: its hold is the workflow's
  assert.equal(minor((await getBalance(db.pool, who)).available), 90_00n);
  const money = (await db.pool.query(`select kind, source_account, source_amount::text as amount, hold_id is not null as held from ledgerbox.workflow_money where workflow_id = $1`, [started.workflowId])).rows;
  assert.deepEqual(money, [{ kind: 'checkout', source_account: who, amount: '1000', held: true }]);

  const sent = await signalWorkflow(db.pool, { key: 'order:1', name: 'paid', payload: { reference: 'pay_1' } });
  assert.equal(sent.outcome, 'delivered');
  const done = await finished('order:1');
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.results.await_payment, { reference: 'pay_1' });
  assert.equal(minor((await getBalance(db.pool, who)).posted), 90_00n);
  // the receipt was added with the last step's result, once
  assert.equal(await count(`select 1 from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where t.identifier = 'shop.receipt' and j.payload->>'order' = '1'`), 1);
  const timeline = (await db.pool.query(`select event, step from ledgerbox.workflow_timeline where workflow_id = $1 and event in ('transfer', 'signal') order by at`, [started.workflowId])).rows;
  assert.deepEqual(timeline.map((row) => `${row.event}:${row.step}`).sort(), ['signal:await_payment', 'transfer:hold', 'transfer:post_hold']);
  await assertLedgerInvariants(db.pool);
});

test('the same key returns the same workflow without adding anything; a different request under it is a typed conflict', async () => {
  const who = await customer();
  const first = await startWorkflow(db.pool, checkout, { key: 'order:replay', input: { order: 'replay', customer: who }, jobs: [{ task: receipt, payload: { order: 'replay-start' } }] });
  const again = await startWorkflow(db.pool, checkout, { key: 'order:replay', input: { order: 'replay', customer: who }, jobs: [{ task: receipt, payload: { order: 'replay-start' } }] });
  assert.deepEqual({ id: again.workflowId, replayed: again.replayed }, { id: first.workflowId, replayed: true });
  assert.equal(await count(`select 1 from graphile_worker._private_jobs where payload->>'order' = 'replay-start'`), 1, 'the start jobs once');
  await assert.rejects(startWorkflow(db.pool, checkout, { key: 'order:replay', input: { order: 'other', customer: who } }), { code: 'exists_with_different_request' });
  await assert.rejects(startWorkflow(db.pool, branching, { key: 'order:replay', input: { n: '2' } }), { code: 'exists_with_different_request' });
  await signalWorkflow(db.pool, { key: 'order:replay', name: 'cancelled' });
  assert.equal((await finished('order:replay')).status, 'compensated');
});

test('signals: sent before the wait, twice, after the deadline, with another payload under the same key, and to no workflow', async () => {
  const who = await customer();
  // before the wait: recorded, then taken the moment the step runs
  const early = await inHostTransaction(async (client) => {
    const started = await startWorkflow(client, checkout, { key: 'order:early', input: { order: 'early', customer: who } });
    return signalWorkflow(client, { workflowId: started.workflowId, name: 'paid', payload: { reference: 'early' } });
  });
  assert.equal(early.outcome, 'recorded');
  assert.equal((await finished('order:early')).status, 'completed');

  // twice: one signal, delivered once; the second is a duplicate
  await customer();
  const twice = await startWorkflow(db.pool, checkout, { key: 'order:twice', input: { order: 'twice', customer: who } });
  await waitingAt('order:twice', 'await_payment');
  const [a, b] = await Promise.all([
    signalWorkflow(db.pool, { key: 'order:twice', name: 'paid', payload: { reference: 'evt_1' }, signalKey: 'evt_1' }),
    signalWorkflow(db.pool, { key: 'order:twice', name: 'paid', payload: { reference: 'evt_1' }, signalKey: 'evt_1' }),
  ]);
  assert.deepEqual([a.outcome, b.outcome].sort(), ['delivered', 'duplicate']);
  assert.equal((await finished('order:twice')).status, 'completed');
  assert.equal(await count(`select 1 from ledgerbox.workflow_signals where workflow_id = $1`, [twice.workflowId]), 1);
  assert.equal(await count(`select 1 from ledgerbox.transfers where key = 'order:twice:post'`), 1);
  // the same key with another payload: a typed conflict, nothing recorded
  await assert.rejects(signalWorkflow(db.pool, { key: 'order:twice', name: 'paid', payload: { reference: 'evt_2' }, signalKey: 'evt_1' }), { code: 'exists_with_different_request' });

  // after the deadline: the wait took its deadline branch (voided, failed, compensated); a late signal is kept, not delivered, and alerted
  const late = await startWorkflow(db.pool, checkout, { key: 'order:late', input: { order: 'late', customer: who } });
  const lateState = await finished('order:late');
  assert.equal(lateState.status, 'compensated');
  assert.deepEqual(lateState.results.await_payment, { missedDeadline: true });
  assert.equal(await count(`select 1 from ledgerbox.transfers where key = 'order:late:void'`), 1);
  const tooLate = await signalWorkflow(db.pool, { key: 'order:late', name: 'paid', payload: { reference: 'late' } });
  assert.equal(tooLate.outcome, 'late');
  assert.equal(await count(`select 1 from ledgerbox.alerts where kind = 'signal_too_late' and workflow_id = $1`, [late.workflowId]), 1);
  assert.equal(await count(`select 1 from ledgerbox.workflow_signals where workflow_id = $1 and consumed_step is null`, [late.workflowId]), 1);
  assert.equal(await count(`select 1 from ledgerbox.transfers where key = 'order:late:post'`), 0, 'never posted after its void');

  // to no workflow: typed, nothing written
  const before = await count(`select 1 from ledgerbox.workflow_signals`);
  await assert.rejects(signalWorkflow(db.pool, { key: 'order:nobody', name: 'paid' }), { code: 'workflow_not_found' });
  await assert.rejects(signalWorkflow(db.pool, { workflowId: '00000000-0000-4000-8000-000000000000', name: 'paid' }), { code: 'workflow_not_found' });
  await assert.rejects(signalWorkflow(db.pool, { key: 'order:twice', name: 'Not A Name' }), { code: 'invalid_input' });
  await assert.rejects(signalWorkflow(db.pool, { key: 'order:twice', name: 'paid', payload: { amount: 1.5 } }), { code: 'invalid_input' });
  await assert.rejects(signalWorkflow(db.pool, { key: 'order:twice', name: 'paid', signalkey: 'x' } as never), { code: 'invalid_input' });
  assert.equal(await count(`select 1 from ledgerbox.workflow_signals`), before);
  await assertLedgerInvariants(db.pool);
});

test('a sleep waits until its time, recorded on the workflow, with no job running meanwhile, then goes on', async () => {
  const until = new Date(Date.now() + 1_200);
  await startWorkflow(db.pool, sleeper, { key: 'nap:1', input: { until: until.toISOString() } });
  const asleep = await waitingAt('nap:1', 'nap');
  assert.deepEqual(asleep.waiting, { step: 'nap', signals: [], until });
  const running = await count(`select 1 from graphile_worker._private_jobs where payload->>'workflowId' = $1 and (locked_by is not null or run_at <= now() - interval '100 ms')`, [asleep.id]);
  assert.equal(running, 0, 'its job sleeps until the wake time');
  const done = await finished('nap:1');
  assert.equal(done.status, 'completed');
  assert.ok(new Date((done.results.wake as { woke: string }).woke).getTime() >= until.getTime(), 'not woken before its time');
  assert.equal(done.waiting, null);
});

test('one at a time per subject: the rest queue and start in order as each ends; other subjects run at once', async () => {
  const keys = ['payout:m1:a', 'payout:m1:b', 'payout:m1:c'];
  const started = [];
  for (const key of keys) started.push(await startWorkflow(db.pool, payout, { key, input: { payout: key }, subject: 'merchant:1' }));
  const other = await startWorkflow(db.pool, payout, { key: 'payout:m2:a', input: { payout: 'm2' }, subject: 'merchant:2' });
  assert.deepEqual(started.map((s) => s.status), ['running', 'queued', 'queued']);
  assert.equal(other.status, 'running');
  await assert.rejects(startWorkflow(db.pool, payout, { key: 'payout:nosubject', input: { payout: 'x' } }), { code: 'invalid_input' });
  await assert.rejects(startWorkflow(db.pool, checkout, { key: 'order:subject', input: { order: 'x', customer: 'y' }, subject: 'merchant:1' }), { code: 'invalid_input' });

  for (const [index, key] of keys.entries()) {
    await waitingAt(key, 'hold_on');
    const states = await Promise.all(keys.map(async (k) => (await getWorkflow(db.pool, { key: k })).status));
    assert.deepEqual(states, keys.map((_, i) => (i < index ? 'completed' : i === index ? 'running' : 'queued')), `while ${key} runs`);
    await signalWorkflow(db.pool, { key, name: 'go' });
    assert.equal((await finished(key)).status, 'completed');
  }
  await signalWorkflow(db.pool, { key: 'payout:m2:a', name: 'go' });
  assert.equal((await finished('payout:m2:a')).status, 'completed');
});

test('a step answer branches: an odd number is declined and compensated, an even one completes, and the provider is asked once each', async () => {
  const calls = providerCalls;
  await startWorkflow(db.pool, branching, { key: 'n:2', input: { n: '2' } });
  await startWorkflow(db.pool, branching, { key: 'n:3', input: { n: '3' } });
  const even = await finished('n:2');
  const odd = await finished('n:3');
  assert.deepEqual([even.status, even.results.even], ['completed', 'even']);
  assert.deepEqual([odd.status, odd.failureReason, odd.results.compensate], ['compensated', 'odd numbers are declined', 'nothing to undo']);
  assert.equal(providerCalls - calls, 2);
  const recorded = (await db.pool.query(`select idempotency_key from ledgerbox.provider_calls where workflow_id in ($1, $2) order by 1`, [even.id, odd.id])).rows.map((row) => row.idempotency_key);
  assert.deepEqual(recorded, [`${even.id}:ask`, `${odd.id}:ask`].sort());
});

test('a workflow of a version no worker here knows is left alone and listed, and a worker that knows it runs it', async () => {
  const v2 = defineWorkflow({
    kind: 'sleeper',
    version: 2,
    input: object({ until: string() }),
    steps: { v2_only: { type: 'database', run: async () => ({ result: 'ran on version 2', complete: true }) } },
    compensate: { type: 'database', run: async () => ({ result: null, complete: true }) },
  });
  const started = await startWorkflow(db.pool, v2, { key: 'nap:v2', input: { until: new Date().toISOString() } });
  const held = await waitFor('the workflow to be held back', async () => {
    const state = await getWorkflow(db.pool, { key: 'nap:v2' });
    return state.heldBack !== null ? state : undefined;
  });
  assert.equal(held.status, 'running');
  assert.match(held.heldBack!, /version 2.*knows version 1/);
  assert.equal(await count(`select 1 from ledgerbox.step_attempts where workflow_id = $1`, [started.workflowId]), 0, 'nothing of it ran');
  const stuck = (await stuckWorkflows(db.pool)).filter((row) => row.workflow_id === started.workflowId);
  assert.equal(stuck.length, 1, 'listed at once, not after 15 minutes');
  assert.equal(stuck[0]!.version, 2);
  assert.match(stuck[0]!.reason, /version 2/);

  const upgraded = await startWorker({ connectionString: db.connectionString, workflows: [v2], pollInterval_ms: 50, reconciliation: false, noHandleSignals: true, logger: silent });
  try {
    const done = await finished('nap:v2');
    assert.deepEqual([done.status, done.results.v2_only, done.heldBack], ['completed', 'ran on version 2', null]);
  } finally {
    await upgraded.stop();
  }
});

test('definitions, starts and workers refuse what they do not know, with invalid_input, before anything is written', async () => {
  const base = {
    kind: 'refused',
    version: 1,
    input: object({ id: string() }),
    steps: { only: { type: 'database' as const, run: async () => ({ result: null, complete: true as const }) } },
    compensate: { type: 'database' as const, run: async () => ({ result: null, complete: true as const }) },
  };
  const refused = [
    { ...base, kind: 'Bad Kind' },
    { ...base, version: 0 },
    { ...base, steps: {} },
    { ...base, steps: { only: { type: 'teleport', run: async () => ({ result: null, complete: true }) } } },
    { ...base, steps: { nap: { type: 'sleep', until: () => new Date(), next: 'nowhere' } } },
    { ...base, steps: { ask: { type: 'external', provider: 'p', call: async () => 1, decide: () => ({ complete: true }), record: async () => ({ complete: true }) } } },
    { ...base, steps: { wait: { type: 'signal', signals: [], deadline: { after_ms: 1 }, onSignal: async () => ({ complete: true }), onDeadline: async () => ({ complete: true }) } } },
    { ...base, start: 'missing' },
    { ...base, compensate: { type: 'sleep', until: () => new Date(), next: 'only' } },
    { ...base, oneAtATime: true },
    { ...base, steps: { only: { ...base.steps.only, maxAttempt: 3 } } },
  ];
  for (const definition of refused) assert.throws(() => defineWorkflow(definition as never), { code: 'invalid_input' }, JSON.stringify(Object.keys(definition)));

  const workflows = await count(`select 1 from ledgerbox.workflows`);
  await assert.rejects(startWorkflow(db.pool, { kind: 'checkout', version: 1 } as never, { key: 'x', input: {} }), { code: 'invalid_input' });
  await assert.rejects(startWorkflow(db.pool, checkout, { key: 'order:bad', input: { order: 'x' } } as never), { code: 'invalid_input' });
  await assert.rejects(startWorkflow(db.pool, checkout, { key: 'order:bad', input: { order: 'x', customer: 'y', amount: 12.5 } } as never), { code: 'invalid_input' });
  await assert.rejects(startWorkflow(db.pool, checkout, { key: 'order:bad', input: { order: 'x', customer: 'y' }, subjct: 'm' } as never), { code: 'invalid_input' });
  await assert.rejects(startWorkflow(db.pool, checkout, { key: 'order:bad', input: { order: 'x', customer: 'y' }, jobs: [{ task: 'shop.receipt', payload: {} }] } as never), { code: 'unknown_task' });
  assert.equal(await count(`select 1 from ledgerbox.workflows`), workflows);

  const options = { connectionString: db.connectionString, reconciliation: false as const, noHandleSignals: true, logger: silent };
  await assert.rejects(startWorker({ ...options, workflow: [checkout] } as never), { code: 'invalid_input' });
  await assert.rejects(startWorker({ ...options, workflows: [{ kind: 'checkout' }] } as never), { code: 'invalid_input' });
  await assert.rejects(startWorker({ ...options, workflows: [checkout, checkout] }), { code: 'invalid_input' });
  await assert.rejects(startWorker({ ...options, tasks: [{ task: receipt, handler: async () => undefined, transactional: true }] } as never), { code: 'unknown_task' });
});

test('a queued workflow cancelled by an operator ends at once, never starts, and the subject moves on', async () => {
  const { cancelWorkflow } = await import('../src/index.ts');
  const first = await startWorkflow(db.pool, payout, { key: 'payout:m3:a', input: { payout: 'a' }, subject: 'merchant:3' });
  const second = await startWorkflow(db.pool, payout, { key: 'payout:m3:b', input: { payout: 'b' }, subject: 'merchant:3' });
  const third = await startWorkflow(db.pool, payout, { key: 'payout:m3:c', input: { payout: 'c' }, subject: 'merchant:3' });
  assert.deepEqual([first.status, second.status, third.status], ['running', 'queued', 'queued']);
  await cancelWorkflow(db.pool, { workflowId: second.workflowId, reason: 'merchant asked (INC-7)' });
  const cancelled = await getWorkflow(db.pool, { key: 'payout:m3:b' });
  assert.equal(cancelled.status, 'compensated');
  assert.match(cancelled.failureReason!, /before it started: merchant asked/);
  await signalWorkflow(db.pool, { key: 'payout:m3:a', name: 'go' });
  await finished('payout:m3:a');
  // the next in line is the third: the cancelled one never ran a step
  await waitingAt('payout:m3:c', 'hold_on');
  assert.equal(await count(`select 1 from ledgerbox.step_attempts where workflow_id = $1`, [second.workflowId]), 0);
  await signalWorkflow(db.pool, { key: 'payout:m3:c', name: 'go' });
  assert.equal((await finished('payout:m3:c')).status, 'completed');
});
