import assert from 'node:assert/strict';
import { test } from 'node:test';
import { object, string } from 'superstruct';
import {
  createAccount,
  createHold,
  defineTask,
  enqueue,
  exchangeSettled,
  getBalance,
  getExchange,
  postTransfer,
  resumeWorkflow,
  startExchange,
  startWorker,
  type FxRateProvider,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';
import { JobTakenOver } from '../src/workflows/run-step.ts';
import { contractChecked, type LastFailure } from '../src/worker/task-handlers.ts';
import { useTestDatabase } from './support/database.ts';
import { capturingLogger } from './support/logs.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();

// every log line the worker writes, parsed
const { logger, lines } = capturingLogger();


// an FX provider an operator can "repair" mid-test
let fxDown = true;
const realFx = new FakeFxRateProvider({ rates: demoRates });
const repairableFx: FxRateProvider = {
  quote: async (request) => {
    if (fxDown) throw new Error('FX provider down for maintenance');
    return realFx.quote(request);
  },
  lookup: (key) => realFx.lookup(key),
};

const settled: string[] = [];
const receipts = defineTask('shop.send_receipt', object({ orderId: string() }), { maxAttempts: 2 });
const worker = await startWorker({
  connectionString: db.connectionString,
  providers: { fx: repairableFx, compliance: new FakeComplianceProvider() },
  pollInterval_ms: 50,
  retry: { base_ms: 5, max_ms: 20 },
  compensationDelay_ms: 60_000,
  noHandleSignals: true,
  logger,
  tasks: [
    { task: exchangeSettled, handler: async ({ exchangeId }) => void settled.push(exchangeId) },
    {
      task: receipts,
      handler: async ({ orderId }, { logger: jobLogger }) => {
        jobLogger.info({ orderId }, 'sending receipt');
        if (orderId === 'broken') throw new Error('mail server refused');
      },
    },
  ],
});
db.onClose(() => worker.stop());

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'fay:USD', currency: 'USD' });
await createAccount(db.pool, { key: 'fay:EUR', currency: 'EUR' });
await postTransfer(db.pool, { key: 'fund:fay', legs: [{ from: 'world:USD', to: 'fay:USD', amount: usd(1_000_00n) }] });

test("the host's tasks run beside ledgerbox's, checked against their contract, logging with task, job and attempt", async () => {
  await enqueue(db.pool, receipts, { orderId: 'A-1' });
  const line = await waitFor('the receipt log line', async () => lines.find((entry) => entry.msg === 'sending receipt'));
  assert.equal(line.task, 'shop.send_receipt');
  assert.equal(line.attempt, 1);
  assert.equal(typeof line.jobId, 'string');
  assert.equal(line.orderId, 'A-1');
});

test("a host job's last failed attempt raises a warning alert (it carries no money) instead of lying quietly in the jobs table", async () => {
  await enqueue(db.pool, receipts, { orderId: 'broken' }, { maxAttempts: 1 });
  const alert = await waitFor('the job_failed alert', async () => {
    const { rows } = await db.pool.query(`select severity, kind, message from ledgerbox.alerts where kind = 'job_failed'`);
    return rows[0];
  });
  assert.equal(alert.severity, 'warning');
  assert.match(alert.message, /shop\.send_receipt\) failed for good after 1 attempts: mail server refused/);
});

test('a failed exchange is resumed once the provider is fixed: the failed step runs again and the exchange completes', async () => {
  const { exchangeId } = await startExchange(db.pool, { key: 'ex-resume', from: 'fay:USD', to: 'fay:EUR', amount: usd(100_00n) });
  const failed = await waitFor('the exchange to fail', async () => {
    const exchange = await getExchange(db.pool, exchangeId);
    return exchange.status === 'failed' ? exchange : undefined;
  });
  assert.match(failed.failureReason!, /lock_rate failed 5 times: FX provider down/);
  // within the compensation delay the money is still held, not released
  assert.equal(minor((await getBalance(db.pool, 'fay:USD')).pendingOutgoing), 100_00n);

  fxDown = false;
  const resumed = await resumeWorkflow(db.pool, { workflowId: exchangeId, reason: 'FX provider back after maintenance (INC-42)' });
  assert.deepEqual(resumed, { workflowId: exchangeId, step: 'lock_rate' });
  const exchange = await waitFor('the resumed exchange to complete', async () => {
    const current = await getExchange(db.pool, exchangeId);
    return current.status === 'completed' ? current : undefined;
  });
  assert.equal(exchange.failureReason, null);
  assert.equal(minor((await getBalance(db.pool, 'fay:EUR')).posted), 92_13n);
  await waitFor('the host to hear of the settlement', async () => (settled.includes(exchangeId) ? true : undefined));

  const history = await db.pool.query(`select step, outcome from ledgerbox.step_attempts where workflow_id = $1 order by id`, [exchangeId]);
  assert.deepEqual(
    history.rows.map((row) => `${row.step}:${row.outcome}`),
    [...Array(5).fill('lock_rate:failed'), 'lock_rate:succeeded', 'compliance:succeeded', 'settle:succeeded', 'notify:succeeded'],
  );
  const audit = await db.pool.query(`select action, performed_by, reason, details->>'step' as step from ledgerbox.operator_actions where target = $1`, [exchangeId]);
  assert.deepEqual(audit.rows, [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back after maintenance (INC-42)', step: 'lock_rate' }]);

  await assert.rejects(resumeWorkflow(db.pool, { workflowId: exchangeId, reason: 'again' }), { code: 'workflow_not_resumable', message: /is completed/ });
  await assert.rejects(resumeWorkflow(db.pool, { workflowId: '00000000-0000-4000-8000-000000000000', reason: 'x' }), { code: 'workflow_not_found' });
  await assert.rejects(resumeWorkflow(db.pool, { workflowId: exchangeId, reason: '' }), { code: 'invalid_input' });
});

test('the scheduled expire-holds task voids holds past their expiry', async () => {
  const hold = await createHold(db.pool, { key: 'hold-expiring', from: 'fay:USD', to: 'world:USD', amount: usd(1n), expiresAt: new Date(Date.now() - 1) });
  // the crontab runs it every minute; run it now rather than wait for the clock
  await db.pool.query(`select graphile_worker.add_job('ledgerbox:expire_holds', '{}'::json)`);
  const status = await waitFor('the hold to expire', async () => {
    const { rows } = await db.pool.query(`select status from ledgerbox.holds where id = $1`, [hold.id]);
    return rows[0].status === 'expired' ? rows[0].status : undefined;
  });
  assert.equal(status, 'expired');
});

test('a job another worker took over is not a failure: no alert even on its last attempt, and the stand-down is logged', async () => {
  const alerts: LastFailure[] = [];
  const task = contractChecked(
    {
      task: defineTask('host.taken_over', object({})),
      handler: async () => {
        throw new JobTakenOver('job 1 is no longer held by worker-a');
      },
    },
    logger,
    async (failure) => void alerts.push(failure),
  );
  const helpers = { job: { id: '1', attempts: 25, max_attempts: 25 } } as never;
  await assert.rejects(async () => task({}, helpers), JobTakenOver);
  assert.equal(alerts.length, 0);
  assert.ok(lines.some((line) => line.msg === 'another worker holds this job now; stood down without completing it' && line.task === 'host.taken_over'));

  // an ordinary failure on its last attempt still raises one
  const failing = contractChecked(
    {
      task: defineTask('host.failing_last', object({})),
      handler: async () => {
        throw new Error('boom');
      },
    },
    logger,
    async (failure) => void alerts.push(failure),
  );
  await assert.rejects(async () => failing({}, helpers), /boom/);
  assert.equal(alerts.length, 1);
});
