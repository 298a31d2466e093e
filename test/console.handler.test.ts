// The console's HTTP surface without a browser (issue 14): the token, the login cookie, the
// guards on actions (disabled, cross-site, CSRF), escaping of what the database holds, paths
// under a mount, and the read-only pool of `startConsole`.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { object, string } from 'superstruct';
import { createAccount, createConsoleHandler, defineWorkflow, startConsole, startWorkflow, type ConsoleOptions } from '../src/index.ts';
import { assertRefused } from './support/fuzz.ts';
import { useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();
const token = 'console-handler-test-token';
const auth = { Authorization: `Bearer ${token}` };

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });

/** A workflow that sleeps a year: started with no worker, it stays running for the actions to act on. */
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

async function serve(options: Partial<ConsoleOptions> = {}): Promise<{ url: string; server: Server }> {
  const handler = createConsoleHandler({ db: db.pool, token, ...options });
  const server = createServer((request, response) => void handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  db.onClose(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function csrfOf(url: string, headers: Record<string, string>): Promise<string> {
  const page = await (await fetch(url, { headers })).text();
  const match = /name="csrf" value="([^"]+)"/.exec(page);
  assert.ok(match, 'the page has an action form');
  return match[1] ?? '';
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const formHeaders = { 'Content-Type': 'application/x-www-form-urlencoded' };

test('every page needs the token: 401 with WWW-Authenticate without it or with a wrong one; the login page is open', async () => {
  const { url } = await serve();
  for (const path of ['/', '/workflows', '/failed-jobs', '/stuck', '/limbo', '/reconciliation', '/alerts', '/metrics', '/nope']) {
    const bare = await fetch(`${url}${path}`);
    assert.equal(bare.status, 401, path);
    assert.match(bare.headers.get('www-authenticate') ?? '', /^Bearer/);
    const wrong = await fetch(`${url}${path}`, { headers: { Authorization: 'Bearer not-the-token' } });
    assert.equal(wrong.status, 401, path);
    const forged = await fetch(`${url}${path}`, { headers: { Cookie: 'ledgerbox_console=forged' } });
    assert.equal(forged.status, 401, path);
  }
  const login = await fetch(`${url}/login`);
  assert.equal(login.status, 200);
  assert.match(await login.text(), /<form method="post" action="\/login">/);
  const page = await fetch(`${url}/`, { headers: auth });
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*form-action 'self'.*frame-ancestors 'none'/);
});

test('the login form sets an HttpOnly SameSite=Strict cookie that is not the token; a wrong token gets 401; logout clears it', async () => {
  const { url } = await serve();
  const wrong = await fetch(`${url}/login`, { method: 'POST', headers: formHeaders, body: form({ token: 'nope-nope-nope' }), redirect: 'manual' });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null);
  const crossSite = await fetch(`${url}/login`, { method: 'POST', headers: { ...formHeaders, Origin: 'http://evil.example' }, body: form({ token }), redirect: 'manual' });
  assert.equal(crossSite.status, 403);
  const login = await fetch(`${url}/login`, { method: 'POST', headers: formHeaders, body: form({ token }), redirect: 'manual' });
  assert.equal(login.status, 303);
  assert.equal(login.headers.get('location'), '/');
  const cookie = login.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^ledgerbox_console=[^;]+; Path=\/; HttpOnly; SameSite=Strict/);
  assert.ok(!cookie.includes(token), 'the cookie never holds the token');
  const session = cookie.split(';')[0] ?? '';
  const page = await fetch(`${url}/workflows`, { headers: { Cookie: session } });
  assert.equal(page.status, 200);
  const logout = await fetch(`${url}/logout`, { method: 'POST', headers: { Cookie: session }, redirect: 'manual' });
  assert.equal(logout.status, 303);
  assert.match(logout.headers.get('set-cookie') ?? '', /Max-Age=0/);
});

test('read-only by default: no action forms, and a POSTed action is 403 and changes nothing', async () => {
  const started = await startWorkflow(db.pool, napper, { key: 'readonly-1', input: { note: 'x' } });
  const { url } = await serve();
  const page = await (await fetch(`${url}/workflows/${started.workflowId}`, { headers: auth })).text();
  assert.ok(!page.includes('/actions/'), 'no action form on a read-only console');
  const response = await fetch(`${url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ workflow_id: started.workflowId, reason: 'should not run' }) });
  assert.equal(response.status, 403);
  const { rows } = await db.pool.query('select status from ledgerbox.workflows where id = $1', [started.workflowId]);
  assert.equal(rows[0].status, 'running');
  const actions = await db.pool.query(`select count(*)::int as n from ledgerbox.operator_actions where target = $1`, [started.workflowId]);
  assert.equal(actions.rows[0].n, 0);
});

test('actions: refused cross-site or without the CSRF field; with both, the audited function runs with the reason', async () => {
  const started = await startWorkflow(db.pool, napper, { key: 'actions-1', input: { note: 'x' } });
  const { url } = await serve({ actions: true });
  const csrf = await csrfOf(`${url}/workflows/${started.workflowId}`, auth);
  const fields = { workflow_id: started.workflowId, reason: 'customer asked to stop', return_to: `/workflows/${started.workflowId}` };
  const attempts: [string, Record<string, string>, Record<string, string>][] = [
    ['no csrf', {}, fields],
    ['wrong csrf', {}, { ...fields, csrf: 'x'.repeat(csrf.length) }],
    ['cross-site origin', { Origin: 'http://evil.example' }, { ...fields, csrf }],
    ['null origin', { Origin: 'null' }, { ...fields, csrf }],
    ['sec-fetch-site cross-site', { 'Sec-Fetch-Site': 'cross-site' }, { ...fields, csrf }],
    ['sec-fetch-site same-site', { 'Sec-Fetch-Site': 'same-site' }, { ...fields, csrf }],
  ];
  for (const [what, headers, body] of attempts) {
    const response = await fetch(`${url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders, ...headers }, body: form(body), redirect: 'manual' });
    assert.equal(response.status, 403, what);
  }
  const untouched = await db.pool.query('select status from ledgerbox.workflows where id = $1', [started.workflowId]);
  assert.equal(untouched.rows[0].status, 'running');

  const tooLarge = await fetch(`${url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ ...fields, csrf, reason: 'x'.repeat(20_000) }) });
  assert.equal(tooLarge.status, 413);

  const done = await fetch(`${url}/actions/cancel-workflow`, {
    method: 'POST',
    headers: { ...auth, ...formHeaders, Origin: url, 'Sec-Fetch-Site': 'same-origin' },
    body: form({ ...fields, csrf }),
    redirect: 'manual',
  });
  assert.equal(done.status, 303);
  assert.equal(done.headers.get('location'), `/workflows/${started.workflowId}`);
  const { rows } = await db.pool.query('select status, current_step from ledgerbox.workflows where id = $1', [started.workflowId]);
  assert.deepEqual(rows[0], { status: 'failed', current_step: 'compensate' });
  const audit = await db.pool.query(`select action, reason from ledgerbox.operator_actions where target = $1`, [started.workflowId]);
  assert.deepEqual(audit.rows, [{ action: 'cancel_workflow', reason: 'customer asked to stop' }]);
  // the page it returns to says what happened, once
  const flash = (done.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const after = await (await fetch(`${url}/workflows/${started.workflowId}`, { headers: { ...auth, Cookie: flash } })).text();
  assert.match(after, /cancelled: its compensation runs next/);

  // a refusal of the function itself comes back as a message, and changes nothing more
  const again = await fetch(`${url}/actions/resume-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ ...fields, csrf, workflow_id: '00000000-0000-4000-8000-000000000000' }), redirect: 'manual' });
  assert.equal(again.status, 303);
  const refused = (again.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const shown = await (await fetch(`${url}/workflows/${started.workflowId}`, { headers: { ...auth, Cookie: refused } })).text();
  assert.match(shown, /resume-workflow refused \(workflow_not_found\)/);
  const count = await db.pool.query(`select count(*)::int as n from ledgerbox.operator_actions where target = $1`, [started.workflowId]);
  assert.equal(count.rows[0].n, 1);

  // a reason too short is bad input: a message, no audit row
  const other = await startWorkflow(db.pool, napper, { key: 'actions-2', input: { note: 'x' } });
  const short = await fetch(`${url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ workflow_id: other.workflowId, reason: 'x', csrf }), redirect: 'manual' });
  assert.equal(short.status, 303);
  const still = await db.pool.query('select status from ledgerbox.workflows where id = $1', [other.workflowId]);
  assert.equal(still.rows[0].status, 'running');

  // return_to never leaves the console
  for (const returnTo of ['//evil.example/x', 'https://evil.example/', '/\\evil.example']) {
    const response = await fetch(`${url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ workflow_id: other.workflowId, reason: 'r', csrf, return_to: returnTo }), redirect: 'manual' });
    assert.equal(response.headers.get('location'), '/', returnTo);
  }
  const unknown = await fetch(`${url}/actions/drop-everything`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ csrf }) });
  assert.equal(unknown.status, 404);
  const get = await fetch(`${url}/actions/cancel-workflow`, { headers: auth });
  assert.equal(get.status, 405);
});

test('what the database holds is escaped: a key with markup shows as text', async () => {
  const hostile = `<script>alert(1)</script>"'&`;
  const started = await startWorkflow(db.pool, napper, { key: hostile, input: { note: '<img src=x onerror=alert(2)>' } });
  const { url } = await serve({ actions: true });
  for (const path of [`/workflows/${started.workflowId}`, '/workflows']) {
    const page = await (await fetch(`${url}${path}`, { headers: auth })).text();
    assert.ok(!page.includes('<script>alert(1)'), path);
    assert.ok(!page.includes('<img src=x'), path);
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;'), path);
  }
  const malformed = await fetch(`${url}/workflows/not-a-uuid`, { headers: auth });
  assert.equal(malformed.status, 404);
  const sneaky = await fetch(`${url}/workflows?status=${encodeURIComponent("running' or 1=1 --")}&before_at=x&before_id=y`, { headers: auth });
  assert.equal(sneaky.status, 200);
});

test('pages of workflows follow each other: every row once, in the order of the last change', async () => {
  for (let index = 0; index < 75; index++) await startWorkflow(db.pool, napper, { key: `paged-${index}`, input: { note: 'x' } });
  const { url } = await serve();
  const shown: string[] = [];
  let next: string | undefined = `${url}/workflows?kind=napper`;
  for (let pages = 0; next !== undefined && pages < 10; pages++) {
    const page: string = await (await fetch(next, { headers: auth })).text();
    shown.push(...[...page.matchAll(/href="\/workflows\/([0-9a-f-]{36})"/g)].map((match) => match[1] ?? ''));
    const older: string | undefined = /rel="next" href="([^"]+)"/.exec(page)?.[1];
    next = older === undefined ? undefined : `${url}${older.replaceAll('&amp;', '&')}`;
  }
  const { rows } = await db.pool.query(`select id::text as id from ledgerbox.workflows where kind = 'napper' order by updated_at desc, id desc`);
  assert.ok(rows.length >= 75);
  assert.deepEqual(shown, rows.map((row) => row.id));
});

test('mounted under a path: links and forms carry it, whether the host strips the mount or not', async () => {
  const handler = createConsoleHandler({ db: db.pool, token, basePath: '/ops/ledgerbox', actions: true });
  const server = createServer((request, response) => {
    if (request.url?.startsWith('/stripped')) {
      request.url = request.url.slice('/stripped'.length) || '/'; // what Express's app.use(path, …) does
      return void handler(request, response);
    }
    if (request.url?.startsWith('/ops/ledgerbox')) return void handler(request, response);
    response.statusCode = 418;
    response.end('the host');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  db.onClose(() => new Promise((resolve) => server.close(resolve)));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const path of ['/ops/ledgerbox', '/ops/ledgerbox/', '/stripped/workflows']) {
    const response = await fetch(`${url}${path}`, { headers: auth });
    assert.equal(response.status, 200, path);
    const page = await response.text();
    assert.match(page, /href="\/ops\/ledgerbox\/workflows"/, path);
  }
  const login = await fetch(`${url}/ops/ledgerbox/login`, { method: 'POST', headers: formHeaders, body: form({ token }), redirect: 'manual' });
  assert.equal(login.headers.get('location'), '/ops/ledgerbox/');
});

test('/metrics serves the registry given, with the same token', async () => {
  const { url } = await serve({ metrics: { contentType: 'text/plain; version=0.0.4', metrics: async () => 'ledgerbox_up 1\n' } });
  assert.equal((await fetch(`${url}/metrics`)).status, 401);
  const scraped = await fetch(`${url}/metrics`, { headers: auth });
  assert.equal(scraped.status, 200);
  assert.equal(await scraped.text(), 'ledgerbox_up 1\n');
});

test('bad options are refused with invalid_input, and a token is never shown in the error', async () => {
  await assertRefused(() => createConsoleHandler({ db: db.pool, token: 'short' }), 'invalid_input', 'a short token');
  await assertRefused(() => createConsoleHandler({ db: db.pool, token: 'has a space in it' }), 'invalid_input', 'a token with spaces');
  await assertRefused(() => createConsoleHandler({ db: db.pool, token, basePath: 'no-slash' }), 'invalid_input', 'a base path without /');
  await assertRefused(() => createConsoleHandler({ db: db.pool, token, colour: 'blue' } as never), 'invalid_input', 'an unknown option');
  const error = await assertRefused(() => createConsoleHandler({ db: db.pool, token: 'secret1' }), 'invalid_input', 'a short token');
  assert.ok(!error.message.includes('secret1'), error.message);
});

test('startConsole: a read-only pool unless actions are enabled, on 127.0.0.1 by default', async () => {
  const started = await startWorkflow(db.pool, napper, { key: 'server-1', input: { note: 'x' } });
  const readOnly = await startConsole({ connectionString: db.connectionString, token, port: 0 });
  db.onClose(() => readOnly.close());
  assert.match(readOnly.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const page = await fetch(`${readOnly.url}/workflows/${started.workflowId}`, { headers: auth });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /server-1/);
  const refused = await fetch(`${readOnly.url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ workflow_id: started.workflowId, reason: 'nope' }) });
  assert.equal(refused.status, 403);

  const writable = await startConsole({ connectionString: db.connectionString, token, port: 0, actions: true });
  db.onClose(() => writable.close());
  const csrf = await csrfOf(`${writable.url}/workflows/${started.workflowId}`, auth);
  const done = await fetch(`${writable.url}/actions/cancel-workflow`, { method: 'POST', headers: { ...auth, ...formHeaders }, body: form({ workflow_id: started.workflowId, reason: 'done from the server', csrf }), redirect: 'manual' });
  assert.equal(done.status, 303);
  const { rows } = await db.pool.query('select status from ledgerbox.workflows where id = $1', [started.workflowId]);
  assert.equal(rows[0].status, 'failed');
});
