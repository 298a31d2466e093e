import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  createAccount,
  getBalance,
  getExchange,
  postTransfer,
  startExchange,
  startWorker,
  type RunningWorker,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });

const rates = { 'USD/EUR': { amount: 9213n, scale: 4 } };
const workers: RunningWorker[] = [];
db.onClose(() => Promise.all(workers.map((worker) => worker.stop())));

/** Each test gets its own worker and providers, so scripted faults land where the test says. */
async function workerWith(fx: FakeFxRateProvider, compliance: FakeComplianceProvider, options: { providerTimeout_ms?: number } = {}) {
  for (const running of workers.splice(0)) await running.stop();
  const worker = await startWorker({
    connectionString: db.connectionString,
    providers: { fx, compliance },
    pollInterval_ms: 50,
    retry: { base_ms: 10, max_ms: 50 },
    noHandleSignals: true,
    logger: pino({ level: 'silent' }),
    ...options,
  });
  workers.push(worker);
}

async function customer(name: string, cents: bigint) {
  await createAccount(db.pool, { key: `${name}:USD`, currency: 'USD' });
  await createAccount(db.pool, { key: `${name}:EUR`, currency: 'EUR' });
  await postTransfer(db.pool, { key: `fund:${name}`, legs: [{ from: 'world:USD', to: `${name}:USD`, amount: usd(cents) }] });
}

const finished = (id: string) =>
  waitFor(`exchange ${id} to finish`, async () => {
    const exchange = await getExchange(db.pool, id);
    return ['completed', 'compensated', 'compensation_failed'].includes(exchange.status) ? exchange : undefined;
  });

async function attempts(workflowId: string): Promise<{ step: string; outcome: string; error: string | null }[]> {
  const { rows } = await db.pool.query(`select step, outcome, error from ledgerbox.step_attempts where workflow_id = $1 order by id`, [workflowId]);
  return rows;
}

/** The code a recorded error carries: `[code] message…`. */
const codeOf = (error: string | null) => /^\[(\w+)\]/.exec(error ?? '')?.[1];

test('providers that fail, time out and are slow: retries reuse the one stored quote, compliance runs once, money is conserved', async () => {
  // fx: refuses once, then does the work but loses the answer (found by lookup, not redone)
  const fx = new FakeFxRateProvider({ rates, faults: { script: ['fail', 'timeout'] } });
  // compliance: slower than the budget (unknown outcome; lookup finds nothing yet), then asked
  // again under the same key, which waits for the work already under way instead of redoing it
  const compliance = new FakeComplianceProvider({ faults: { script: ['slow'], slow_ms: 400 } });
  await workerWith(fx, compliance, { providerTimeout_ms: 100 });
  await customer('faulty', 1_000_00n);

  const { exchangeId } = await startExchange(db.pool, { key: 'ex-faulty', from: 'faulty:USD', to: 'faulty:EUR', amount: usd(100_00n) });
  const exchange = await finished(exchangeId);
  assert.equal(exchange.status, 'completed');

  assert.equal(fx.executions.get(`${exchangeId}:lock_rate`), 1);
  assert.equal(compliance.executions.get(`${exchangeId}:compliance`), 1);
  const history = await attempts(exchangeId);
  // how many times the slow check outlasts the budget depends on timing: one or more
  const collapsed = history
    .map((attempt) => `${attempt.step} ${attempt.outcome} ${codeOf(attempt.error) ?? ''}`.trim())
    .filter((line, index, lines) => line !== lines[index - 1]);
  assert.deepEqual(collapsed, [
    'lock_rate failed provider_failed',
    'lock_rate succeeded',
    'compliance failed provider_timeout',
    'compliance succeeded',
    'settle succeeded',
    'notify succeeded',
  ]);
  assert.equal(history.filter((attempt) => attempt.step === 'lock_rate').length, 2);
  assert.deepEqual({ code: codeOf(history[0]!.error) }, { code: 'provider_failed' });
  assert.deepEqual({ code: codeOf(history[2]!.error) }, { code: 'provider_timeout' });
  assert.equal(minor((await getBalance(db.pool, 'faulty:USD')).posted), 900_00n);
  assert.equal(minor((await getBalance(db.pool, 'faulty:EUR')).posted), 92_13n);
  const recorded = await db.pool.query(`select count(*)::int as n from ledgerbox.provider_calls where workflow_id = $1`, [exchangeId]);
  assert.equal(recorded.rows[0].n, 2, 'one recorded answer per external call');
});

test('a provider that never answers in time and never did the work: every attempt is kept, then compensation restores the balance exactly', async () => {
  const fx = new FakeFxRateProvider({ rates, faults: { failRate: 1 } });
  const compliance = new FakeComplianceProvider();
  await workerWith(fx, compliance);
  await customer('doomed', 500_00n);

  const { exchangeId, holdId } = await startExchange(db.pool, { key: 'ex-doomed', from: 'doomed:USD', to: 'doomed:EUR', amount: usd(321_09n) });
  assert.equal(minor((await getBalance(db.pool, 'doomed:USD')).available), 500_00n - 321_09n);
  const exchange = await finished(exchangeId);
  assert.equal(exchange.status, 'compensated');
  assert.match(exchange.failureReason!, /lock_rate failed 5 times/);

  const balance = await getBalance(db.pool, 'doomed:USD');
  assert.equal(minor(balance.posted), 500_00n);
  assert.equal(minor(balance.available), 500_00n);
  const hold = await db.pool.query(`select status from ledgerbox.holds where id = $1`, [holdId]);
  assert.equal(hold.rows[0].status, 'voided');

  const history = await attempts(exchangeId);
  const failures = history.filter((attempt) => attempt.step === 'lock_rate');
  assert.equal(failures.length, 5);
  assert.ok(failures.every((attempt) => attempt.outcome === 'failed' && /fx rate provider failed \(injected\)/.test(attempt.error!)));
  assert.deepEqual(history.at(-1), { step: 'compensate', outcome: 'succeeded', error: null });
  const alerts = await db.pool.query(`select severity, kind from ledgerbox.alerts where workflow_id = $1`, [exchangeId]);
  assert.deepEqual(alerts.rows, [{ severity: 'critical', kind: 'workflow_failed' }]);
});

test('a database failure inside settle is retried in a fresh transaction; the settlement is posted once', async () => {
  await db.pool.query(`
    create sequence if not exists test_settle_failures;
    create or replace function test_fail_settle() returns trigger language plpgsql as $$
    begin
      -- a sequence is not rolled back with the failing transaction: the first two settles fail
      if nextval('test_settle_failures') <= 2 then raise exception 'injected settle failure'; end if;
      return new;
    end $$;
    create trigger test_fail_settle before insert on ledgerbox.transfers
      for each row when (new.key = 'ex-db-fault:settle') execute function test_fail_settle();`);
  await workerWith(new FakeFxRateProvider({ rates }), new FakeComplianceProvider());
  await customer('dbfault', 100_00n);
  const { exchangeId } = await startExchange(db.pool, { key: 'ex-db-fault', from: 'dbfault:USD', to: 'dbfault:EUR', amount: usd(50_00n) });
  assert.equal((await finished(exchangeId)).status, 'completed');
  const settles = (await attempts(exchangeId)).filter((attempt) => attempt.step === 'settle');
  assert.deepEqual(settles.map((attempt) => attempt.outcome), ['failed', 'failed', 'succeeded']);
  assert.match(settles[0]!.error!, /injected settle failure/);
  const posted = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = 'ex-db-fault:settle'`);
  assert.equal(posted.rows[0].n, 1);
  assert.equal(minor((await getBalance(db.pool, 'dbfault:USD')).posted), 50_00n);
});

test('a quote that expires before settlement is not re-quoted: the exchange fails and its hold is voided', async () => {
  await workerWith(new FakeFxRateProvider({ rates, quoteTtl_ms: 0 }), new FakeComplianceProvider());
  await customer('late', 100_00n);
  const { exchangeId } = await startExchange(db.pool, { key: 'ex-late', from: 'late:USD', to: 'late:EUR', amount: usd(10_00n) });
  const exchange = await finished(exchangeId);
  assert.equal(exchange.status, 'compensated');
  assert.match(exchange.failureReason!, /quote q_1 expired/);
  assert.equal(minor((await getBalance(db.pool, 'late:USD')).available), 100_00n);
  assert.equal(minor((await getBalance(db.pool, 'late:EUR')).posted), 0n);
});

test('a step job for a step the workflow does not have fails with unknown_step, and one for no workflow with workflow_not_found', async () => {
  await workerWith(new FakeFxRateProvider({ rates }), new FakeComplianceProvider());
  await customer('odd', 100_00n);
  const { exchangeId } = await startExchange(db.pool, { key: 'ex-odd', from: 'odd:USD', to: 'odd:EUR', amount: usd(1_00n) });
  await finished(exchangeId);
  await db.pool.query(`select graphile_worker.add_job('ledgerbox:step', json_build_object('workflowId', $1::text, 'step', 'nope'), max_attempts => 1)`, [exchangeId]);
  await db.pool.query(`select graphile_worker.add_job('ledgerbox:step', json_build_object('workflowId', gen_random_uuid()::text, 'step', 'settle'), max_attempts => 1)`);
  const errors = await waitFor('the two jobs to fail', async () => {
    const { rows } = await db.pool.query(`select last_error from graphile_worker.jobs where task_identifier = 'ledgerbox:step' and attempts >= 1 and last_error is not null`);
    return rows.length === 2 ? rows.map((row) => row.last_error as string) : undefined;
  });
  // graphile-worker keeps the message; each names what was wrong
  const found = errors
    .map((error) => (/has no step nope/.test(error) ? { code: 'unknown_step' } : /No workflow/.test(error) ? { code: 'workflow_not_found' } : { code: error }))
    .sort((a, b) => a.code.localeCompare(b.code));
  assert.deepEqual(found, [{ code: 'unknown_step' }, { code: 'workflow_not_found' }]);
  await assert.rejects(getExchange(db.pool, '00000000-0000-4000-8000-000000000000'), { code: 'workflow_not_found' });
});
