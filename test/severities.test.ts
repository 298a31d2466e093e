// One severity per fact (issue 14, docs/severities.md): src/severities.ts is the one table, and
// every place a fact shows up carries the table's severity for it. Proved for real on the fact
// that used to disagree (a host job failing for good: once a critical alert, a warning finding):
// a real worker runs the job, a real reconciliation finds it, and the alert rows, the finding
// row, the report, the console's pages and the metrics all say the same. Then the table itself:
// every finding kind and every alert kind any code path (TypeScript or SQL) writes is in it.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import { createConsoleHandler, defineTask, enqueue, reconcile, recordAlert, startWorker } from '../src/index.ts';
import { renderReport } from '../src/reconcile/report/index.ts';
import { findingKinds } from '../src/reconcile/report/report-contract.ts';
import { alertKindsInTable, alertSeverity, facts, factSeverity, findingKindsInTable, findingSeverity } from '../src/severities.ts';
import { useTestDatabase } from './support/database.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
const token = 'severities-test-token-0123456789';
const logger = pino({ level: 'silent' });

/** The nearest section heading before `at` in a rendered report: `Critical (n)` or `Warnings (n)`. */
function sectionOf(rendered: string, at: number): string | undefined {
  const headings = [...rendered.slice(0, at).matchAll(/(Critical|Warnings) \(\d+\)/g)];
  return headings.at(-1)?.[1];
}

async function scrape(url: string): Promise<string> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  return response.text();
}

const sampleOf = (text: string, series: string) => {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('a host job failing for good: the alert, the finding, the report, the console and the metrics carry one severity', { timeout: 120_000 }, async () => {
  const expected = factSeverity('job_failed');
  // the decision (docs/severities.md): a host job carries no money, so a warning
  assert.equal(expected, 'warning');
  const severityWords = { critical: 'Critical', warning: 'Warnings' } as const;

  const doomed = defineTask('severities.doomed', object({ note: string() }), { maxAttempts: 1 });
  const worker = await startWorker({
    connectionString: db.connectionString,
    tasks: [{ task: doomed, handler: async () => Promise.reject(new Error('the mail server refused it')) }],
    metrics: { port: 0, token },
    reconciliation: false,
    pollInterval_ms: 50,
    noHandleSignals: true,
    logger,
  });
  db.onClose(() => worker.stop());
  await enqueue(db.pool, doomed, { note: 'receipt' });

  // the runner's alert
  const alert = await waitFor('the job_failed alert', async () => {
    const { rows } = await db.pool.query(`select id::text as id, severity from ledgerbox.alerts where kind = 'job_failed'`);
    return rows[0] as { id: string; severity: string } | undefined;
  });
  assert.equal(alert.severity, expected);

  // the process counter, labelled with the severity of that alert
  const counter = `ledgerbox_jobs_failed_permanently_total{task="severities.doomed",severity="${expected}"}`;
  await waitFor('the failed-for-good counter', async () => (sampleOf(await scrape(worker.metricsUrl!), counter) === 1 ? true : undefined));

  // reconciliation: the finding row, its alert row, and the report
  const report = await reconcile(db.pool, { logger });
  const findings = (await db.pool.query(`select severity, kind from ledgerbox.reconciliation_findings where run_id = $1`, [report.runId])).rows;
  assert.deepEqual(findings, [{ severity: expected, kind: 'failed_job' }]);
  assert.equal(report.status, 'warnings');
  const { rows: findingAlerts } = await db.pool.query(`select severity from ledgerbox.alerts where kind = 'reconciliation_failed_job'`);
  assert.deepEqual(findingAlerts, [{ severity: expected }]);

  const rendered = renderReport(report);
  for (const [part, body] of [['text', rendered.text], ['html', rendered.html]] as const) {
    const at = body.indexOf('failed_job');
    assert.ok(at >= 0, `${part}: the finding is in the report`);
    assert.equal(sectionOf(body, at), severityWords[expected], `${part}: failed_job is listed under ${severityWords[expected]}`);
    assert.doesNotMatch(body, /Critical \(\d+\)/, `${part}: no critical section`);
  }
  assert.match(rendered.subject, /1 warning/);

  // the console: the alerts page, the run's findings by kind, the failed jobs page
  const handler = createConsoleHandler({ db: db.pool, token });
  const server = createServer((request, response) => void handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  db.onClose(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const page = async (path: string) => {
    const response = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200, path);
    return response.text();
  };
  const badge = `<span class="${expected}">${expected}</span>`;
  const rowWith = (html: string, needle: string) => [...html.matchAll(/<tr>(.*?)<\/tr>/gs)].map((match) => match[1] ?? '').find((row) => row.includes(needle));

  const alertsPage = await page('/alerts');
  for (const kind of ['job_failed', 'reconciliation_failed_job']) {
    const row = rowWith(alertsPage, `>${kind}<`);
    assert.ok(row !== undefined, `the alerts page lists ${kind}`);
    assert.ok(row.includes(badge), `${kind} carries the ${expected} badge: ${row}`);
  }
  const filtered = await page(`/alerts?severity=${expected}`);
  assert.ok(rowWith(filtered, '>job_failed<') !== undefined, `the ${expected} filter shows the job_failed alert`);

  const runPage = await page(`/reconciliation/${report.runId}`);
  const group = rowWith(runPage, '>failed_job<');
  assert.ok(group !== undefined && group.includes(badge), `the run's failed_job group carries the ${expected} badge`);

  const failedJobs = await page('/failed-jobs');
  const job = rowWith(failedJobs, 'severities.doomed');
  assert.ok(job !== undefined && job.includes(badge), `the failed job carries the ${expected} badge`);

  // the gauges of the last run, by severity
  const metrics = await scrape(worker.metricsUrl!);
  assert.equal(sampleOf(metrics, `ledgerbox_reconciliation_findings{severity="${expected}"}`), 1);
  assert.equal(sampleOf(metrics, `ledgerbox_reconciliation_findings{severity="critical"}`), 0);

  // every alert this run wrote has the table's severity for its kind
  const { rows: written } = await db.pool.query(`select distinct kind, severity from ledgerbox.alerts order by kind`);
  for (const row of written) assert.equal(row.severity, alertSeverity(row.kind, row.severity === 'critical'), row.kind);
  await worker.stop();
});

async function sourcesUnder(directory: string, extension: string): Promise<{ path: string; text: string }[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  const files = entries.filter((entry) => entry.isFile() && entry.name.endsWith(extension)).map((entry) => join(entry.parentPath, entry.name));
  return Promise.all(files.map(async (path) => ({ path, text: await readFile(path, 'utf8') })));
}

test('the table covers every finding kind and every alert kind any code path writes, and nothing writes a severity of its own', async () => {
  // every finding kind reconciliation knows is in the table, with a severity (both sides of the
  // statement tolerance for the statement kinds)
  assert.deepEqual([...findingKindsInTable].sort(), [...findingKinds].sort());
  for (const kind of findingKinds) {
    const severities = new Set([findingSeverity(kind, true), findingSeverity(kind, false)]);
    for (const severity of severities) assert.ok(severity === 'critical' || severity === 'warning', kind);
    // a finding's alert is in the table too, with the finding's severity on either side
    assert.equal(alertSeverity(`reconciliation_${kind}`, true), findingSeverity(kind, true), kind);
    assert.equal(alertSeverity(`reconciliation_${kind}`, false), findingSeverity(kind, false), kind);
  }

  const typescript = (await sourcesUnder('src', '.ts')).filter((file) => !file.path.endsWith('severities.ts'));
  const sqlFiles = [...(await sourcesUnder('migrations', '.sql')), ...(await sourcesUnder('sql', '.sql'))];

  // no TypeScript writes a literal severity for an alert or a finding: they come from the table
  for (const file of typescript) {
    const literal = /\bseverity: '(critical|warning|info)'\s*[,}]/.exec(file.text);
    assert.equal(literal, null, `${file.path} hard-codes a severity: ${literal?.[0]}`);
  }

  // every kind the TypeScript asks the table about is in it (an unknown one throws at run time;
  // here it fails before any runs)
  const asked = typescript.flatMap((file) => [...file.text.matchAll(/(?:alertSeverity|findingSeverity)\('(\w+)'/g)].map((match) => match[1]!));
  assert.ok(asked.length > 0);
  for (const kind of asked) assert.ok(alertKindsInTable.includes(kind) || findingKindsInTable.includes(kind), `${kind} is asked about but not in the table`);

  // an alert written in SQL (ledgerbox.signal_workflow writes signal_too_late) has the table's severity
  const sqlAlerts = sqlFiles.flatMap((file) =>
    [...file.text.matchAll(/insert into ledgerbox\.alerts\s*\(severity, kind[^)]*\)\s*values\s*\('(\w+)',\s*'(\w+)'/gi)].map((match) => ({ path: file.path, severity: match[1]!, kind: match[2]! })),
  );
  assert.ok(sqlAlerts.some((alert) => alert.kind === 'signal_too_late'), 'the SQL alert writers were found');
  for (const alert of sqlAlerts) assert.equal(alert.severity, alertSeverity(alert.kind), `${alert.path}: ${alert.kind}`);

  // every alert kind in the table is written by some path: no stale rows in the table
  const everything = [...typescript, ...sqlFiles].map((file) => file.text).join('\n');
  for (const kind of alertKindsInTable) {
    const finding = kind.startsWith('reconciliation_') ? kind.slice('reconciliation_'.length) : undefined;
    const written = everything.includes(`'${kind}'`) || (finding !== undefined && everything.includes(`'${finding}'`) && everything.includes('`reconciliation_${f.kind}`'));
    assert.ok(written, `${kind} is in the table but no code path writes it`);
  }

  // the table's facts are distinct: no finding or alert kind belongs to two facts
  const findingsSeen = Object.values(facts).flatMap((fact) => (fact.finding === null ? [] : [fact.finding]));
  assert.equal(new Set(findingsSeen).size, findingsSeen.length);
  const alertsSeen = Object.values(facts).flatMap((fact) => [...fact.alerts]);
  assert.equal(new Set(alertsSeen).size, alertsSeen.length);
});

test('recordAlert keeps a built-in kind at its one severity: another is refused with invalid_input, and nothing is written', async () => {
  const before = (await db.pool.query(`select count(*)::int as n from ledgerbox.alerts`)).rows[0].n;
  await assert.rejects(recordAlert(db.pool, { severity: 'critical', kind: 'job_failed', message: 'a host job failed' }), {
    code: 'invalid_input',
    message: /alert\.severity.*job_failed alert to be warning/,
  });
  await assert.rejects(recordAlert(db.pool, { severity: 'warning', kind: 'reconciliation_balance_drift', message: 'drift' }), { code: 'invalid_input' });
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.alerts`)).rows[0].n, before);
  // the table's severity, or either side of the tolerance for a statement kind, is accepted; a host's own kind takes any
  await recordAlert(db.pool, { severity: 'warning', kind: 'job_failed', message: 'a host job failed' });
  await recordAlert(db.pool, { severity: 'warning', kind: 'reconciliation_statement_line_differs', message: 'within the tolerance' });
  await recordAlert(db.pool, { severity: 'critical', kind: 'reconciliation_statement_line_differs', message: 'beyond the tolerance' });
  await recordAlert(db.pool, { severity: 'critical', kind: 'payout_unsettled', message: 'a host alert' });
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.alerts`)).rows[0].n, before + 4);
});
