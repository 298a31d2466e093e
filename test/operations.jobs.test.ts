import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import { defineTask, enqueue, listFailedJobs, retryJob, retryTaskJobs, startWorker } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { assertOk, ledgerbox, psqlFile } from './support/processes.ts';
import { waitFor } from './support/wait.ts';

// The host's own jobs failing for good, found and run again: through the library, psql and
// the `ledgerbox` command; and what must be refused (a running job, one that has not failed).

const db = await useTestDatabase();

const psql = (file: string, variables: Record<string, string> = {}) => psqlFile(db.connectionString, file, variables);
const cli = (...args: string[]) => ledgerbox(db.connectionString, args);

/** Mail ids whose sending fails until the "mail server" is fixed; every mail really sent. */
const broken = new Set<string>();
const sent: string[] = [];
const mail = defineTask('ops.send_mail', object({ mailId: string() }), { maxAttempts: 1 });

/** A job that runs until the test lets it finish. */
const slow = defineTask('ops.slow_report', object({ reportId: string() }), { maxAttempts: 1 });
const started: string[] = [];
let finishSlow: () => void = () => undefined;
const slowMayFinish = new Promise<void>((resolve) => (finishSlow = resolve));

const worker = await startWorker({
  connectionString: db.connectionString,
  pollInterval_ms: 50,
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
  tasks: [
    {
      task: mail,
      handler: async ({ mailId }) => {
        if (broken.has(mailId)) throw new Error(`mail server refused ${mailId}`);
        sent.push(mailId);
      },
    },
    {
      task: slow,
      handler: async ({ reportId }) => {
        started.push(reportId);
        await slowMayFinish;
      },
    },
  ],
});
db.onClose(async () => {
  finishSlow();
  await worker.stop();
});

interface JobRow {
  id: string;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  locked_by: string | null;
}

async function jobOf(task: string, field: string, value: string): Promise<JobRow | undefined> {
  const { rows } = await db.pool.query(
    `select j.id::text, j.attempts, j.max_attempts, j.last_error, j.locked_by
     from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
     where t.identifier = $1 and j.payload->>$2 = $3`,
    [task, field, value],
  );
  return rows[0];
}

async function failedMail(mailId: string): Promise<JobRow> {
  broken.add(mailId);
  await enqueue(db.pool, mail, { mailId });
  return waitFor(`mail ${mailId} to fail for good`, async () => {
    const job = await jobOf(mail.name, 'mailId', mailId);
    return job !== undefined && job.attempts === 1 && job.locked_by === null ? job : undefined;
  });
}

const gone = (jobId: string) =>
  waitFor(`job ${jobId} to run and be done`, async () => {
    const { rowCount } = await db.pool.query(`select 1 from graphile_worker._private_jobs where id = $1`, [jobId]);
    return rowCount === 0 ? true : undefined;
  });

test("a host job that failed for good is in ledgerbox.failed_jobs with state 'failed', and `ledgerbox jobs retry <id>` runs it again", async () => {
  const job = await failedMail('m-1');
  const { rows } = await db.pool.query(
    `select task, state, attempts, max_attempts, running, workflow_id, amount, last_error from ledgerbox.failed_jobs where job_id = $1`,
    [job.id],
  );
  assert.equal(rows.length, 1);
  assert.deepEqual({ ...rows[0], last_error: undefined }, {
    task: 'ops.send_mail',
    state: 'failed',
    attempts: 1,
    max_attempts: 1,
    running: false,
    workflow_id: null,
    amount: null,
    last_error: undefined,
  });
  assert.match(rows[0].last_error, /mail server refused m-1/);

  const viaPsql = assertOk(await psql('sql/failed_jobs.sql', { task: 'ops.send_mail' }), 'failed_jobs.sql');
  assert.match(viaPsql, new RegExp(`^ +${job.id} \\| ops.send_mail \\| failed \\| 1/1\\s+\\| f\\s+\\|.*\\| mail server refused m-1$`, 'm'));
  assert.match(viaPsql, /ops.send_mail \| failed \|\s+1 \|\s+0/);
  const table = assertOk(await cli('jobs', 'failed', '--task', 'ops.send_mail'), 'jobs failed');
  assert.match(table, new RegExp(`│ ${job.id}\\s+│ ops.send_mail │ failed\\s+│ 1/1\\s+│`));
  assert.match(table, /mail server refused m-1/);
  assert.match(table, /1 failed job: 1 with no attempts left, 0 retrying/);
  const json = JSON.parse(assertOk(await cli('jobs', 'failed', '--task', 'ops.send_mail', '--json'), 'jobs failed --json'));
  assert.deepEqual(json.map((entry: { job_id: string; state: string }) => [entry.job_id, entry.state]), [[job.id, 'failed']]);
  assert.equal(assertOk(await cli('jobs', 'failed', '--task', 'ops.nothing'), 'jobs failed'), 'no failed jobs of task ops.nothing\n');

  broken.delete('m-1'); // the mail server is fixed
  const retried = assertOk(await cli('jobs', 'retry', job.id, '--reason', 'mail server back (INC-9)'), 'jobs retry');
  assert.equal(retried, `job ${job.id}: rescheduled (recorded in ledgerbox.operator_actions)\n`);
  await gone(job.id);
  assert.deepEqual(sent, ['m-1'], 'it ran again, and succeeded');
  const audit = await db.pool.query(
    `select action, target, performed_by, reason, details->>'attempts' as attempts, details->>'last_error' as last_error from ledgerbox.operator_actions`,
  );
  assert.equal(audit.rows.length, 1);
  assert.deepEqual({ ...audit.rows[0], last_error: undefined }, {
    action: 'retry_job',
    target: job.id,
    performed_by: 'postgres',
    reason: 'mail server back (INC-9)',
    attempts: '1',
    last_error: undefined,
  });
  assert.match(audit.rows[0].last_error, /mail server refused m-1/);
});

test('retryJob and sql/retry_job.sql reschedule a failed job with fresh attempts', async () => {
  const first = await failedMail('m-2');
  const second = await failedMail('m-3');
  assert.equal(await retryJob(db.pool, { jobId: first.id, reason: 'fixed in the library' }), 'rescheduled');
  const viaPsql = assertOk(await psql('sql/retry_job.sql', { id: second.id, reason: 'fixed from psql' }), 'retry_job.sql');
  assert.match(viaPsql, /result\s*\n-+\n rescheduled\n/);
  assert.match(viaPsql, new RegExp(`postgres\\s+\\| [^|]+\\| retry_job \\| ${second.id}\\s+\\| fixed from psql`));
  // attempts start again from 0: a job with max_attempts 1 gets its one attempt back, and fails again
  for (const job of [first, second]) {
    const again = await waitFor(`job ${job.id} to fail again`, async () => {
      const { rows } = await db.pool.query(`select attempts, updated_at from graphile_worker._private_jobs where id = $1 and locked_by is null`, [job.id]);
      return rows[0]?.attempts === 1 ? rows[0] : undefined;
    });
    assert.equal(again.attempts, 1);
  }
  const counts = await db.pool.query(`select count(*)::int as n from ledgerbox.failed_jobs where task = 'ops.send_mail' and state = 'failed'`);
  assert.equal(counts.rows[0].n, 2);
  for (const mailId of ['m-2', 'm-3']) broken.delete(mailId);
});

test('`ledgerbox jobs retry --task` reruns every failed job of a task; --since only those that failed since then', async () => {
  // m-2 and m-3 failed (previous test); make m-2's failure two days old
  const old = (await jobOf(mail.name, 'mailId', 'm-2'))!;
  await db.pool.query(`update graphile_worker._private_jobs set updated_at = now() - interval '2 days' where id = $1`, [old.id]);
  const recent = (await jobOf(mail.name, 'mailId', 'm-3'))!;
  const since = new Date(Date.now() - 24 * 3_600_000).toISOString();

  const retried = assertOk(await cli('jobs', 'retry', '--task', 'ops.send_mail', '--since', since, '--reason', 'mail server back (INC-10)'), 'jobs retry --task');
  assert.equal(retried, `1 failed job of ops.send_mail since ${since} rescheduled (recorded in ledgerbox.operator_actions)\n`);
  await gone(recent.id);
  assert.ok(sent.includes('m-3'));
  assert.ok(!sent.includes('m-2'), 'the older failure was left alone');
  const audit = await db.pool.query(`select performed_by, reason, details from ledgerbox.operator_actions where action = 'retry_task_jobs' and target = 'ops.send_mail'`);
  assert.equal(audit.rows.length, 1);
  assert.equal(audit.rows[0].performed_by, 'postgres');
  assert.deepEqual(audit.rows[0].details.jobs, [Number(recent.id)]);

  const viaPsql = assertOk(await psql('sql/retry_task_jobs.sql', { task: 'ops.send_mail', reason: 'the rest too (INC-10)' }), 'retry_task_jobs.sql');
  assert.match(viaPsql, /retried\s*\n-+\n +1\n/);
  assert.match(viaPsql, new RegExp(`postgres\\s+\\| [^|]+\\| retry_task_jobs \\| ops.send_mail \\| the rest too \\(INC-10\\) \\| \\{"jobs": \\[${old.id}\\], "since": null\\}`));
  await gone(old.id);
  assert.ok(sent.includes('m-2'));

  // nothing left to retry: zero, still recorded (who looked, and why)
  assert.equal(await retryTaskJobs(db.pool, { task: 'ops.send_mail', reason: 'sweep', since: new Date(Date.now() - 3_600_000) }), 0);
  assert.equal(assertOk(await cli('jobs', 'retry', '--task', 'ops.send_mail', '--reason', 'sweep'), 'jobs retry --task'), '0 failed jobs of ops.send_mail rescheduled (recorded in ledgerbox.operator_actions)\n');
  assert.deepEqual((await listFailedJobs(db.pool, { task: 'ops.send_mail' })).filter((job) => job.state === 'failed'), []);
});

test('a running job is refused (job_running), one that has not failed (job_not_retryable), an unknown id (job_not_found)', async () => {
  await enqueue(db.pool, slow, { reportId: 'r-1' });
  const running = await waitFor('the slow report to be running', async () => {
    const job = await jobOf(slow.name, 'reportId', 'r-1');
    return started.includes('r-1') && job?.locked_by ? job : undefined;
  });
  await assert.rejects(retryJob(db.pool, { jobId: running.id, reason: 'impatient' }), {
    code: 'job_running',
    message: new RegExp(`^job ${running.id} is running \\(locked by ${running.locked_by} since .+\\): let it finish$`),
  });
  const cliRunning = await cli('jobs', 'retry', running.id, '--reason', 'impatient');
  assert.equal(cliRunning.code, 1);
  assert.match(cliRunning.stderr, new RegExp(`^ledgerbox jobs retry: error \\[job_running\\]: job ${running.id} is running`));
  const psqlRunning = await psql('sql/retry_job.sql', { id: running.id, reason: 'impatient' });
  assert.equal(psqlRunning.code, 3);
  assert.match(psqlRunning.stderr, new RegExp(`ERROR: {2}job ${running.id} is running \\(locked by .+\\): let it finish`));
  finishSlow();
  await gone(running.id);

  await enqueue(db.pool, mail, { mailId: 'later' }, { runAt: new Date(Date.now() + 3_600_000) });
  const waiting = (await jobOf(mail.name, 'mailId', 'later'))!;
  await assert.rejects(retryJob(db.pool, { jobId: waiting.id, reason: 'why not' }), {
    code: 'job_not_retryable',
    message: `job ${waiting.id} has not failed: nothing to retry`,
  });
  const cliWaiting = await cli('jobs', 'retry', waiting.id, '--reason', 'why not');
  assert.equal(cliWaiting.code, 1);
  assert.equal(cliWaiting.stderr, `ledgerbox jobs retry: error [job_not_retryable]: job ${waiting.id} has not failed: nothing to retry\n`);
  const psqlWaiting = await psql('sql/retry_job.sql', { id: waiting.id, reason: 'why not' });
  assert.equal(psqlWaiting.code, 3);
  assert.match(psqlWaiting.stderr, new RegExp(`ERROR: {2}job ${waiting.id} has not failed: nothing to retry`));

  await assert.rejects(retryJob(db.pool, { jobId: '999999', reason: 'x' }), { code: 'job_not_found', message: 'no failed job 999999' });
  const cliUnknown = await cli('jobs', 'retry', '999999', '--reason', 'x');
  assert.equal(cliUnknown.code, 1);
  assert.equal(cliUnknown.stderr, 'ledgerbox jobs retry: error [job_not_found]: no failed job 999999\n');
  const psqlUnknown = await psql('sql/retry_job.sql', { id: '999999', reason: 'x' });
  assert.equal(psqlUnknown.code, 3);
  assert.match(psqlUnknown.stderr, /ERROR: {2}no failed job 999999/);

  // a reason is required everywhere; nothing refused was recorded
  const before = await db.pool.query(`select count(*)::int as n from ledgerbox.operator_actions`);
  for (const reason of ['', '  ']) {
    await assert.rejects(retryJob(db.pool, { jobId: waiting.id, reason }), { code: 'invalid_input', message: /reason/ });
    await assert.rejects(retryTaskJobs(db.pool, { task: 'ops.send_mail', reason }), { code: 'invalid_input', message: /reason/ });
  }
  await assert.rejects(retryJob(db.pool, { jobId: '12abc', reason: 'x' }), { code: 'invalid_input', message: /jobId/ });
  await assert.rejects(retryJob(db.pool, { jobId: '9223372036854775808', reason: 'x' }), { code: 'invalid_input', message: /at most 9223372036854775807/ });
  await assert.rejects(retryTaskJobs(db.pool, { task: 'ops.send_mail', reason: 'x', since: 'yesterday' }), { code: 'invalid_input', message: /since/ });
  for (const variables of [{ id: waiting.id }, { id: waiting.id, reason: ' ' }] as Record<string, string>[]) {
    const result = await psql('sql/retry_job.sql', variables);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /ERROR: {2}a reason is required: say what was fixed/);
  }
  const noTaskReason = await psql('sql/retry_task_jobs.sql', { task: 'ops.send_mail' });
  assert.equal(noTaskReason.code, 3);
  assert.match(noTaskReason.stderr, /ERROR: {2}a reason is required: say what was fixed/);
  const noId = await psql('sql/retry_job.sql', { reason: 'x' });
  assert.equal(noId.code, 3);
  assert.match(noId.stderr, /ERROR: {2}sql\/retry_job.sql needs a job id/);
  const noTask = await psql('sql/retry_task_jobs.sql', { reason: 'x' });
  assert.equal(noTask.code, 3);
  assert.match(noTask.stderr, /ERROR: {2}sql\/retry_task_jobs.sql needs a task/);
  const after = await db.pool.query(`select count(*)::int as n from ledgerbox.operator_actions`);
  assert.equal(after.rows[0].n, before.rows[0].n);
});

test('bad arguments exit 2 with commander\'s message, before any database work', async () => {
  for (const args of [
    ['jobs', 'retry', '--reason', 'x'], // neither an id nor --task
    ['jobs', 'retry', '1', '--task', 'ops.send_mail', '--reason', 'x'], // both
    ['jobs', 'retry', '1'], // no --reason
    ['jobs', 'retry', '1', '--reason', '   '],
    ['jobs', 'retry', 'abc', '--reason', 'x'],
    ['jobs', 'retry', '0', '--reason', 'x'],
    ['jobs', 'retry', '99999999999999999999', '--reason', 'x'],
    ['jobs', 'retry', '1', '--since', '2026-11-21T00:00:00Z', '--reason', 'x'], // --since without --task
    ['jobs', 'retry', '--task', 'ops.send_mail', '--since', 'yesterday', '--reason', 'x'],
    ['jobs', 'failed', '--limit', '0'],
    ['jobs', 'failed', '--bogus'],
    ['jobs', 'explode'],
    ['workflows', 'stuck', '--older-than-minutes', '-5'],
    ['holds', 'limbo', '--sla-hours', 'soon'],
  ]) {
    const result = await cli(...args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, /^error: /m, args.join(' '));
    assert.equal(result.stdout, '', args.join(' '));
  }
  const help = await cli('jobs', '--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /failed \[options\]/);
  assert.match(help.stdout, /retry \[options\] \[id\]/);
});
