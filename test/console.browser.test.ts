// The console in a real browser (issue 14): Debian's Chromium driven by playwright-core against
// `ledgerbox console` on a database the demo filled. Every page loads and shows the rows the
// database holds; an action with a reason changes the state and writes its audit row; without
// the token, 401; a cross-site form is refused. Screenshots go to test-output/console/.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { object, string } from 'superstruct';
import { defineWorkflow, startConsole, startWorkflow, type RunningConsole } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';

const chromiumPath = process.env.LEDGERBOX_CHROMIUM ?? '/usr/bin/chromium';
const screenshots = 'test-output/console';
const token = 'browser-test-console-token';
const db = await useTestDatabase();

/** Sleeps a year: started with no worker, it stays running for the console to cancel. */
const napper = defineWorkflow({
  kind: 'napper',
  version: 1,
  input: object({ note: string() }),
  steps: {
    nap: { type: 'sleep', until: () => new Date(Date.now() + 365 * 24 * 3_600_000), next: 'wake' },
    wake: { type: 'database', run: async () => ({ result: null, complete: true }) },
  },
  compensate: { type: 'database', run: async () => ({ result: null, complete: true }) },
});

function runDemo(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/run.ts', '--customers', '20', '--exchanges', '120'], {
      env: { ...process.env, DATABASE_URL: db.connectionString, LEDGERBOX_REPORT_DIR: '.ledgerbox/test-reports', SMTP_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`demo exited ${code}\n${output}`))));
  });
}

let browser: Browser;
let consoleServer: RunningConsole;

before(async () => {
  assert.ok(existsSync(chromiumPath), `Chromium at ${chromiumPath} (apt-get install -y chromium; .ci/run installs it)`);
  mkdirSync(screenshots, { recursive: true });
  await runDemo();
  consoleServer = await startConsole({ connectionString: db.connectionString, token, port: 0, actions: true });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    // as root in a container, and on a machine with no way out
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await consoleServer?.close();
});

async function count(sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await db.pool.query(`select count(*)::int as n from (${sql}) counted`, values);
  return rows[0].n as number;
}

/** A signed-in browser context: the login form, as an operator would. */
async function signedIn(viewport: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(`${consoleServer.url}/login`);
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForURL(`${consoleServer.url}/`), page.click('button[type=submit]')]);
  return { context, page };
}

async function rowsOf(page: Page, section = 'main'): Promise<number> {
  return page.locator(`${section} table tbody tr`).count();
}

test('without the token every page is 401; a wrong token at the login is refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  for (const path of ['/', '/workflows', '/alerts', '/metrics']) {
    const response = await page.goto(`${consoleServer.url}${path}`);
    assert.equal(response?.status(), 401, path);
  }
  await page.goto(`${consoleServer.url}/login`);
  await page.fill('input[name=token]', 'not-the-console-token');
  const [refused] = await Promise.all([page.waitForResponse((response) => response.url().endsWith('/login') && response.request().method() === 'POST'), page.click('button[type=submit]')]);
  assert.equal(refused.status(), 401);
  assert.match(await page.textContent('body') ?? '', /not the console's token/);
  await context.close();
});

test('each page loads and shows the rows the database holds', async () => {
  const { context, page } = await signedIn({ width: 1280, height: 900 });

  // overview: the cards are the database's counts
  const running = await count(`select 1 from ledgerbox.workflows where status = 'running'`);
  const compensated = await count(`select 1 from ledgerbox.workflows where status = 'compensated' and updated_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'`);
  assert.ok(compensated > 0, 'the demo compensates some exchanges');
  const cards = await page.locator('.card').allTextContents();
  assert.ok(cards.some((card) => card.includes('Workflows running') && card.includes(String(running))), cards.join(' | '));
  assert.ok(cards.some((card) => card.includes('Compensated today') && card.includes(String(compensated))), cards.join(' | '));
  const movedCurrencies = await count(
    `select distinct e.currency from ledgerbox.transfers t join ledgerbox.entries e on e.transfer_id = t.id and e.phase = 'posted' and e.amount > 0
     where t.created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'`,
  );
  assert.ok(movedCurrencies > 0);
  assert.equal(await page.locator('h2:has-text("Money moved today") + .scroll tbody tr').count(), movedCurrencies);
  assert.match(await page.textContent('main') ?? '', /Run \d+/);
  await page.screenshot({ path: `${screenshots}/overview-desktop.png`, fullPage: true });

  // workflows: one row per workflow, up to a page of 50
  const workflows = await count(`select 1 from ledgerbox.workflows`);
  await page.goto(`${consoleServer.url}/workflows`);
  assert.equal(await rowsOf(page), Math.min(50, workflows));
  await page.goto(`${consoleServer.url}/workflows?status=compensated`);
  assert.equal(await rowsOf(page), Math.min(50, await count(`select 1 from ledgerbox.workflows where status = 'compensated'`)));

  // failed jobs: the view's rows
  const failed = await count(`select 1 from ledgerbox.failed_jobs`);
  assert.ok(failed > 0, 'the demo leaves failed jobs');
  await page.goto(`${consoleServer.url}/failed-jobs`);
  assert.equal(await rowsOf(page), Math.min(200, failed));

  for (const path of ['/stuck', '/limbo']) {
    const response = await page.goto(`${consoleServer.url}${path}`);
    assert.equal(response?.status(), 200, path);
  }

  // reconciliation: the runs, and a run's findings grouped by kind
  const runs = await count(`select 1 from ledgerbox.reconciliation_runs`);
  await page.goto(`${consoleServer.url}/reconciliation`);
  assert.equal(await page.locator('main table tbody tr').count(), runs);
  const { rows: [lastRun] } = await db.pool.query(`select id::text as id from ledgerbox.reconciliation_runs order by id desc limit 1`);
  await page.goto(`${consoleServer.url}/reconciliation/${lastRun.id}`);
  const kinds = await count(`select distinct kind from ledgerbox.reconciliation_findings where run_id = $1`, [lastRun.id]);
  assert.equal(await page.locator('h2:has-text("Findings by kind") + .scroll tbody tr').count(), kinds);
  const findings = await count(`select 1 from ledgerbox.reconciliation_findings where run_id = $1`, [lastRun.id]);
  assert.equal(await page.locator('h2:has-text("Findings") >> nth=1').count(), 1);
  assert.equal(await page.locator('main .scroll >> nth=1').locator('tbody tr').count(), Math.min(100, findings));

  // alerts and investigations
  const openInvestigations = await count(`select 1 from ledgerbox.investigations where closed_at is null`);
  await page.goto(`${consoleServer.url}/alerts`);
  assert.equal(await page.locator('h2:has-text("Open investigations") + .scroll tbody tr').count(), Math.min(100, openInvestigations));

  // a compensated exchange's timeline: its attempts with their errors, and its money
  const { rows: [workflow] } = await db.pool.query(`select id::text as id from ledgerbox.workflows where status = 'compensated' order by updated_at desc limit 1`);
  await page.goto(`${consoleServer.url}/workflows/${workflow.id}`);
  const transfers = await count(`select 1 from ledgerbox.transfers where workflow_id = $1`, [workflow.id]);
  assert.ok(transfers > 0);
  assert.equal(await page.locator('h2:has-text("Holds and transfers") + .scroll tbody tr').count(), transfers);
  const events = await count(`select 1 from ledgerbox.workflow_timeline where workflow_id = $1 and event <> 'transfer'`, [workflow.id]);
  assert.equal(await page.locator('h2:has-text("Timeline") + .scroll tbody tr').count(), events + transfers);
  assert.match(await page.locator('h2:has-text("Timeline") + .scroll').textContent() ?? '', /compliance|Error/);
  assert.match(await page.textContent('main') ?? '', /compensated/);
  await page.screenshot({ path: `${screenshots}/timeline-desktop.png`, fullPage: true });
  await context.close();

  // the same two at a phone's width, where nothing may need a sideways scroll
  const phone = await signedIn({ width: 390, height: 844 });
  const pageWidth = () => phone.page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
  assert.equal(await pageWidth(), 390, 'the overview fits a phone');
  await phone.page.screenshot({ path: `${screenshots}/overview-phone.png`, fullPage: true });
  await phone.page.goto(`${consoleServer.url}/workflows/${workflow.id}`);
  assert.equal(await pageWidth(), 390, 'the timeline fits a phone');
  await phone.page.screenshot({ path: `${screenshots}/timeline-phone.png`, fullPage: true });
  await phone.context.close();
  for (const name of ['overview-desktop', 'timeline-desktop', 'overview-phone', 'timeline-phone']) assert.ok(statSync(`${screenshots}/${name}.png`).size > 5_000, name);
});

test('an enabled action with a reason changes the state and writes the audit row', async () => {
  const started = await startWorkflow(db.pool, napper, { key: 'browser-cancel', input: { note: 'stay' } });
  const { context, page } = await signedIn({ width: 1280, height: 900 });
  await page.goto(`${consoleServer.url}/workflows/${started.workflowId}`);
  const cancelForm = page.locator('form[action$="/actions/cancel-workflow"]');
  await cancelForm.locator('input[name=reason]').fill('customer withdrew the order');
  await Promise.all([page.waitForURL(`${consoleServer.url}/workflows/${started.workflowId}`), cancelForm.locator('button').click()]);
  assert.match(await page.textContent('.flash') ?? '', /cancelled: its compensation runs next/);
  const { rows } = await db.pool.query(`select status, current_step from ledgerbox.workflows where id = $1`, [started.workflowId]);
  assert.deepEqual(rows[0], { status: 'failed', current_step: 'compensate' });
  const audit = await db.pool.query(`select action, reason from ledgerbox.operator_actions where target = $1`, [started.workflowId]);
  assert.deepEqual(audit.rows, [{ action: 'cancel_workflow', reason: 'customer withdrew the order' }]);

  // closing an investigation from the alerts page
  const { rows: [investigation] } = await db.pool.query(`select id::text as id from ledgerbox.investigations where closed_at is null order by id limit 1`);
  await page.goto(`${consoleServer.url}/alerts`);
  const closeForm = page.locator(`form:has(input[name=investigation_id][value="${investigation.id}"])`);
  await closeForm.locator('input[name=reason]').fill('provider outage, confirmed with them');
  await Promise.all([page.waitForURL(`${consoleServer.url}/alerts`), closeForm.locator('button').click()]);
  assert.match(await page.textContent('.flash') ?? '', new RegExp(`Investigation ${investigation.id} closed`));
  const closed = await db.pool.query(`select closed_by, resolution, closed_at is not null as closed from ledgerbox.investigations where id = $1`, [investigation.id]);
  assert.deepEqual(closed.rows[0], { closed_by: 'console', resolution: 'provider outage, confirmed with them', closed: true });

  // the browser will not send the form without a reason
  const other = await startWorkflow(db.pool, napper, { key: 'browser-no-reason', input: { note: 'stay' } });
  await page.goto(`${consoleServer.url}/workflows/${other.workflowId}`);
  await page.locator('form[action$="/actions/cancel-workflow"] button').click();
  assert.equal(await page.locator('form[action$="/actions/cancel-workflow"] input[name=reason]:invalid').count(), 1);
  const still = await db.pool.query(`select status from ledgerbox.workflows where id = $1`, [other.workflowId]);
  assert.equal(still.rows[0].status, 'running');
  await context.close();
});

test('a cross-site form posted from another origin is refused and changes nothing', async () => {
  const target = await startWorkflow(db.pool, napper, { key: 'browser-cross-site', input: { note: 'stay' } });
  const { context, page } = await signedIn({ width: 1280, height: 900 });
  // the attacker even knows the CSRF field (say it leaked): the origin check still refuses
  await page.goto(`${consoleServer.url}/workflows/${target.workflowId}`);
  const csrf = await page.locator('form[action$="/actions/cancel-workflow"] input[name=csrf]').getAttribute('value');
  const evil = createServer((_request, response) => {
    response.setHeader('Content-Type', 'text/html');
    response.end(`<!doctype html><form id="f" method="post" action="${consoleServer.url}/actions/cancel-workflow">
      <input name="workflow_id" value="${target.workflowId}"><input name="reason" value="cross-site attack"><input name="csrf" value="${csrf}">
      <button>go</button></form>`);
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  try {
    // another port of the same host is another origin (and 'localhost' another site)
    await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
    const [response] = await Promise.all([page.waitForResponse((r) => r.url().includes('/actions/cancel-workflow')), page.click('button')]);
    assert.ok([401, 403].includes(response.status()), `refused, got ${response.status()}`);
  } finally {
    await new Promise((resolve) => evil.close(resolve));
  }
  const { rows } = await db.pool.query(`select status from ledgerbox.workflows where id = $1`, [target.workflowId]);
  assert.equal(rows[0].status, 'running');
  assert.equal(await count(`select 1 from ledgerbox.operator_actions where target = $1`, [target.workflowId]), 0);
  await context.close();
});
