import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { createTestDatabase, dropDatabase, useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();

function runDemo(connectionString: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/run.ts', ...args], {
      env: { ...process.env, DATABASE_URL: connectionString, LEDGERBOX_REPORT_DIR: '.ledgerbox/test-reports', SMTP_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('npm run demo at a small size: everything finishes, the books reconcile, the summary says how to look around', { timeout: 240_000 }, async () => {
  const { code, stdout, stderr } = await runDemo(db.connectionString, ['--customers', '20', '--exchanges', '100']);
  assert.equal(code, 0, `exit code\n${stdout}\n${stderr}`);
  assert.match(stdout, /Money moved per currency/);
  assert.match(stdout, /^\s+USD\s+[\d,]+\.\d\d USD/m);
  assert.match(stdout, /Workflows: \d+ completed, \d+ compensated, 0 failed/);
  assert.match(stdout, /Reconciliation \d+: (CLEAN|WARNINGS): /);
  assert.match(stdout, /report email written to \S+reconciliation-\d+\.eml/);
  // the nightly fan-out is a named batch, summarised once its last job has run
  assert.match(stdout, /batch \S+:nightly-statements: 20 jobs, 20 completed, 0 failed/);
  const batches = await db.pool.query(`select name, finished_at is not null as summarised from ledgerbox.batch_runs where name like '%:nightly-statements'`);
  assert.deepEqual(batches.rows.map((row) => row.summarised), [true]);
  // not a TTY: plain progress lines
  assert.match(stdout, /\] (the day|settling): placed \d+\/100 exchanges/);
  const url = db.connectionString;
  assert.ok(stdout.includes(`psql "${url}" -f sql/failed_jobs.sql`), stdout);
  assert.ok(stdout.includes(`DATABASE_URL="${url}" npx ledgerbox jobs failed`), stdout);
  const shown = /npx ledgerbox workflow show ([0-9a-f-]{36})/.exec(stdout);
  assert.ok(shown, 'a failed workflow to look at');

  const statuses = await db.pool.query(`select status, count(*)::int as n from ledgerbox.workflows group by status order by status`);
  assert.ok(statuses.rows.every((row) => ['completed', 'compensated'].includes(row.status)), JSON.stringify(statuses.rows));
  assert.equal(statuses.rows.reduce((sum, row) => sum + row.n, 0), 100);
  const shownStatus = await db.pool.query(`select status from ledgerbox.workflows where id = $1`, [shown[1]]);
  assert.equal(shownStatus.rows[0]?.status, 'compensated');
  const pending = await db.pool.query(`select count(*)::int as n from ledgerbox.holds where status = 'pending'`);
  assert.equal(pending.rows[0].n, 0, 'no hold is left pending');
  const statements = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'demo:nightly_statement'`);
  assert.equal(statements.rows[0].n, 0, 'every nightly statement job ran');
  const critical = await db.pool.query(`select count(*)::int as n from ledgerbox.reconciliation_findings where severity = 'critical'`);
  assert.equal(critical.rows[0].n, 0);
});

test('--with-drift: the reconciliation is critical, a critical alert is recorded, exit 2', { timeout: 240_000 }, async () => {
  const drift = await createTestDatabase();
  try {
    const { code, stdout, stderr } = await runDemo(drift.connectionString, ['--customers', '5', '--exchanges', '20', '--with-drift']);
    assert.equal(code, 2, `exit code\n${stdout}\n${stderr}`);
    assert.match(stdout, /planted a drift/);
    assert.match(stdout, /Reconciliation \d+: CRITICAL: .*1 critical/);
    assert.match(stdout, /critical balance_drift customer:c0001:USD/);
    assert.match(stdout, /critical alert \d+ recorded/);
    const alerts = await drift.pool.query(`select count(*)::int as n from ledgerbox.alerts where severity = 'critical' and kind = 'reconciliation_balance_drift'`);
    assert.equal(alerts.rows[0].n, 1);
    // the drift was put back after the report
    const cached = await drift.pool.query(
      `select a.posted_balance::text as cached, coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0)::text as entries
       from ledgerbox.accounts a left join ledgerbox.entries e on e.account_id = a.id where a.key = 'customer:c0001:USD' group by a.id`,
    );
    assert.equal(cached.rows[0].cached, cached.rows[0].entries);
  } finally {
    await drift.pool.end();
    await dropDatabase(drift.name);
  }
});

test('--help lists the options', async () => {
  const { code, stdout } = await runDemo(db.connectionString, ['--help']);
  assert.equal(code, 0);
  for (const option of ['--customers', '--exchanges', '--fault-rate', '--seed', '--with-drift', '--reset']) assert.ok(stdout.includes(option), option);
});
