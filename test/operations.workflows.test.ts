import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  cancelWorkflow,
  createAccount,
  exchangeSettled,
  getBalance,
  getExchange,
  listFailedJobs,
  postTransfer,
  resumeWorkflow,
  retryJob,
  startExchange,
  startWorker,
  workflowTimeline,
  type FxRateProvider,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';
import { useTestDatabase } from './support/database.ts';
import { assertOk, ledgerbox, psqlFile } from './support/processes.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

// A workflow that failed for good, seen and fixed the three ways an operator can: the library,
// psql running sql/*.sql, and the `ledgerbox` command. Every call is recorded with who and why.

const db = await useTestDatabase();

const psql = (file: string, variables: Record<string, string> = {}) => psqlFile(db.connectionString, file, variables);
const cli = (...args: string[]) => ledgerbox(db.connectionString, args);

/** The operator's FX provider: down (every call fails) until it is "fixed" mid-test. */
let fxFixed = false;
const brokenFx = new FakeFxRateProvider({ rates: demoRates, faults: { failRate: 1 } });
const healthyFx = new FakeFxRateProvider({ rates: demoRates });
const fx: FxRateProvider = {
  quote: (request) => (fxFixed ? healthyFx : brokenFx).quote(request),
  lookup: (key) => healthyFx.lookup(key),
};

const worker = await startWorker({
  connectionString: db.connectionString,
  providers: { fx, compliance: new FakeComplianceProvider() },
  pollInterval_ms: 50,
  retry: { base_ms: 5, max_ms: 20 },
  // failed workflows keep their money held (not compensated) for the whole file: time to fix and resume
  compensationDelay_ms: 600_000,
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
  tasks: [{ task: exchangeSettled, handler: async () => undefined }],
});
db.onClose(() => worker.stop());

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });

/** One customer per exchange, so each balance tells one story. */
async function failedExchange(name: string, cents: bigint): Promise<{ exchangeId: string; holdId: string }> {
  await createAccount(db.pool, { key: `${name}:USD`, currency: 'USD' });
  await createAccount(db.pool, { key: `${name}:EUR`, currency: 'EUR' });
  await postTransfer(db.pool, { key: `fund:${name}`, legs: [{ from: 'world:USD', to: `${name}:USD`, amount: usd(1_000_00n) }] });
  const started = await startExchange(db.pool, { key: `ex-${name}`, from: `${name}:USD`, to: `${name}:EUR`, amount: usd(cents) });
  return { exchangeId: started.exchangeId, holdId: started.holdId };
}

const [ana, bo, cy, dee, eve, fin] = await Promise.all([
  failedExchange('ana', 321_09n), // recovered with psql: sql/retry_job.sql
  failedExchange('bo', 100_00n), // recovered with `ledgerbox workflow resume`
  failedExchange('cy', 50_00n), // recovered with psql: sql/resume_workflow.sql
  failedExchange('dee', 20_00n), // recovered with `ledgerbox jobs retry <id>`
  failedExchange('eve', 10_00n), // cancelled with `ledgerbox workflow cancel`
  failedExchange('fin', 5_00n), // cancelled with psql: sql/cancel_workflow.sql
]);
for (const { exchangeId } of [ana, bo, cy, dee, eve, fin]) {
  await waitFor(`exchange ${exchangeId} to fail for good`, async () => ((await getExchange(db.pool, exchangeId)).status === 'failed' ? true : undefined));
}

const status = async (exchangeId: string, wanted: string) =>
  waitFor(`exchange ${exchangeId} to be ${wanted}`, async () => ((await getExchange(db.pool, exchangeId)).status === wanted ? wanted : undefined));

async function failedJobId(exchangeId: string): Promise<string> {
  const { rows } = await db.pool.query(`select job_id::text from ledgerbox.failed_jobs where workflow_id = $1 and state = 'failed'`, [exchangeId]);
  assert.equal(rows.length, 1, `one failed job for ${exchangeId}`);
  return rows[0].job_id;
}

async function auditOf(target: string): Promise<{ action: string; performed_by: string; reason: string }[]> {
  const { rows } = await db.pool.query(`select action, performed_by, reason from ledgerbox.operator_actions where target = $1 order by id`, [target]);
  return rows;
}

test('a workflow that failed for good is in ledgerbox.failed_jobs: state failed, its money context and its last error', async () => {
  const { rows } = await db.pool.query(
    `select task, state, step, attempts, max_attempts, workflow_kind, workflow_status, source_account, target_account,
       amount::text, currency, hold_id::text, settlement_id, running, last_error
     from ledgerbox.failed_jobs where workflow_id = $1`,
    [ana.exchangeId],
  );
  assert.equal(rows.length, 1);
  const { last_error, ...row } = rows[0];
  assert.deepEqual(row, {
    task: 'ledgerbox:step',
    state: 'failed',
    step: 'lock_rate',
    attempts: 5,
    max_attempts: 5,
    workflow_kind: 'exchange',
    workflow_status: 'failed',
    source_account: 'ana:USD',
    // no money has reached a target yet: the target is the settlement's, and there is none
    target_account: null,
    amount: '32109',
    currency: 'USD',
    hold_id: ana.holdId,
    settlement_id: null,
    running: false,
  });
  assert.match(last_error, /^\[provider_failed\] LedgerboxError: fx rate provider failed \(injected\)/);

  // the library reads the same view: amounts are bigint minor units
  const listed = (await listFailedJobs(db.pool, { task: 'ledgerbox:step' })).filter((job) => job.workflow_id === ana.exchangeId);
  assert.equal(listed.length, 1);
  assert.equal(listed[0]!.amount, 321_09n);
  assert.equal(listed[0]!.state, 'failed');
  assert.equal(listed[0]!.hold_id, ana.holdId);
  assert.deepEqual(await listFailedJobs(db.pool, { task: 'no.such_task' }), []);
});

test('the timeline has every attempt with its full error, the hold, the alert and the compensation still waiting', async () => {
  const events = await workflowTimeline(db.pool, ana.exchangeId);
  assert.equal(events[0]!.event, 'created');
  assert.equal(events[0]!.detail, 'exchange ex-ana started');
  assert.equal(events[0]!.step, null);
  const attempts = events.filter((event) => event.event === 'attempt');
  assert.equal(attempts.length, 5);
  attempts.forEach((attempt, index) => {
    assert.equal(attempt.step, 'lock_rate');
    assert.equal(attempt.outcome, 'failed');
    assert.match(attempt.detail!, new RegExp(`^attempt ${index + 1} of 5, \\d+ ms\\n\\[provider_failed\\] LedgerboxError: fx rate provider failed \\(injected\\)\\n\\s+at `));
  });
  const hold = events.find((event) => event.event === 'transfer');
  assert.equal(hold?.step, 'hold');
  assert.match(hold!.detail!, /^hold ex-ana:hold: ana:USD -32109 USD, ledgerbox:fx:USD:\d 32109 USD$/);
  const alert = events.find((event) => event.event === 'alert');
  assert.deepEqual({ step: alert?.step, outcome: alert?.outcome }, { step: 'workflow_failed', outcome: 'critical' });
  assert.match(alert!.detail!, /failed at lock_rate: lock_rate failed 5 times: fx rate provider failed \(injected\)/);
  const pending = events.at(-1)!;
  assert.deepEqual({ event: pending.event, step: pending.step, outcome: pending.outcome }, { event: 'pending job', step: 'compensate', outcome: 'waiting' });
  await assert.rejects(workflowTimeline(db.pool, '00000000-0000-4000-8000-000000000000'), { code: 'workflow_not_found' });
  await assert.rejects(workflowTimeline(db.pool, 'not-a-uuid'), { code: 'invalid_input' });
});

test('psql: sql/failed_jobs.sql and sql/workflow_timeline.sql show the failure, the money and every error', async () => {
  const failed = assertOk(await psql('sql/failed_jobs.sql', { task: 'ledgerbox:step' }), 'failed_jobs.sql');
  const line = failed.split('\n').find((text) => text.includes(ana.exchangeId));
  assert.ok(line, failed);
  assert.match(line, /\| ledgerbox:step \| failed \| 5\/5\s+\| f\s+\|/);
  assert.match(line, new RegExp(`\\| lock_rate \\| failed\\s+\\| ana:USD\\s+\\|\\s+32109 \\| USD\\s+\\| ${ana.holdId} \\| \\[provider_failed\\] LedgerboxError: fx rate provider failed \\(injected\\)`));
  assert.match(failed, /ledgerbox:step \| failed \|\s+6 \|\s+6/); // per task and state: 6 jobs, 6 workflows

  const timeline = assertOk(await psql('sql/workflow_timeline.sql', { id: ana.exchangeId }), 'workflow_timeline.sql');
  assert.match(timeline, new RegExp(`${ana.exchangeId} \\| exchange \\| ex-ana \\| failed \\| ana:USD\\s+\\|\\s+32109 \\| USD\\s+\\|\\s+\\|`));
  for (let attempt = 1; attempt <= 5; attempt++) assert.match(timeline, new RegExp(`attempt\\s+\\| lock_rate\\s+\\| failed\\s+\\| attempt ${attempt} of 5, \\d+ ms`));
  assert.equal(timeline.match(/\[provider_failed\] LedgerboxError: fx rate provider failed \(injected\)/g)?.length, 5);
  assert.match(timeline, /transfer\s+\| hold\s+\|\s+\| hold ex-ana:hold: ana:USD -32109 USD/);
  assert.match(timeline, /pending job \| compensate\s+\| waiting/);

  const missing = await psql('sql/workflow_timeline.sql');
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /ERROR: {2}sql\/workflow_timeline.sql needs a workflow id/);
});

test('ledgerbox jobs failed and ledgerbox workflow show: tables for people, --json for scripts', async () => {
  const table = assertOk(await cli('jobs', 'failed', '--task', 'ledgerbox:step'), 'jobs failed');
  const row = table.split('\n').find((text) => text.includes(ana.exchangeId));
  assert.ok(row, table);
  assert.match(row, /│ ledgerbox:step │ failed\s+│ 5\/5\s+│/);
  assert.match(row, /│ lock_rate │ ana:USD\s+│ 321.09 USD │/);
  assert.match(table, /6 failed jobs: 6 with no attempts left, 0 retrying/);

  const json = JSON.parse(assertOk(await cli('jobs', 'failed', '--json'), 'jobs failed --json')) as Record<string, unknown>[];
  const job = json.find((entry) => entry.workflow_id === ana.exchangeId)!;
  assert.deepEqual(
    { state: job.state, amount: job.amount, currency: job.currency, hold_id: job.hold_id, source_account: job.source_account },
    { state: 'failed', amount: '32109', currency: 'USD', hold_id: ana.holdId, source_account: 'ana:USD' },
  );
  assert.match(String(job.last_error), /fx rate provider failed \(injected\)\n\s+at /);

  const shown = assertOk(await cli('workflow', 'show', ana.exchangeId), 'workflow show');
  for (let attempt = 1; attempt <= 5; attempt++) assert.match(shown, new RegExp(`attempt ${attempt} of 5, \\d+ ms`));
  assert.equal(shown.match(/\[provider_failed\] LedgerboxError: fx rate provider failed \(injected\)/g)?.length, 5);
  assert.doesNotMatch(shown, /\bat [\w.<> ]+ \([^)]*:\d+:\d+\)/, 'stack frames only in --json');
  assert.match(shown, /hold ex-ana:hold: ana:USD -32109 USD/);

  const events = JSON.parse(assertOk(await cli('workflow', 'show', ana.exchangeId, '--json'), 'workflow show --json')) as { event: string; detail: string }[];
  assert.equal(events.filter((event) => event.event === 'attempt').length, 5);
  assert.ok(events.filter((event) => event.event === 'attempt').every((event) => /fx rate provider failed \(injected\)\n\s+at /.test(event.detail)));
});

test('once the provider is fixed, one psql call makes a failed exchange complete: sql/retry_job.sql, and sql/resume_workflow.sql', async () => {
  fxFixed = true;
  const jobId = await failedJobId(ana.exchangeId);
  const retried = assertOk(await psql('sql/retry_job.sql', { id: jobId, reason: 'FX provider back after INC-42' }), 'retry_job.sql');
  assert.match(retried, /resumed lock_rate/);
  assert.match(retried, new RegExp(`postgres\\s+\\| [^|]+\\| retry_job\\s+\\| ${jobId}\\s+\\| FX provider back after INC-42`));
  assert.match(retried, new RegExp(`postgres\\s+\\| [^|]+\\| resume_workflow \\| ${ana.exchangeId} \\| FX provider back after INC-42`));
  assert.match(retried, /COMMIT/);

  await status(ana.exchangeId, 'completed');
  assert.equal(minor((await getBalance(db.pool, 'ana:USD')).posted), 1_000_00n - 321_09n);
  assert.equal(minor((await getBalance(db.pool, 'ana:EUR')).posted), 295_82n); // 321.09 × 0.9213, half to even
  assert.equal(minor((await getBalance(db.pool, 'ana:USD')).pendingOutgoing), 0n);
  assert.deepEqual(await auditOf(jobId), [{ action: 'retry_job', performed_by: 'postgres', reason: 'FX provider back after INC-42' }]);
  assert.deepEqual(await auditOf(ana.exchangeId), [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back after INC-42' }]);
  const stillFailed = await db.pool.query(`select count(*)::int as n from ledgerbox.failed_jobs where workflow_id = $1`, [ana.exchangeId]);
  assert.equal(stillFailed.rows[0].n, 0, 'a resumed workflow that completed has no failed jobs left');

  const resumed = assertOk(await psql('sql/resume_workflow.sql', { id: cy.exchangeId, reason: 'FX provider back after INC-42' }), 'resume_workflow.sql');
  assert.match(resumed, /step\s*\n-+\n lock_rate\n/);
  assert.match(resumed, new RegExp(`${cy.exchangeId} \\| exchange \\| ex-cy \\| running`));
  await status(cy.exchangeId, 'completed');
  assert.deepEqual(await auditOf(cy.exchangeId), [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back after INC-42' }]);
  const timeline = assertOk(await psql('sql/workflow_timeline.sql', { id: cy.exchangeId }), 'workflow_timeline.sql');
  assert.match(timeline, /operator\s+\| resume_workflow \|\s+\| resume_workflow by postgres: FX provider back after INC-42/);
  assert.match(timeline, /attempt\s+\| notify\s+\| succeeded/);
});

test('once the provider is fixed, one command makes a failed exchange complete: ledgerbox workflow resume, and ledgerbox jobs retry', async () => {
  fxFixed = true;
  const resumed = assertOk(await cli('workflow', 'resume', bo.exchangeId, '--reason', 'FX provider back (INC-43)'), 'workflow resume');
  assert.equal(resumed, `workflow ${bo.exchangeId} resumed: step lock_rate enqueued (recorded in ledgerbox.operator_actions)\n`);
  await status(bo.exchangeId, 'completed');
  assert.equal(minor((await getBalance(db.pool, 'bo:EUR')).posted), 92_13n);
  assert.deepEqual(await auditOf(bo.exchangeId), [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back (INC-43)' }]);
  const shown = assertOk(await cli('workflow', 'show', bo.exchangeId), 'workflow show');
  assert.match(shown, /resume_workflow by postgres: FX provider back \(INC-43\)/);

  const jobId = await failedJobId(dee.exchangeId);
  const retried = assertOk(await cli('jobs', 'retry', jobId, '--reason', 'FX provider back (INC-43)'), 'jobs retry');
  assert.equal(retried, `job ${jobId}: resumed lock_rate (recorded in ledgerbox.operator_actions)\n`);
  await status(dee.exchangeId, 'completed');
  assert.deepEqual(await auditOf(jobId), [{ action: 'retry_job', performed_by: 'postgres', reason: 'FX provider back (INC-43)' }]);
  assert.deepEqual(await auditOf(dee.exchangeId), [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back (INC-43)' }]);
});

test('cancelling a failed exchange compensates it now: the hold is voided and the balance is whole (CLI and psql)', async () => {
  const cancelled = assertOk(await cli('workflow', 'cancel', eve.exchangeId, '--reason', 'customer withdrew (TICKET-9)'), 'workflow cancel');
  assert.equal(cancelled, `workflow ${eve.exchangeId} cancelled: compensation enqueued (recorded in ledgerbox.operator_actions)\n`);
  const viaPsql = assertOk(await psql('sql/cancel_workflow.sql', { id: fin.exchangeId, reason: 'customer withdrew (TICKET-10)' }), 'cancel_workflow.sql');
  assert.match(viaPsql, new RegExp(`postgres\\s+\\| [^|]+\\| cancel_workflow \\| ${fin.exchangeId} \\| customer withdrew \\(TICKET-10\\)`));

  for (const [exchange, name] of [[eve, 'eve'], [fin, 'fin']] as const) {
    await status(exchange.exchangeId, 'compensated');
    const balance = await getBalance(db.pool, `${name}:USD`);
    assert.equal(minor(balance.posted), 1_000_00n);
    assert.equal(minor(balance.available), 1_000_00n);
    const hold = await db.pool.query(`select status from ledgerbox.holds where id = $1`, [exchange.holdId]);
    assert.equal(hold.rows[0].status, 'voided');
  }
  assert.deepEqual(await auditOf(eve.exchangeId), [{ action: 'cancel_workflow', performed_by: 'postgres', reason: 'customer withdrew (TICKET-9)' }]);
  // the step that failed is failed for good now that its workflow is compensated: not "retrying"
  const { rows } = await db.pool.query(`select state, workflow_status from ledgerbox.failed_jobs where workflow_id = $1`, [eve.exchangeId]);
  assert.deepEqual(rows, [{ state: 'failed', workflow_status: 'compensated' }]);
});

test('the library refuses what it must, with a code and the documented message, and records nothing', async () => {
  await status(ana.exchangeId, 'completed');
  await status(eve.exchangeId, 'compensated');
  const before = await db.pool.query(`select count(*)::int as n from ledgerbox.operator_actions`);
  const unknown = '00000000-0000-4000-8000-000000000000';

  await assert.rejects(resumeWorkflow(db.pool, { workflowId: ana.exchangeId, reason: 'again' }), {
    code: 'workflow_not_resumable',
    message: `workflow ${ana.exchangeId} (exchange ex-ana) is completed: only a failed workflow not yet compensated, or one whose compensation failed, can be resumed`,
  });
  await assert.rejects(resumeWorkflow(db.pool, { workflowId: eve.exchangeId, reason: 'again' }), { code: 'workflow_not_resumable', message: /is compensated/ });
  await assert.rejects(cancelWorkflow(db.pool, { workflowId: ana.exchangeId, reason: 'too late' }), {
    code: 'workflow_not_cancellable',
    message: `workflow ${ana.exchangeId} (exchange ex-ana) is completed: only a running or failed workflow can be cancelled`,
  });
  await assert.rejects(cancelWorkflow(db.pool, { workflowId: eve.exchangeId, reason: 'twice' }), { code: 'workflow_not_cancellable', message: /is compensated/ });
  await assert.rejects(resumeWorkflow(db.pool, { workflowId: unknown, reason: 'x' }), { code: 'workflow_not_found', message: `no workflow ${unknown}` });
  await assert.rejects(cancelWorkflow(db.pool, { workflowId: unknown, reason: 'x' }), { code: 'workflow_not_found', message: `no workflow ${unknown}` });
  // a step of a compensated workflow cannot be retried either: its workflow is what refuses
  await assert.rejects(retryJob(db.pool, { jobId: await failedJobId(eve.exchangeId), reason: 'x' }), { code: 'job_not_retryable', message: /is compensated/ });
  for (const reason of ['', '   ', undefined]) {
    await assert.rejects(resumeWorkflow(db.pool, { workflowId: bo.exchangeId, reason: reason as string }), { code: 'invalid_input', message: /reason/ });
    await assert.rejects(cancelWorkflow(db.pool, { workflowId: bo.exchangeId, reason: reason as string }), { code: 'invalid_input', message: /reason/ });
  }
  await assert.rejects(resumeWorkflow(db.pool, { workflowId: 'ex-ana', reason: 'x' }), { code: 'invalid_input', message: /workflowId/ });
  const after = await db.pool.query(`select count(*)::int as n from ledgerbox.operator_actions`);
  assert.equal(after.rows[0].n, before.rows[0].n);
});

test('psql refuses the same, printing the documented ERROR and exiting 3', async () => {
  const refused = async (file: string, variables: Record<string, string>, message: RegExp) => {
    const result = await psql(file, variables);
    assert.equal(result.code, 3, `${file} ${JSON.stringify(variables)}: ${result.stdout}`);
    assert.match(result.stderr, message);
  };
  const unknown = '00000000-0000-4000-8000-000000000000';
  await refused('sql/resume_workflow.sql', { id: ana.exchangeId, reason: 'again' }, new RegExp(
    `ERROR: {2}workflow ${ana.exchangeId} \\(exchange ex-ana\\) is completed: only a failed workflow not yet compensated, or one whose compensation failed, can be resumed\\nHINT: {2}a completed workflow is corrected with a reversal transfer`,
  ));
  await refused('sql/cancel_workflow.sql', { id: ana.exchangeId, reason: 'too late' }, new RegExp(
    `ERROR: {2}workflow ${ana.exchangeId} \\(exchange ex-ana\\) is completed: only a running or failed workflow can be cancelled`,
  ));
  await refused('sql/resume_workflow.sql', { id: unknown, reason: 'x' }, new RegExp(`ERROR: {2}no workflow ${unknown}`));
  await refused('sql/cancel_workflow.sql', { id: unknown, reason: 'x' }, new RegExp(`ERROR: {2}no workflow ${unknown}`));
  await refused('sql/resume_workflow.sql', { id: bo.exchangeId }, /ERROR: {2}a reason is required: say why the workflow may run again/);
  await refused('sql/resume_workflow.sql', { id: bo.exchangeId, reason: '   ' }, /ERROR: {2}a reason is required: say why the workflow may run again/);
  await refused('sql/cancel_workflow.sql', { id: bo.exchangeId, reason: '' }, /ERROR: {2}a reason is required: say why the workflow is cancelled/);
  await refused('sql/resume_workflow.sql', { reason: 'x' }, /ERROR: {2}sql\/resume_workflow.sql needs a workflow id/);
  await refused('sql/cancel_workflow.sql', { reason: 'x' }, /ERROR: {2}sql\/cancel_workflow.sql needs a workflow id/);
  await refused('sql/resume_workflow.sql', { id: 'ex-ana', reason: 'x' }, /ERROR: {2}invalid input syntax for type uuid: "ex-ana"/);
  // nothing was recorded by any of them
  assert.deepEqual(await auditOf(bo.exchangeId), [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back (INC-43)' }]);
});

test('the command refuses the same: exit 1 with `ledgerbox <command>: error [code]: message`, exit 2 for bad arguments', async () => {
  const unknown = '00000000-0000-4000-8000-000000000000';
  const notResumable = await cli('workflow', 'resume', ana.exchangeId, '--reason', 'again');
  assert.equal(notResumable.code, 1);
  assert.equal(
    notResumable.stderr,
    `ledgerbox workflow resume: error [workflow_not_resumable]: workflow ${ana.exchangeId} (exchange ex-ana) is completed: only a failed workflow not yet compensated, or one whose compensation failed, can be resumed\n`,
  );
  const notCancellable = await cli('workflow', 'cancel', ana.exchangeId, '--reason', 'too late');
  assert.equal(notCancellable.code, 1);
  assert.match(notCancellable.stderr, /^ledgerbox workflow cancel: error \[workflow_not_cancellable\]: workflow .* is completed: only a running or failed workflow can be cancelled\n$/);
  for (const args of [['workflow', 'resume', unknown, '--reason', 'x'], ['workflow', 'cancel', unknown, '--reason', 'x'], ['workflow', 'show', unknown]]) {
    const result = await cli(...args);
    assert.equal(result.code, 1, args.join(' '));
    assert.match(result.stderr, /: error \[workflow_not_found\]: no workflow 00000000-0000-4000-8000-000000000000\n$/i);
  }
  // by the key it was started with, too; an unknown key is not found
  const byKey = assertOk(await cli('workflow', 'show', 'ex-bo'), 'workflow show by key');
  assert.match(byKey, new RegExp(`^workflow ${bo.exchangeId}: exchange version 1, key ex-bo, `));
  const noKey = await cli('workflow', 'show', 'ex-nobody');
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /: error \[workflow_not_found\]: no workflow with key "ex-nobody"\n$/i);
  for (const args of [
    ['workflow', 'resume', bo.exchangeId], // no --reason
    ['workflow', 'resume', bo.exchangeId, '--reason', '  '],
    ['workflow', 'cancel', bo.exchangeId, '--reason', ''],
    ['workflow', 'resume', 'ex-bo', '--reason', 'x'],
    ['workflow', 'show'],
    ['workflow', 'bounce', bo.exchangeId],
  ]) {
    const result = await cli(...args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /^error: /);
    assert.equal(result.stdout, '');
  }
  assert.deepEqual(await auditOf(bo.exchangeId), [{ action: 'resume_workflow', performed_by: 'postgres', reason: 'FX provider back (INC-43)' }]);
});

test('a step job with a malformed payload is listed as failed and breaks neither the view nor any timeline', async () => {
  const { rows } = await db.pool.query(
    `select (graphile_worker.add_job('ledgerbox:step', '{"workflowId": "not-a-uuid", "step": "settle"}'::json, max_attempts => 1)).id::text as id`,
  );
  const jobId: string = rows[0].id;
  const failedJob = await waitFor('the malformed job to fail', async () =>
    (await listFailedJobs(db.pool, { task: 'ledgerbox:step' })).find((job) => job.job_id === jobId && job.state === 'failed'),
  );
  assert.equal(failedJob.workflow_id, null);
  assert.match(failedJob.last_error!, /workflowId/);
  assert.ok((await workflowTimeline(db.pool, bo.exchangeId)).length > 0);
  assert.match(assertOk(await psql('sql/failed_jobs.sql'), 'failed_jobs.sql'), new RegExp(`^ +${jobId} \\| ledgerbox:step \\| failed`, 'm'));
});

test("a workflow's timeline shows its own transfers only, even when its key holds LIKE wildcards (_ and %)", async () => {
  fxFixed = true;
  await createAccount(db.pool, { key: 'gus:USD', currency: 'USD' });
  await createAccount(db.pool, { key: 'gus:EUR', currency: 'EUR' });
  await postTransfer(db.pool, { key: 'fund:gus', legs: [{ from: 'world:USD', to: 'gus:USD', amount: usd(1_000_00n) }] });
  const wild = await startExchange(db.pool, { key: 'ex_g%', from: 'gus:USD', to: 'gus:EUR', amount: usd(1_00n) });
  const tame = await startExchange(db.pool, { key: 'exAgZZ', from: 'gus:USD', to: 'gus:EUR', amount: usd(2_00n) });
  for (const { exchangeId } of [wild, tame]) await status(exchangeId, 'completed');
  const transfers = (await workflowTimeline(db.pool, wild.exchangeId)).filter((event) => event.event === 'transfer').map((event) => event.detail!.split(':')[0]);
  assert.deepEqual(transfers, ['hold ex_g%', 'post_hold ex_g%']);
});
