// The report email on the demo's data (issue 14): a database filled by `npm run demo` at a
// small size (with a planted drift, so one run has money at risk), reconciled a few more times.
// The demo's own report (stored with its run) must show each kind and cause as ONE group row
// whose count equals the findings rows in the database and whose money is their total, with at
// most three examples and the rest pointed to in the database; the last run's report must
// chart the runs before it, money at risk included, with no image to load.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { pino } from 'pino';
import { reconcile } from '../src/index.ts';
import { causeOf, report_group_examples_max } from '../src/reconcile/report/document.ts';
import { formatMinorUnits, renderReport } from '../src/reconcile/report/index.ts';
import type { Finding } from '../src/reconcile/types.ts';
import { useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();
const logger = pino({ level: 'silent' });

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

interface ExpectedGroup {
  kind: string;
  cause: string;
  findings: number;
  money: Map<string, bigint>;
}

/** The findings rows of a run, grouped as the report promises: by kind and cause, with their money (|difference|, else |actual|). */
async function groupsInDatabase(runId: string): Promise<ExpectedGroup[]> {
  const { rows } = await db.pool.query(
    `select severity, kind, subject, account, currency, expected::text, actual::text, difference::text, detail
     from ledgerbox.reconciliation_findings where run_id = $1`,
    [runId],
  );
  const big = (value: string | null) => (value === null ? null : BigInt(value));
  const groups = new Map<string, ExpectedGroup>();
  for (const row of rows) {
    const finding: Finding = { ...row, expected: big(row.expected), actual: big(row.actual), difference: big(row.difference) };
    const cause = causeOf(finding);
    const key = `${finding.kind}\u0000${cause}`;
    const group = groups.get(key) ?? { kind: finding.kind, cause, findings: 0, money: new Map() };
    group.findings += 1;
    const value = finding.difference ?? finding.actual;
    if (finding.currency !== null && value !== null) group.money.set(finding.currency, (group.money.get(finding.currency) ?? 0n) + (value < 0n ? -value : value));
    groups.set(key, group);
  }
  return [...groups.values()];
}

const moneyText = (money: Map<string, bigint>) =>
  money.size === 0 ? '—' : [...money].sort(([a], [b]) => (a < b ? -1 : 1)).map(([currency, amount]) => formatMinorUnits(amount, currency)).join(', ');

function assertNoImages(html: string, what: string): void {
  assert.doesNotMatch(html, /<img\b/i, `${what}: no <img>`);
  assert.doesNotMatch(html, /<svg\b/i, `${what}: no SVG (mail clients strip it)`);
  assert.doesNotMatch(html, /\bsrc\s*=|url\(/i, `${what}: nothing to load`);
  assert.doesNotMatch(html, /https?:\/\//i, `${what}: no external URL`);
}

test('the report on demo data: one row per kind and cause with its count and money, a few examples, and a trend of the last runs with money at risk', { timeout: 240_000 }, async () => {
  const demo = await runDemo(db.connectionString, ['--customers', '10', '--exchanges', '60', '--with-drift']);
  assert.equal(demo.code, 2, `the planted drift makes the demo's run critical\n${demo.stdout}\n${demo.stderr}`);

  // the demo's run and the report it rendered and stored
  const { rows: [first] } = await db.pool.query(
    `select id::text as id, report_text, report_html from ledgerbox.reconciliation_runs order by id limit 1`,
  );
  assert.ok(first?.report_text && first.report_html, 'the demo stored its report');
  const groups = await groupsInDatabase(first.id);
  assert.ok(groups.some((group) => group.findings > report_group_examples_max), `a group larger than its examples: ${JSON.stringify(groups.map((g) => [g.kind, g.cause, g.findings]))}`);

  const textLines: string[] = first.report_text.split('\n');
  for (const group of groups) {
    // text: one row for the group (kind, cause, count, money), its examples indented under it
    const rows = textLines.flatMap((line, index) => (line.startsWith(`${group.kind} `) && line.includes(` ${group.cause} `) ? [index] : []));
    assert.equal(rows.length, 1, `text: one row for ${group.kind} · ${group.cause}`);
    const row = textLines[rows[0]!]!;
    const cells = row.split(/\s{2,}/);
    assert.equal(cells[2], String(group.findings), `text: ${group.kind} · ${group.cause} counts the rows in the database: ${row}`);
    assert.equal(cells[3], moneyText(group.money), `text: ${group.kind} · ${group.cause} totals their money`);
    const notes: string[] = [];
    for (let index = rows[0]! + 1; textLines[index]?.startsWith('    '); index++) notes.push(textLines[index]!);
    const more = group.findings - report_group_examples_max;
    assert.equal(notes.length, Math.min(group.findings, report_group_examples_max) + (more > 0 ? 1 : 0), `text: examples of ${group.kind}`);
    if (more > 0) assert.match(notes.at(-1)!, new RegExp(`… and ${more} more — in ledgerbox\\.reconciliation_findings, run ${first.id}: .*kind = '${group.kind}'`));

    // HTML: one title row for the group, then its count and money, then at most three examples
    const title = `<strong>${group.kind}</strong> · ${group.cause}</td></tr>`;
    assert.equal(first.report_html.split(title).length - 1, 1, `html: one row for ${group.kind} · ${group.cause}`);
    const after = first.report_html.slice(first.report_html.indexOf(title) + title.length);
    const [figures, examples] = [...after.matchAll(/<tr>(.*?)<\/tr>/gs)].slice(0, 2).map((match) => match[1] ?? '');
    assert.deepEqual([...figures!.matchAll(/<span[^>]*>(.*?)<\/span>/g)].map((match) => match[1]), [String(group.findings), moneyText(group.money)], `html: ${group.kind} figures`);
    const exampleLines = examples!.replace(/<[^>]+>$/, '').split('<br>');
    assert.equal(exampleLines.length, Math.min(group.findings, report_group_examples_max) + (more > 0 ? 1 : 0), `html: examples of ${group.kind}`);
    if (more > 0) assert.match(exampleLines.at(-1)!, new RegExp(`… and ${more} more — in ledgerbox\\.reconciliation_findings, run ${first.id}`));
  }
  assertNoImages(first.report_html, 'the demo run');

  // a few more runs: the drift was put back, so they are calmer; the last one charts them all
  const later = [];
  for (let run = 0; run < 3; run++) later.push(await reconcile(db.pool, { logger }));
  const last = later.at(-1)!;
  const ids = [last.runId, ...last.trend.map((run) => run.runId)];
  assert.deepEqual(ids, [...later.map((report) => report.runId)].reverse().concat(first.id), 'the trend covers every run, newest first');

  // each earlier run's money at risk, as that run reported it
  const { rows: criticalRisk } = await db.pool.query(
    `select currency, sum(abs(difference))::text as amount from ledgerbox.reconciliation_findings
     where run_id = $1 and (severity = 'critical' or kind = 'money_in_limbo') and difference is not null group by currency order by currency`,
    [first.id],
  );
  assert.ok(criticalRisk.length > 0, 'the drifted run had money at risk');
  const firstTrend = last.trend.find((run) => run.runId === first.id)!;
  assert.deepEqual(firstTrend.moneyAtRisk, criticalRisk.map((row) => ({ currency: row.currency, amount: BigInt(row.amount) })));
  for (const report of later.slice(0, -1)) {
    assert.deepEqual(last.trend.find((run) => run.runId === report.runId)?.moneyAtRisk, report.moneyAtRisk, `run ${report.runId}`);
  }

  const rendered = renderReport(last);
  const riskText = `at risk ${criticalRisk.map((row) => formatMinorUnits(BigInt(row.amount), row.currency)).join(', ')}`;
  for (const [part, body] of [['text', rendered.text], ['html', rendered.html]] as const) {
    const trend = body.slice(body.lastIndexOf('Trend'));
    for (const id of ids) assert.match(trend, new RegExp(`UTC · ${id}\\b`), `${part}: the trend shows run ${id}`);
    assert.ok(trend.includes(riskText), `${part}: the drifted run's bar says ${riskText}`);
    assert.ok(trend.includes(`This run and the ${ids.length - 1} before it`), part);
  }
  // the text chart is characters, the HTML one table cells with inline colours
  assert.match(rendered.text, /· \d+ \(this run\)\s+\|/);
  assert.match(rendered.html, /<td style="[^"]*background:#[0-9a-f]{6};" title="1 critical"><\/td>/i);
  assertNoImages(rendered.html, 'the last run');
});
