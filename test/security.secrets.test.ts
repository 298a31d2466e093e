// Secrets (the database password, the SMTP password, the webhook URLs, which are their own
// credentials) never appear in what ledgerbox logs, throws, stores or sends, whatever fails.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { deliverAlerts, migrate, reconcile, recordAlert, startWorker } from '../src/index.ts';
import { redact, resolveDatabase } from '../src/db/connection.ts';
import { defaultLogger } from '../src/logger.ts';
import { deliverReport, renderReport } from '../src/reconcile/report/index.ts';
import { useTestDatabase } from './support/database.ts';
import { capturingLogger } from './support/logs.ts';
import { ledgerbox } from './support/processes.ts';

const db = await useTestDatabase();

const secret = 'Sup3r-s3cret-7f1c';
const webhookPath = `/services/T000/B000/${secret}path`;

/** Everything an error carries, as a log line or a caller would see it: message, details, cause chain, stack. */
function everythingIn(error: unknown): string {
  const seen = new Set<unknown>();
  const walk = (value: unknown): unknown => {
    if (typeof value !== 'object' || value === null || seen.has(value)) return value;
    seen.add(value);
    const out: Record<string, unknown> = {};
    for (const name of Object.getOwnPropertyNames(value)) out[name] = walk((value as Record<string, unknown>)[name]);
    return out;
  };
  return JSON.stringify(walk(error), (_key, value) => (typeof value === 'bigint' ? String(value) : value));
}

function assertNoSecret(text: string, where: string): void {
  assert.ok(!text.includes(secret), `${where} shows the secret: ${text.slice(0, 2_000)}`);
}

async function failure(attempt: () => Promise<unknown>): Promise<unknown> {
  try {
    await attempt();
  } catch (error) {
    return error;
  }
  assert.fail('expected a failure');
}

const servers: { close(): Promise<void> }[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

/** A webhook that answers 500 quoting the request's path back, as some proxies do. */
async function refusingWebhook(): Promise<string> {
  const server: Server = createServer((request, response) => {
    request.resume();
    response.writeHead(500).end(`upstream failed for ${request.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function smtpServer(): Promise<{ url: (password: string) => string; raw: string[] }> {
  const raw: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === 'reports' && auth.password === secret) return callback(null, { user: 'reports' });
      callback(new Error('Invalid username or password'));
    },
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        raw.push(Buffer.concat(chunks).toString('utf8'));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  servers.push({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
  const { port } = server.server.address() as AddressInfo;
  return { url: (password) => `smtp://reports:${encodeURIComponent(password)}@127.0.0.1:${port}`, raw };
}

test('a webhook URL never reaches the logs or the delivery records, whether the webhook refuses, is unreachable, or the URL holds credentials', async () => {
  const refusing = await refusingWebhook();
  const urls = [
    `${refusing}${webhookPath}`,
    `http://hook:${secret}@127.0.0.1:9${webhookPath}`,
    `http://127.0.0.1:9${webhookPath}`,
    `http://unresolvable-${secret}.invalid${webhookPath}`,
  ];
  for (const [index, url] of urls.entries()) {
    const { logger, lines } = capturingLogger();
    await recordAlert(db.pool, { severity: 'critical', kind: 'security.secret', message: `alert ${index}`, dedupeKey: `secret:${index}` });
    await recordAlert(db.pool, { severity: 'warning', kind: 'security.secret', message: `warning ${index}`, dedupeKey: `secret:warning:${index}` });
    const counts = await deliverAlerts(db.pool, { oncallWebhookUrl: url, opsWebhookUrl: url, logger, webhookTimeout_ms: 2_000 });
    assert.ok(counts.failed >= 1, `${url}: ${JSON.stringify(counts)}`);
    assert.ok(lines.length > 0, 'the failures were logged');
    assertNoSecret(JSON.stringify(lines), `the log of a delivery to ${index}`);
    assertNoSecret(JSON.stringify(counts), 'the delivery counts');
  }
  const stored = await db.pool.query(`select * from ledgerbox.alert_deliveries`);
  const alerts = await db.pool.query(`select * from ledgerbox.alerts`);
  assertNoSecret(JSON.stringify([stored.rows, alerts.rows]), 'the stored deliveries and alerts');
});

test('a malformed webhook URL is refused by name, never by value', async () => {
  for (const url of [`ftp://hook:${secret}@example.com/x`, `not a url ${secret}`, `https//hooks.example.com/${secret}`]) {
    const { logger, lines } = capturingLogger();
    const refused = await failure(() => startWorker({ connectionString: db.connectionString, oncallWebhookUrl: url, logger, noHandleSignals: true }));
    assert.equal((refused as { code?: string }).code, 'invalid_input');
    assert.match((refused as Error).message, /oncallWebhookUrl/);
    assertNoSecret(everythingIn(refused), `the error for ${url}`);
    const delivering = await failure(() => deliverAlerts(db.pool, { opsWebhookUrl: url, logger }));
    assertNoSecret(everythingIn(delivering), `deliverAlerts' error for ${url}`);
    assertNoSecret(JSON.stringify(lines), 'the log');
  }
});

test('the SMTP password is in no error, log line or message: wrong password, unreachable server, malformed URL, and a send that works', async () => {
  const smtp = await smtpServer();
  const rendered = renderReport(await reconcile(db.pool));
  const cases = [
    { smtpUrl: smtp.url(`${secret}-wrong`), code: 'report_send_failed' },
    { smtpUrl: `smtp://reports:${secret}@127.0.0.1:9`, code: 'report_send_failed' },
    { smtpUrl: `smtp://reports:${secret}@127.0.0.1:99999`, code: 'invalid_input' },
    { smtpUrl: `http://reports:${secret}@mail.example.com`, code: 'invalid_input' },
    { smtpUrl: `reports:${secret}@mail.example.com:587`, code: 'invalid_input' },
  ];
  for (const { smtpUrl, code } of cases) {
    const { logger, lines } = capturingLogger();
    const refused = await failure(() => deliverReport(rendered, { runId: 'secret-1', smtpUrl, to: ['ops@example.com'], logger }));
    assert.equal((refused as { code?: string }).code, code, everythingIn(refused));
    assertNoSecret(everythingIn(refused), `the error for ${smtpUrl.replace(secret, '<secret>')}`);
    // as the worker would log it, through pino's error serializer (cause chain included)
    logger.error({ err: refused }, 'sending the report failed');
    assertNoSecret(JSON.stringify(lines), 'the log');
  }
  const { logger, lines } = capturingLogger();
  const sent = await deliverReport(rendered, { runId: 'secret-2', smtpUrl: smtp.url(secret), to: ['ops@example.com'], logger });
  assert.deepEqual(sent, { sentTo: ['ops@example.com'] });
  assert.equal(smtp.raw.length, 1);
  assertNoSecret(smtp.raw[0]!, 'the message sent');
  assertNoSecret(JSON.stringify(lines), 'the log of the send');
});

test('the database password is in no error or log line: unreachable server, malformed URL, and the URL shown for humans', async () => {
  const urls = [`postgres://ledgerbox:${secret}@127.0.0.1:9/ledgerbox`, `postgres://ledgerbox:${secret}@127.0.0.1:99999/ledgerbox`, `postgres://ledgerbox@127.0.0.1:9/ledgerbox?password=${secret}`];
  for (const url of urls) {
    const { logger, lines } = capturingLogger();
    assertNoSecret(everythingIn(await failure(() => migrate({ connectionString: url, logger }))), 'migrate');
    const worker = await failure(() => startWorker({ connectionString: url, logger, noHandleSignals: true, reconciliation: false }));
    assertNoSecret(everythingIn(worker), 'startWorker');
    assertNoSecret(JSON.stringify(lines), 'the log');
    assertNoSecret(redact(url), 'the redacted URL');
  }
  const saved = process.env.DATABASE_URL;
  try {
    process.env.DATABASE_URL = urls[2];
    const resolved = await resolveDatabase();
    assertNoSecret(resolved.description, 'the description of DATABASE_URL');
    assert.match(resolved.description, /password=\*\*\*/);
    process.env.DATABASE_URL = urls[0];
    assert.match((await resolveDatabase()).description, /ledgerbox:\*\*\*@127\.0\.0\.1:9/);
  } finally {
    process.env.DATABASE_URL = saved;
  }
});

test('the ledgerbox command fails on an unreachable database without printing its password', async () => {
  for (const args of [['jobs', 'failed'], ['migrate'], ['reconcile']]) {
    const result = await ledgerbox(`postgres://ledgerbox:${secret}@127.0.0.1:9/ledgerbox`, args, { LEDGERBOX_LOG_LEVEL: 'debug' });
    assert.notEqual(result.code, 0, `${args.join(' ')} should fail`);
    assertNoSecret(result.stdout + result.stderr, `ledgerbox ${args.join(' ')}`);
  }
});

test("ledgerbox's default logger redacts credential fields a log line might carry", () => {
  const lines: string[] = [];
  const saved = process.env.LEDGERBOX_LOG_LEVEL;
  process.env.LEDGERBOX_LOG_LEVEL = 'info';
  try {
    const logger = defaultLogger(new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));
    logger.info({ connectionString: `postgres://u:${secret}@h/db`, options: { smtpUrl: `smtp://u:${secret}@h`, oncallWebhookUrl: `https://h/${secret}` } }, 'settings');
    logger.child({ pool: { options: { password: secret, connectionString: secret } } }).warn('pool');
  } finally {
    process.env.LEDGERBOX_LOG_LEVEL = saved;
  }
  assert.equal(lines.length, 2);
  assertNoSecret(lines.join(''), 'the default logger');
  assert.match(lines[0]!, /"connectionString":"\[redacted\]"/);
});
