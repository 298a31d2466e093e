import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import {
  createAccount,
  createHold,
  defineTask,
  enqueue,
  getExchange,
  listFailedJobs,
  moneyInLimbo,
  postTransfer,
  retryJob,
  startExchange,
  startWorker,
  stuckWorkflows,
  type WorkerOptions,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';
import { useTestDatabase } from './support/database.ts';
import { assertOk, ledgerbox, psqlFile } from './support/processes.ts';
import { eur, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

// A database as the on-call engineer finds it: workflows failed for good, one still retrying,
// one nobody runs, a host job failed, holds past their expiry. Stuck workflows and money in
// limbo through the library, psql and the command; then every sql/ file through psql.

const db = await useTestDatabase();

const psql = (file: string, variables: Record<string, string> = {}) => psqlFile(db.connectionString, file, variables);
const cli = (...args: string[]) => ledgerbox(db.connectionString, args);

const report = defineTask('ops.nightly_report', object({ day: string() }), { maxAttempts: 1 });
const workerOptions = (retry_ms: number): WorkerOptions => ({
  connectionString: db.connectionString,
  providers: { fx: new FakeFxRateProvider({ rates: demoRates, faults: { failRate: 1 } }), compliance: new FakeComplianceProvider() },
  pollInterval_ms: 50,
  retry: { base_ms: retry_ms, max_ms: retry_ms },
  compensationDelay_ms: 600_000,
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
  tasks: [{ task: report, handler: async ({ day }) => Promise.reject(new Error(`report store full on ${day}`)) }],
});

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });
async function customer(name: string): Promise<void> {
  await createAccount(db.pool, { key: `${name}:USD`, currency: 'USD' });
  await createAccount(db.pool, { key: `${name}:EUR`, currency: 'EUR' });
  await postTransfer(db.pool, { key: `fund:${name}`, legs: [{ from: 'world:USD', to: `${name}:USD`, amount: usd(1_000_00n) }] });
}
for (const name of ['sam', 'tia', 'uma', 'vic', 'lee']) await customer(name);
await postTransfer(db.pool, { key: 'fund:lee:EUR', legs: [{ from: 'world:EUR', to: 'lee:EUR', amount: eur(100_00n) }] });

const exchange = async (name: string, cents: bigint) =>
  (await startExchange(db.pool, { key: `ex-${name}`, from: `${name}:USD`, to: `${name}:EUR`, amount: usd(cents) })).exchangeId;
const failedAttempts = async (workflowId: string) =>
  (await db.pool.query(`select count(*)::int as n from ledgerbox.step_attempts where workflow_id = $1 and outcome = 'failed'`, [workflowId])).rows[0].n as number;

// 1. two exchanges fail for good (fast retries), and a host job fails for good
const quick = await startWorker(workerOptions(5));
const stuck = await exchange('sam', 250_00n);
const failed = await exchange('tia', 75_00n);
await enqueue(db.pool, report, { day: '2026-11-21' });
for (const id of [stuck, failed]) {
  await waitFor(`exchange ${id} to fail`, async () => ((await getExchange(db.pool, id)).status === 'failed' ? true : undefined));
}
await waitFor('the report job to fail', async () => ((await listFailedJobs(db.pool, { task: report.name })).length === 1 ? true : undefined));
await quick.stop();
// 2. one fails once, with its next attempt an hour away: still retrying when we look
const slow = await startWorker(workerOptions(3_600_000));
const retrying = await exchange('uma', 40_00n);
await waitFor('the first failed attempt', async () => ((await failedAttempts(retrying)) >= 1 ? true : undefined));
await slow.stop();
// 3. no worker from here on: one exchange nobody runs, and holds nobody expires
const orphan = await exchange('vic', 10_00n);
await db.pool.query(`update ledgerbox.workflows set updated_at = now() - interval '2 hours' where id = $1`, [stuck]);
await db.pool.query(`update ledgerbox.workflows set updated_at = now() - interval '30 minutes' where id = $1`, [retrying]);
await db.pool.query(`update ledgerbox.workflows set updated_at = now() - interval '20 minutes' where id = $1`, [failed]);
const late = await createHold(db.pool, { key: 'limbo:late', from: 'lee:USD', to: 'world:USD', amount: usd(5_00n), expiresAt: new Date(Date.now() - 3_600_000) });
const lateEur = await createHold(db.pool, { key: 'limbo:eur', from: 'lee:EUR', to: 'world:EUR', amount: eur(3_00n), expiresAt: new Date(Date.now() - 60_000) });
await createHold(db.pool, { key: 'limbo:fresh', from: 'lee:USD', to: 'world:USD', amount: usd(7_00n), expiresAt: new Date(Date.now() + 7 * 86_400_000) });

test('stuck workflows: not terminal and untouched past the threshold, longest first, with their money (library)', async () => {
  const rows = await stuckWorkflows(db.pool);
  assert.deepEqual(rows.map((row) => [row.key, row.status, row.current_step]), [
    ['ex-sam', 'failed', 'compensate'],
    ['ex-uma', 'running', 'lock_rate'],
    ['ex-tia', 'failed', 'compensate'],
  ]);
  const [sam, uma] = rows;
  assert.deepEqual(
    { id: sam!.workflow_id, kind: sam!.kind, account: sam!.source_account, amount: sam!.amount, currency: sam!.currency, pending: sam!.pending_jobs },
    { id: stuck, kind: 'exchange', account: 'sam:USD', amount: 250_00n, currency: 'USD', pending: 1 },
  );
  assert.ok(sam!.stuck_for_ms >= 2 * 3_600_000 - 1_000 && sam!.stuck_for_ms < 2 * 3_600_000 + 60_000, String(sam!.stuck_for_ms));
  assert.match(sam!.last_error!, /fx rate provider failed \(injected\)/);
  assert.deepEqual({ id: uma!.workflow_id, pending: uma!.pending_jobs }, { id: retrying, pending: 1 });

  assert.deepEqual((await stuckWorkflows(db.pool, { olderThan_ms: 3_600_000 })).map((row) => row.key), ['ex-sam']);
  assert.deepEqual((await stuckWorkflows(db.pool, { olderThan_ms: 0 })).map((row) => row.key), ['ex-sam', 'ex-uma', 'ex-tia', 'ex-vic']);
  await assert.rejects(stuckWorkflows(db.pool, { olderThan_ms: -1 }), { code: 'invalid_input', message: /olderThan_ms/ });
});

test('stuck workflows through psql (sql/stuck_workflows.sql) and `ledgerbox workflows stuck`', async () => {
  const output = assertOk(await psql('sql/stuck_workflows.sql'), 'stuck_workflows.sql');
  assert.match(output, new RegExp(`${stuck} \\| exchange \\| ex-sam \\| failed\\s+\\| compensate\\s+\\| 02:00:\\d\\d\\s+\\| sam:USD\\s+\\|\\s+25000 \\| USD\\s+\\|\\s+1 \\| \\[provider_failed\\]`));
  assert.match(output, new RegExp(`${retrying} \\| exchange \\| ex-uma \\| running\\s+\\| lock_rate\\s+\\| 00:30:\\d\\d\\s+\\| uma:USD\\s+\\|\\s+4000 \\| USD`));
  assert.match(output, /\(3 rows\)/);
  const hourOld = assertOk(await psql('sql/stuck_workflows.sql', { older_than: '1 hour' }), 'stuck_workflows.sql');
  assert.match(hourOld, /ex-sam/);
  assert.match(hourOld, /\(1 row\)/);

  const table = assertOk(await cli('workflows', 'stuck'), 'workflows stuck');
  assert.match(table, new RegExp(`│ ${stuck} │ exchange │ ex-sam │ failed\\s+│ compensate │ 2h 00m \\d\\ds\\s+│ sam:USD │ 250.00 USD │ 1\\s+│ \\[provider_failed\\] LedgerboxError: fx rate provider failed \\(injected\\)`));
  assert.match(table, /3 stuck workflows/);
  const json = JSON.parse(assertOk(await cli('workflows', 'stuck', '--older-than-minutes', '60', '--json'), 'workflows stuck --json'));
  assert.equal(json.length, 1);
  assert.deepEqual({ workflow_id: json[0].workflow_id, amount: json[0].amount, currency: json[0].currency }, { workflow_id: stuck, amount: '25000', currency: 'USD' });
  assert.equal(typeof json[0].stuck_for_ms, 'number');
  assert.equal(assertOk(await cli('workflows', 'stuck', '--older-than-minutes', '600'), 'workflows stuck'), 'no workflow stuck for more than 600 minutes\n');
  assert.deepEqual(JSON.parse(assertOk(await cli('workflows', 'stuck', '--older-than-minutes', '600', '--json'), 'workflows stuck --json')), []);
});

test('money in limbo: holds past their expiry or older than the SLA, with totals per currency (library)', async () => {
  const rows = await moneyInLimbo(db.pool);
  assert.deepEqual(rows.map((row) => [row.key, row.amount, row.currency, row.why, row.workflow_id]), [
    ['limbo:late', 5_00n, 'USD', 'past its expiry', null],
    ['limbo:eur', 3_00n, 'EUR', 'past its expiry', null],
  ]);
  assert.equal(rows[0]!.hold_id, late.id);
  assert.equal(rows[0]!.from_account, 'lee:USD');

  const all = await moneyInLimbo(db.pool, { sla_ms: 0 });
  assert.deepEqual(all.map((row) => row.key).sort(), ['ex-sam:hold', 'ex-tia:hold', 'ex-uma:hold', 'ex-vic:hold', 'limbo:eur', 'limbo:fresh', 'limbo:late']);
  const sam = all.find((row) => row.key === 'ex-sam:hold')!;
  assert.deepEqual({ workflow: sam.workflow_id, status: sam.workflow_status, amount: sam.amount, why: sam.why }, { workflow: stuck, status: 'failed', amount: 250_00n, why: 'pending longer than 00:00:00' });
  await assert.rejects(moneyInLimbo(db.pool, { sla_ms: 1.5 }), { code: 'invalid_input', message: /sla_ms/ });
});

test('money in limbo through psql (sql/money_in_limbo.sql) and `ledgerbox holds limbo`', async () => {
  const output = assertOk(await psql('sql/money_in_limbo.sql'), 'money_in_limbo.sql');
  assert.match(output, new RegExp(`${late.id} \\| limbo:late \\| lee:USD\\s+\\| world:USD\\s+\\|\\s+500 \\| USD\\s+\\|.*\\| past its expiry \\|`));
  assert.match(output, new RegExp(`${lateEur.id} \\| limbo:eur\\s+\\| lee:EUR\\s+\\| world:EUR\\s+\\|\\s+300 \\| EUR`));
  assert.match(output, /currency \| holds \| amount\s*\n-+\+-+\+-+\n EUR\s+\|\s+1 \|\s+300\n USD\s+\|\s+1 \|\s+500\n\(2 rows\)/);
  const zero = assertOk(await psql('sql/money_in_limbo.sql', { sla: '0 seconds' }), 'money_in_limbo.sql');
  assert.match(zero, / EUR\s+\|\s+1 \|\s+300\n USD\s+\|\s+6 \|\s+38700\n/);
  assert.match(zero, new RegExp(`ex-sam:hold\\s+\\| sam:USD\\s+\\| ledgerbox:fx:USD:\\d \\|\\s+25000 \\| USD .*\\| pending longer than 00:00:00 \\| ${stuck} \\| failed`));

  const table = assertOk(await cli('holds', 'limbo'), 'holds limbo');
  assert.match(table, new RegExp(`│ ${late.id} │ limbo:late │ lee:USD │ world:USD │ 5.00 USD │ \\d+m \\d\\ds\\s+│ [^│]+ │ past its expiry │`));
  assert.match(table, /│ EUR\s+│ 1\s+│ 3.00 EUR │/);
  assert.match(table, /│ USD\s+│ 1\s+│ 5.00 USD │/);
  const json = JSON.parse(assertOk(await cli('holds', 'limbo', '--sla-hours', '0', '--json'), 'holds limbo --json'));
  assert.equal(json.holds.length, 7);
  assert.deepEqual(json.totals, [
    { currency: 'EUR', holds: 1, amount: '300' },
    { currency: 'USD', holds: 6, amount: '38700' },
  ]);
  assert.equal(json.holds.find((hold: { key: string }) => hold.key === 'limbo:late').amount, '500');
  assert.equal(assertOk(await cli('holds', 'limbo', '--sla-hours', '48'), 'holds limbo').includes('limbo:fresh'), false);
});

test("failed jobs tell 'failed' from 'retrying'; a step still being retried is not retried by hand (job_not_retryable)", async () => {
  const jobs = await listFailedJobs(db.pool);
  const byWorkflow = (id: string) => jobs.find((job) => job.workflow_id === id);
  assert.deepEqual([byWorkflow(stuck)?.state, byWorkflow(failed)?.state, byWorkflow(retrying)?.state], ['failed', 'failed', 'retrying']);
  assert.deepEqual([byWorkflow(retrying)?.attempts, byWorkflow(retrying)?.max_attempts], [1, 5]);
  assert.equal(byWorkflow(orphan), undefined, 'an exchange that never ran has not failed');
  assert.deepEqual(jobs.filter((job) => job.task === report.name).map((job) => [job.state, job.last_error]), [['failed', 'report store full on 2026-11-21']]);
  await assert.rejects(retryJob(db.pool, { jobId: byWorkflow(retrying)!.job_id, reason: 'hurry' }), {
    code: 'job_not_retryable',
    message: new RegExp(`step lock_rate of workflow ${retrying}\\) is still being retried by ledgerbox: wait for it, or resume the workflow once it has failed`),
  });
  assert.match(assertOk(await cli('jobs', 'failed'), 'jobs failed'), /4 failed jobs: 3 with no attempts left, 1 retrying/);
});

test('every sql/ file runs cleanly through psql against this database, reads first, then the recoveries', async () => {
  const stuckJob = (await listFailedJobs(db.pool)).find((job) => job.workflow_id === stuck)!.job_id;
  const runs: [file: string, variables: Record<string, string>, expected: RegExp][] = [
    ['balance_drift.sql', {}, /\(0 rows\)/],
    ['transfer.sql', { key: "'limbo:late'" }, /limbo:late \| hold/],
    ['failed_jobs.sql', {}, new RegExp(`${stuck} \\| lock_rate`)],
    ['workflow_timeline.sql', { id: stuck }, /pending job \| compensate/],
    ['stuck_workflows.sql', { older_than: '1 minute' }, /\(3 rows\)/],
    ['money_in_limbo.sql', { sla: '12 hours' }, /past its expiry/],
    ['retry_job.sql', { id: stuckJob, reason: 'FX provider back (INC-1)' }, /resumed lock_rate/],
    ['retry_task_jobs.sql', { task: report.name, reason: 'report store emptied (INC-2)' }, /retried\s*\n-+\n +1\n/],
    ['resume_workflow.sql', { id: failed, reason: 'FX provider back (INC-1)' }, new RegExp(`${failed} \\| exchange \\| ex-tia \\| running`)],
    ['cancel_workflow.sql', { id: retrying, reason: 'customer withdrew (TICKET-3)' }, new RegExp(`${retrying} \\| exchange \\| ex-uma \\| failed`)],
  ];
  assert.deepEqual(runs.map(([file]) => file).sort(), readdirSync('sql').filter((file) => file.endsWith('.sql')).sort(), 'every file in sql/ is run');
  for (const [file, variables, expected] of runs) {
    const output = assertOk(await psql(`sql/${file}`, variables), file);
    assert.match(output, expected, file);
  }
  const audit = await db.pool.query(`select action, target, performed_by from ledgerbox.operator_actions order by id`);
  assert.deepEqual(audit.rows, [
    { action: 'retry_job', target: stuckJob, performed_by: 'postgres' },
    { action: 'resume_workflow', target: stuck, performed_by: 'postgres' },
    { action: 'retry_task_jobs', target: report.name, performed_by: 'postgres' },
    { action: 'resume_workflow', target: failed, performed_by: 'postgres' },
    { action: 'cancel_workflow', target: retrying, performed_by: 'postgres' },
  ]);
  // after the recoveries nobody has run yet (no worker): resumed ones are running, nothing stuck past an hour
  assert.deepEqual((await stuckWorkflows(db.pool, { olderThan_ms: 3_600_000 })).map((row) => row.key), []);
});
