// Prometheus metrics (issue 14): the worker's /metrics scraped while it runs shows its counters
// moving, and what it says of the database equals what the database holds.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import pg from 'pg';
import { object, string } from 'superstruct';
import {
  createAccount,
  createDatabaseMetrics,
  createHold,
  defineTask,
  defineWorkflow,
  enqueue,
  moneyInLimbo,
  reconcile,
  startWorker,
  startWorkflow,
} from '../src/index.ts';
import { assertRefused } from './support/fuzz.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
const token = 'metrics-test-token-0123456789';

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'shop:USD', currency: 'USD' });

const ok = defineTask('metrics.ok', object({ n: string() }));
const flaky = defineTask('metrics.flaky', object({ n: string() }), { maxAttempts: 3 });
const doomed = defineTask('metrics.doomed', object({ n: string() }), { maxAttempts: 1 });
let flakyRuns = 0;

/** charge (a database step) → done; an input of 'decline' fails the workflow at its step. */
const payment = defineWorkflow({
  kind: 'metrics_payment',
  version: 1,
  input: object({ order: string() }),
  steps: {
    charge: {
      type: 'database',
      run: async (_tx, { input }) => (input.order === 'decline' ? { result: null, fail: 'card declined' } : { result: { charged: true }, next: 'done' }),
    },
    done: { type: 'database', run: async () => ({ result: null, complete: true }) },
  },
  compensate: { type: 'database', run: async () => ({ result: null, complete: true }) },
});

/** Prometheus text → `name{a="b",…}` → value. */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

const sample = (values: Map<string, number>, name: string, labels: Record<string, string> = {}) => {
  const rendered = Object.entries(labels).map(([key, value]) => `${key}="${value}"`).join(',');
  return values.get(rendered === '' ? name : `${name}{${rendered}}`);
};

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
  return samples(await response.text());
}

const count = async (sql: string, values: unknown[] = []) => Number((await db.pool.query(`select count(*)::int as n from (${sql}) counted`, values)).rows[0].n);

test('the worker serves /metrics: counters move with the work, gauges equal the database', { timeout: 120_000 }, async () => {
  const worker = await startWorker({
    connectionString: db.connectionString,
    workflows: [payment],
    tasks: [
      { task: ok, handler: async () => undefined },
      {
        task: flaky,
        handler: async () => {
          flakyRuns += 1;
          if (flakyRuns === 1) throw new Error('first try fails');
        },
      },
      { task: doomed, handler: async () => Promise.reject(new Error('never works')) },
    ],
    metrics: { port: 0, token },
    reconciliation: false,
    pollInterval_ms: 50,
    noHandleSignals: true,
  });
  db.onClose(() => worker.stop());
  assert.match(worker.metricsUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const url = worker.metricsUrl!;
  assert.ok(worker.metrics !== undefined, 'the registry, for a host to mount');

  const before = await scrape(url);
  assert.equal(sample(before, 'ledgerbox_database_up'), 1);
  assert.equal(sample(before, 'ledgerbox_jobs_total', { task: 'metrics.ok', outcome: 'completed' }), undefined);
  assert.ok(sample(before, 'ledgerbox_process_cpu_user_seconds_total') !== undefined, "prom-client's process metrics, prefixed");

  for (let n = 0; n < 5; n++) await enqueue(db.pool, ok, { n: String(n) });
  await enqueue(db.pool, flaky, { n: 'f' });
  await enqueue(db.pool, doomed, { n: 'd' });
  const started = [];
  for (const order of ['a', 'b', 'decline']) started.push(await startWorkflow(db.pool, payment, { key: `metrics-${order}`, input: { order } }));

  // the counters while it runs: they only ever grow, and end at what was done
  let last = 0;
  const finished = await waitFor(
    'the jobs and workflows to finish',
    async () => {
      const now = await scrape(url);
      const completed = sample(now, 'ledgerbox_jobs_total', { task: 'metrics.ok', outcome: 'completed' }) ?? 0;
      assert.ok(completed >= last, 'a counter never goes back');
      last = completed;
      const queued = await count(`select 1 from graphile_worker.jobs where task_identifier in ('metrics.ok', 'metrics.flaky', 'ledgerbox:step') or (task_identifier = 'metrics.doomed' and attempts < max_attempts)`);
      const open = await count(`select 1 from ledgerbox.workflows where kind = 'metrics_payment' and status not in ('completed', 'compensated')`);
      return queued === 0 && open === 0 ? now : undefined;
    },
    60_000,
  );
  void finished;
  const after = await scrape(url);

  assert.equal(sample(after, 'ledgerbox_jobs_total', { task: 'metrics.ok', outcome: 'completed' }), 5);
  assert.equal(sample(after, 'ledgerbox_jobs_total', { task: 'metrics.flaky', outcome: 'retried' }), 1);
  assert.equal(sample(after, 'ledgerbox_jobs_total', { task: 'metrics.flaky', outcome: 'completed' }), 1);
  assert.equal(sample(after, 'ledgerbox_job_retries_total', { task: 'metrics.flaky' }), 1);
  assert.equal(sample(after, 'ledgerbox_jobs_total', { task: 'metrics.doomed', outcome: 'failed' }), 1);
  assert.equal(sample(after, 'ledgerbox_jobs_failed_permanently_total', { task: 'metrics.doomed', severity: 'warning' }), 1);
  // the job failed for good is still in the queue, as the gauge says
  const failedInQueue = await count(`select 1 from graphile_worker.jobs where task_identifier = 'metrics.doomed' and attempts >= max_attempts`);
  assert.equal(failedInQueue, 1);
  assert.equal(sample(after, 'ledgerbox_queue_jobs', { task: 'metrics.doomed', state: 'failed' }), failedInQueue);
  assert.equal(sample(after, 'ledgerbox_queue_jobs', { task: 'metrics.ok', state: 'ready' }), 0);

  // steps: each outcome counted equals the attempts the database recorded
  for (const [step, outcome] of [['charge', 'succeeded'], ['done', 'succeeded'], ['compensate', 'succeeded']] as const) {
    const recorded = await count(`select 1 from ledgerbox.step_attempts a join ledgerbox.workflows w on w.id = a.workflow_id where w.kind = 'metrics_payment' and a.step = $1 and a.outcome = $2`, [step, outcome]);
    const counted = sample(after, 'ledgerbox_steps_total', { kind: 'metrics_payment', step, outcome: step === 'charge' ? 'succeeded' : outcome }) ?? 0;
    const declined = step === 'charge' ? (sample(after, 'ledgerbox_steps_total', { kind: 'metrics_payment', step, outcome: 'declined' }) ?? 0) : 0;
    assert.equal(counted + declined, recorded, `${step}: counted ${counted} + ${declined} declined, recorded ${recorded}`);
  }
  assert.equal(sample(after, 'ledgerbox_steps_total', { kind: 'metrics_payment', step: 'charge', outcome: 'declined' }), 1);
  assert.equal(sample(after, 'ledgerbox_steps_total', { kind: 'metrics_payment', step: 'charge', outcome: 'succeeded' }), 2);
  assert.equal(sample(after, 'ledgerbox_step_duration_seconds_count', { kind: 'metrics_payment', step: 'charge' }), 3);

  // gauges of the database: workflows not finished, investigations, money in limbo, the last run
  assert.equal(sample(after, 'ledgerbox_workflows', { kind: 'metrics_payment', status: 'running' }), undefined, 'none is left running');
  const open = await db.pool.query(`select severity, count(*)::int as n from ledgerbox.investigations where closed_at is null group by severity`);
  for (const severity of ['critical', 'warning']) {
    assert.equal(sample(after, 'ledgerbox_investigations_open', { severity }), open.rows.find((row) => row.severity === severity)?.n ?? 0, severity);
  }
  assert.equal(sample(after, 'ledgerbox_reconciliation_last_run_age_seconds', { status: 'clean' }), undefined, 'no run yet');

  // a hold past its expiry is money in limbo, in minor units
  await createHold(db.pool, { key: 'metrics-hold', from: 'world:USD', to: 'shop:USD', amount: usd(12_345n), expiresAt: new Date(Date.now() + 1_000) });
  await waitFor('the hold to be in limbo', async () => ((await moneyInLimbo(db.pool)).length > 0 ? true : undefined));
  await waitFor('the limbo gauge to equal moneyInLimbo', async () => {
    const [now, limbo] = await Promise.all([scrape(url), moneyInLimbo(db.pool)]);
    const total = limbo.filter((row) => row.currency === 'USD').reduce((sum, row) => sum + row.amount, 0n);
    return total === 0n || sample(now, 'ledgerbox_money_in_limbo_minor_units', { currency: 'USD' }) === Number(total) ? true : undefined;
  });

  // the last reconciliation: its findings by severity, and its age
  const report = await reconcile(db.pool);
  const withRun = await scrape(url);
  const findings = await db.pool.query(`select severity, count(*)::int as n from ledgerbox.reconciliation_findings where run_id = $1 group by severity`, [report.runId]);
  for (const severity of ['critical', 'warning']) {
    assert.equal(sample(withRun, 'ledgerbox_reconciliation_findings', { severity }), findings.rows.find((row) => row.severity === severity)?.n ?? 0, severity);
  }
  const age = sample(withRun, 'ledgerbox_reconciliation_last_run_age_seconds', { status: report.status });
  assert.ok(age !== undefined && age >= 0 && age < 600, String(age));

  // only with the token, only at /metrics
  assert.equal((await fetch(url)).status, 401);
  assert.equal((await fetch(url, { headers: { Authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
  assert.equal((await fetch(url.replace('/metrics', '/other'), { headers: { Authorization: `Bearer ${token}` } })).status, 404);

  await worker.stop();
  await assert.rejects(fetch(url), 'the metrics server stops with the worker');
});

test('createDatabaseMetrics on a pool: the gauges, and database_up 0 when the database cannot be read', async () => {
  const registry = createDatabaseMetrics(db.pool);
  const text = await registry.metrics();
  assert.equal(sample(samples(text), 'ledgerbox_database_up'), 1);
  assert.match(text, /# TYPE ledgerbox_queue_jobs gauge/);

  const port = await freePort();
  const nowhere = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectionTimeoutMillis: 2_000 });
  nowhere.on('error', () => undefined);
  try {
    const down = samples(await createDatabaseMetrics(nowhere).metrics());
    assert.equal(sample(down, 'ledgerbox_database_up'), 0);
    assert.deepEqual([...down.keys()].filter((name) => name.startsWith('ledgerbox_queue_jobs{')), [], 'no queue made up');
  } finally {
    await nowhere.end();
  }
  await assertRefused(() => createDatabaseMetrics(db.pool, { registry }), 'invalid_input', 'a registry that has the gauges already');
  await assertRefused(() => createDatabaseMetrics(db.pool, { colour: 'blue' } as never), 'invalid_input', 'an unknown option');
});

test('bad metrics options are refused with invalid_input before anything starts', async () => {
  const base = { connectionString: db.connectionString, reconciliation: false as const, noHandleSignals: true };
  await assertRefused(() => startWorker({ ...base, metrics: { port: -1 } }), 'invalid_input', 'a negative port');
  await assertRefused(() => startWorker({ ...base, metrics: { port: 0, extra: 1 } as never }), 'invalid_input', 'an unknown key');
  const short = await assertRefused(() => startWorker({ ...base, metrics: { port: 0, token: 'short-secret' } }), 'invalid_input', 'a short token');
  assert.ok(!short.message.includes('short-secret'), short.message);
  // a port already taken: refused, and no worker left behind
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as { port: number }).port;
  try {
    await assertRefused(() => startWorker({ ...base, metrics: { port } }), 'invalid_input', 'a port in use');
  } finally {
    await new Promise((resolve) => taken.close(resolve));
  }
  const workers = await count(`select 1 from graphile_worker.jobs where locked_by is not null`);
  assert.equal(workers, 0);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
