import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Logger as WorkerLogger, runOnce } from 'graphile-worker';
import { object, string } from 'superstruct';
import { createAccount, defineTask, enqueue, fanOut, isLedgerboxError, postTransfer, startWorker, summariseBatches } from '../src/index.ts';
import { summariseBatchesTask } from '../src/worker/runner.ts';
import { useTestDatabase } from './support/database.ts';
import { capturingLogger } from './support/logs.ts';
import { eur, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

// A batch run (a fan-out given a `batch` name) is summarised once all its jobs have finished:
// what moved meanwhile per currency, jobs and workflows completed or failed; stored with the
// run and recorded as an info alert, exactly once.

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });
for (const customer of ['c1', 'c2', 'c3', 'c4', 'c5']) {
  await createAccount(db.pool, { key: `${customer}:USD`, currency: 'USD' });
  await createAccount(db.pool, { key: `${customer}:EUR`, currency: 'EUR' });
}

// a nightly payout per customer: 1.00 USD, and 2.00 EUR to c2; the job of `broken` fails for good
const payout = defineTask('batch.payout', object({ customerId: string() }), { maxAttempts: 1 });
async function pay({ customerId }: { customerId: string }, night: string): Promise<void> {
  if (customerId === 'broken') throw new Error('the bank refused the payout');
  await postTransfer(db.pool, { key: `payout:${night}:${customerId}`, legs: [{ from: 'world:USD', to: `${customerId}:USD`, amount: usd(1_00n) }] });
  if (customerId === 'c2') await postTransfer(db.pool, { key: `payout:${night}:${customerId}:EUR`, legs: [{ from: 'world:EUR', to: `${customerId}:EUR`, amount: eur(2_00n) }] });
}

/** Runs every job that is due, once, with graphile-worker alone: no schedule that could summarise behind the test's back. */
async function runDueJobs(night: string): Promise<void> {
  await runOnce({
    connectionString: db.connectionString,
    taskList: { [payout.name]: async (payload) => pay(payload as { customerId: string }, night) },
    logger: new WorkerLogger(() => () => undefined),
  });
  // graphile-worker may record a job's failure just after runOnce returns: wait until none is locked
  await waitFor('the jobs to be released', async () => {
    const { rows } = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs where task_identifier = $1 and locked_at is not null`, [payout.name]);
    return rows[0].n === 0 ? true : undefined;
  });
}

async function batchRow(batchId: string) {
  const { rows } = await db.pool.query(
    `select name, task, jobs, finished_at is not null as finished, completed, failed, movement, alert_id::text as alert_id from ledgerbox.batch_runs where id = $1`,
    [batchId],
  );
  return rows[0];
}

test('a batch run is summarised once its last job has finished: money moved per currency, jobs and workflows completed or failed', async () => {
  // before the batch: not part of its summary
  await postTransfer(db.pool, { key: 'before-batch', legs: [{ from: 'world:USD', to: 'c5:USD', amount: usd(50_00n) }] });

  const fanned = await fanOut(db.pool, payout, ['c1', 'c2', 'broken'], (customerId) => ({ customerId }), { batch: 'payouts:2026-11-21' });
  assert.equal(fanned.jobs, 3);
  assert.match(fanned.batchId!, /^\d+$/);
  assert.deepEqual(await batchRow(fanned.batchId!), {
    name: 'payouts:2026-11-21',
    task: 'batch.payout',
    jobs: 3,
    finished: false,
    completed: null,
    failed: null,
    movement: null,
    alert_id: null,
  });

  // its jobs are still waiting: nothing to summarise yet
  assert.deepEqual(await summariseBatches(db.pool), []);

  await runDueJobs('2026-11-21');
  const [summary, ...others] = await summariseBatches(db.pool);
  assert.equal(others.length, 0);
  assert.ok(summary);
  assert.deepEqual(
    { ...summary, startedAt: undefined, finishedAt: undefined, alertId: undefined },
    {
      batchId: fanned.batchId,
      name: 'payouts:2026-11-21',
      task: 'batch.payout',
      jobs: 3,
      completed: 2,
      failed: 1,
      startedAt: undefined,
      finishedAt: undefined,
      movement: [
        { currency: 'EUR', moved: 2_00n, transfers: 1 },
        { currency: 'USD', moved: 2_00n, transfers: 2 },
      ],
      workflows: { completed: 0, failed: 0, compensated: 0 },
      alertId: undefined,
    },
  );
  assert.ok(summary.finishedAt >= summary.startedAt);

  // stored with the run
  assert.deepEqual(await batchRow(fanned.batchId!), {
    name: 'payouts:2026-11-21',
    task: 'batch.payout',
    jobs: 3,
    finished: true,
    completed: 2,
    failed: 1,
    movement: {
      currencies: [
        { currency: 'EUR', moved: '200', transfers: 1 },
        { currency: 'USD', moved: '200', transfers: 2 },
      ],
      workflows: { completed: 0, failed: 0, compensated: 0 },
    },
    alert_id: summary.alertId,
  });

  // and recorded as an info alert, with a job to deliver it (to the log) at once
  const { rows: alerts } = await db.pool.query(`select severity, kind, message, details, dedupe_key from ledgerbox.alerts where id = $1`, [summary.alertId]);
  assert.deepEqual(alerts, [
    {
      severity: 'info',
      kind: 'batch_summary',
      message:
        'batch payouts:2026-11-21 (batch.payout) finished: 3 jobs, 2 completed, 1 failed; moved 2.00 EUR (1 transfer), 2.00 USD (2 transfers); workflows 0 completed, 0 failed, 0 compensated',
      details: {
        batchId: fanned.batchId,
        name: 'payouts:2026-11-21',
        task: 'batch.payout',
        jobs: 3,
        completed: 2,
        failed: 1,
        movement: [
          { currency: 'EUR', moved: '200', transfers: 1 },
          { currency: 'USD', moved: '200', transfers: 2 },
        ],
        currencies: 2,
        workflows: { completed: 0, failed: 0, compensated: 0 },
      },
      dedupe_key: `batch_summary:${fanned.batchId}`,
    },
  ]);
  const { rows: wake } = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ledgerbox:deliver_alerts'`);
  assert.equal(wake[0].n, 1);

  // a batch is summarised once
  assert.deepEqual(await summariseBatches(db.pool), []);
  const { rows: count } = await db.pool.query(`select count(*)::int as n from ledgerbox.alerts where kind = 'batch_summary'`);
  assert.equal(count[0].n, 1);
});

test('a batch whose failed job is retried stays open until the retry has finished too', async () => {
  const fanned = await fanOut(db.pool, payout, ['c3', 'broken'], (customerId) => ({ customerId }), { batch: 'payouts:2026-11-22' });
  await runDueJobs('2026-11-22');
  // an operator retries the failed job before the summary is written: the batch is running again
  const { rows: retried } = await db.pool.query(`select ledgerbox.retry_task_jobs('batch.payout', 'bank back up') as n`);
  assert.equal(retried[0].n, 2, 'this batch’s failed job, and the one of the first batch, summarised already');
  assert.deepEqual(await summariseBatches(db.pool), []);
  assert.equal((await batchRow(fanned.batchId!)).finished, false);
  await runDueJobs('2026-11-22');
  const summaries = await summariseBatches(db.pool);
  assert.deepEqual(
    summaries.map(({ batchId, completed, failed, movement }) => ({ batchId, completed, failed, movement })),
    [{ batchId: fanned.batchId, completed: 1, failed: 1, movement: [{ currency: 'USD', moved: 1_00n, transfers: 1 }] }],
  );
});

test('two summarisers at the same moment write one summary, the application role’s among them', async () => {
  const fanned = await fanOut(db.pool, payout, ['c4'], (customerId) => ({ customerId }), { batch: 'payouts:2026-11-23' });
  await runDueJobs('2026-11-23');
  // the service's own role may summarise: graphile-worker's tables are read through a view
  const client = await db.pool.connect();
  let results;
  try {
    await client.query('set role ledgerbox_app');
    results = await Promise.all([summariseBatches(client), summariseBatches(db.pool), summariseBatches(db.pool)]);
  } finally {
    await client.query('reset role');
    client.release();
  }
  assert.deepEqual(
    results.flat().map((summary) => summary.batchId),
    [fanned.batchId],
  );
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.alerts where dedupe_key = $1`, [`batch_summary:${fanned.batchId}`]);
  assert.equal(rows[0].n, 1);
});

test('a fan-out without a batch name records no batch; a bad name is refused and writes nothing', async () => {
  const { rows: before } = await db.pool.query(`select (select count(*)::int from ledgerbox.batch_runs) as batches, (select count(*)::int from graphile_worker.jobs) as jobs`);
  const plain = await fanOut(db.pool, payout, ['c5'], (customerId) => ({ customerId }), { startAt: '2099-01-01T00:00:00Z' });
  assert.equal(plain.batchId, undefined);
  assert.equal('batchId' in plain, false);
  for (const batch of ['', ' padded', 'x'.repeat(201), 'two\nlines']) {
    await assert.rejects(
      fanOut(db.pool, payout, ['c5'], (customerId) => ({ customerId }), { batch }),
      (error: unknown) => isLedgerboxError(error, 'invalid_input') && /options\.batch/.test(error.message),
    );
  }
  const { rows: after } = await db.pool.query(`select (select count(*)::int from ledgerbox.batch_runs) as batches, (select count(*)::int from graphile_worker.jobs) as jobs`);
  assert.deepEqual(after, [{ batches: before[0].batches, jobs: before[0].jobs + 1 }]);
});

test('the worker summarises finished batches on its own and logs the summary (an info alert goes to the log)', async () => {
  const { logger, lines } = capturingLogger('info');
  const fanned = await fanOut(db.pool, payout, ['c1', 'c3'], (customerId) => ({ customerId }), { batch: 'payouts:2026-11-24' });
  const worker = await startWorker({
    connectionString: db.connectionString,
    pollInterval_ms: 50,
    noHandleSignals: true,
    reconciliation: false,
    logger,
    tasks: [{ task: payout, handler: (payload) => pay(payload, '2026-11-24') }],
  });
  db.onClose(() => worker.stop());
  await waitFor('the jobs to run', async () => {
    const { rows } = await db.pool.query(
      `select count(*)::int as n from ledgerbox.batch_jobs b join graphile_worker._private_jobs j on j.id = b.job_id where b.batch_id = $1`,
      [fanned.batchId],
    );
    return rows[0].n === 0 ? true : undefined;
  });
  // the schedule runs it every minute; a job of the same task now, rather than wait for the minute
  await enqueue(db.pool, summariseBatchesTask, {});
  const logged = await waitFor('the summary in the log', async () =>
    lines.find((line) => line.msg === 'batch run summarised' && line.batchId === fanned.batchId),
  );
  assert.deepEqual({ batch: logged.batch, completed: logged.completed, failed: logged.failed }, { batch: 'payouts:2026-11-24', completed: 2, failed: 0 });
  // delivered: an info alert is logged by the alert router, not posted
  const delivery = await waitFor('the alert delivery', async () => {
    const { rows } = await db.pool.query(
      `select d.outcome from ledgerbox.alert_deliveries d join ledgerbox.batch_runs b on b.alert_id = d.alert_id where b.id = $1`,
      [fanned.batchId],
    );
    return rows[0];
  });
  assert.deepEqual(delivery, { outcome: 'logged' });
  assert.ok(lines.some((line) => typeof line.msg === 'string' && line.msg.startsWith('batch payouts:2026-11-24 (batch.payout) finished: 2 jobs, 2 completed, 0 failed; moved 2.00 USD (2 transfers)')));
  await worker.stop();
});
