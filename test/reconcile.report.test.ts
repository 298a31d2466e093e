import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino, type Logger } from 'pino';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import {
  deliverReport,
  formatMinorUnits,
  renderReport,
  reportDeliveryFromEnv,
  reportHeadline,
  report_table_rows_max,
} from '../src/reconcile/report/index.ts';
import type { Finding, ReconciliationReport, RenderedReport } from '../src/reconcile/types.ts';

// The nightly report email: rendered from a run's findings (text and HTML saying the same
// thing, amounts exact from minor units, data escaped), then delivered to a real SMTP server
// started here, or written as an .eml file when SMTP is not configured. No database needed.

// ---------------------------------------------------------------------------------------------
// Fixtures

const night = new Date('2026-11-21T00:00:00.000Z');

function finding(fields: Partial<Finding> & Pick<Finding, 'severity' | 'kind' | 'subject'>): Finding {
  return { account: null, currency: null, expected: null, actual: null, difference: null, detail: '', ...fields };
}

const drift = finding({
  severity: 'critical',
  kind: 'balance_drift',
  subject: 'balance_drift:customer:42:USD',
  account: 'customer:42:USD',
  currency: 'USD',
  expected: 1_000_000n,
  actual: 876_544n,
  difference: -123_456n,
  detail: 'cached posted balance differs from the sum of entries',
});
const overdraft = finding({
  severity: 'critical',
  kind: 'forbidden_overdraft',
  subject: 'forbidden_overdraft:shop:7:JPY',
  account: 'shop:7:JPY',
  currency: 'JPY',
  expected: 0n,
  actual: -5_000n,
  difference: -5_000n,
  detail: 'allowNegative is false',
});
const unbalanced = finding({
  severity: 'critical',
  kind: 'unbalanced_transfer',
  subject: 'unbalanced_transfer:t-9:POINTS',
  currency: 'POINTS',
  expected: 0n,
  actual: 1_500n,
  difference: 1_500n,
  detail: 'transfer t-9 sums to 1500 POINTS <script>alert("x")</script> & more',
});
const limbo = finding({
  severity: 'warning',
  kind: 'money_in_limbo',
  subject: 'money_in_limbo:hold:h-1',
  account: 'customer:7:EUR',
  currency: 'EUR',
  actual: 250_000n,
  detail: "hold h-1 pending 3 days past its expiry: is the worker's schedule running?",
});
const stuck = finding({
  severity: 'warning',
  kind: 'stuck_workflow',
  subject: 'stuck_workflow:wf-1',
  detail: 'exchange wf-1 untouched for 2 hours & no pending job',
});
const failedJob = finding({ severity: 'warning', kind: 'failed_job', subject: 'failed_job:77', detail: 'job 77 failed for good' });

/** A fresh copy each time: a test may change it. */
function dirtyReport(): ReconciliationReport {
  return structuredClone({
    runId: '42',
    asOf: night,
    full: false,
    startedAt: new Date('2026-11-21T03:00:00.000Z'),
    finishedAt: new Date('2026-11-21T03:00:04.200Z'),
    entriesChecked: 1_234_567,
    status: 'critical',
    findings: [stuck, unbalanced, limbo, drift, overdraft],
    comparison: { new: [drift, unbalanced], persisting: [overdraft, limbo, stuck], resolved: [failedJob] },
    moneyAtRisk: [
      { currency: 'USD', amount: 123_456n },
      { currency: 'JPY', amount: 5_000n },
      { currency: 'POINTS', amount: 1_500n },
      { currency: 'EUR', amount: 250_000n },
    ],
    movement: [
      // 2^53 + 1 minor units: a float would print ...992, not ...993
      { currency: 'USD', moved: 9_007_199_254_740_993n, transfers: 1_200 },
      { currency: 'JPY', moved: 15_000_000n, transfers: 3 },
      { currency: 'POINTS', moved: 42n, transfers: 1 },
    ],
    workflows: { completed: 118, failed: 2, compensated: 1 },
    trend: [
      { runId: '41', asOf: new Date('2026-11-20T00:00:00.000Z'), status: 'warnings', critical: 0, warning: 4 },
      { runId: '40', asOf: new Date('2026-11-19T00:00:00.000Z'), status: 'clean', critical: 0, warning: 0 },
    ],
  } satisfies ReconciliationReport);
}

function cleanReport(): ReconciliationReport {
  return {
    runId: '43',
    asOf: night,
    full: true,
    startedAt: new Date('2026-11-21T03:00:00.000Z'),
    finishedAt: new Date('2026-11-21T03:00:00.250Z'),
    entriesChecked: 12_345,
    status: 'clean',
    findings: [],
    comparison: { new: [], persisting: [], resolved: [] },
    moneyAtRisk: [],
    movement: [],
    workflows: { completed: 0, failed: 0, compensated: 0 },
    trend: [],
  };
}

/** What a person reads in the HTML part: the tags gone, the five entities it uses decoded. */
function visibleText(html: string): string {
  const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
  return html.replace(/<[^>]*>/g, '').replace(/&(amp|lt|gt|quot|#39);/g, (entity) => entities[entity] ?? entity);
}

// ---------------------------------------------------------------------------------------------
// Amounts

test('amounts are formatted from minor units with the currency exponent, never through a float', () => {
  assert.equal(formatMinorUnits(123_456n, 'USD'), '1,234.56 USD');
  assert.equal(formatMinorUnits(-5n, 'USD'), '-0.05 USD');
  assert.equal(formatMinorUnits(0n, 'USD'), '0.00 USD');
  assert.equal(formatMinorUnits(-1_234_567n, 'JPY'), '-1,234,567 JPY');
  assert.equal(formatMinorUnits(1_234n, 'BHD'), '1.234 BHD');
  assert.equal(formatMinorUnits(9_007_199_254_740_993n, 'USD'), '90,071,992,547,409.93 USD');
  assert.equal(formatMinorUnits(1_500n, 'POINTS'), '1,500 POINTS (minor units)');
  assert.equal(formatMinorUnits(-1_000_000n, 'USDC'), '-1,000,000 USDC (minor units)');
  assert.equal(formatMinorUnits(7n, null), '7 (minor units)');
});

// ---------------------------------------------------------------------------------------------
// Rendering

test('a clean run: subject, headline and every section say so', () => {
  const rendered = renderReport(cleanReport());
  assert.equal(rendered.subject, 'ledgerbox reconciliation 2026-11-21: clean');
  assert.equal(reportHeadline(cleanReport()), 'Clean: no findings, 12,345 entries checked.');
  for (const part of [rendered.text, rendered.html]) {
    assert.ok(part.includes('Clean: no findings, 12,345 entries checked.'));
    assert.ok(part.includes('None: every check passed.'));
    assert.ok(part.includes('This is the first run: there is nothing to compare with.'));
    assert.ok(part.includes('No money moved.'));
    assert.ok(part.includes('Workflows: 0 completed, 0 failed, 0 compensated.'));
    assert.ok(part.includes('No earlier runs yet.'));
    assert.ok(part.includes('full (all history re-verified)'));
  }
  assert.ok(!rendered.text.includes('Critical ('));
  assert.ok(rendered.html.includes('#1b5e20'), 'the clean banner is green');
});

test('a run with findings: the subject counts them and names the money at risk', () => {
  const report = dirtyReport();
  assert.equal(
    renderReport(report).subject,
    'ledgerbox reconciliation 2026-11-21: 3 critical, 2 warnings — 1,234.56 USD, 5,000 JPY, 1,500 POINTS (minor units) and 1 more currency at risk',
  );
  assert.equal(
    reportHeadline(report),
    '5 findings: 3 critical, 2 warnings. Money at risk: 1,234.56 USD, 5,000 JPY, 1,500 POINTS (minor units), 2,500.00 EUR.',
  );
  const warningsOnly: ReconciliationReport = { ...cleanReport(), status: 'warnings', findings: [stuck], comparison: { new: [stuck], persisting: [], resolved: [] } };
  assert.equal(renderReport(warningsOnly).subject, 'ledgerbox reconciliation 2026-11-21: 1 warning');
  assert.equal(reportHeadline(warningsOnly), '1 finding: 1 warning. No money at risk.');
});

test('text and HTML carry the same sections, in order, with every amount exact', () => {
  const rendered = renderReport(dirtyReport());
  const inOrder = [
    '5 findings: 3 critical, 2 warnings. Money at risk: 1,234.56 USD, 5,000 JPY, 1,500 POINTS (minor units), 2,500.00 EUR.',
    'Critical (3)',
    'Money is wrong or unaccounted for: act now.',
    'Warnings (2)',
    'A person is needed; the books are right.',
    'Compared with the previous run',
    '2 new, 3 persisting, 1 resolved.',
    'Money moved since the previous run',
    'Workflows: 118 completed, 2 failed, 1 compensated.',
    'Trend',
    'This run and the 2 before it, newest first.',
  ];
  const cells = [
    // the drift: expected, actual, difference
    '10,000.00 USD',
    '8,765.44 USD',
    '-1,234.56 USD',
    // JPY has no minor unit
    '-5,000 JPY',
    // a custom currency: minor units, said so
    '+1,500 POINTS (minor units)',
    '2,500.00 EUR',
    '90,071,992,547,409.93 USD',
    '15,000,000 JPY',
    '42 POINTS (minor units)',
    '1,200',
    'customer:42:USD',
    'shop:7:JPY',
    // the resolved failed job, by its cause (its detail with the numbers taken out)
    'job # failed for good',
    '2026-11-20 00:00:00 UTC',
    '42 (this run)',
    '1,234,567',
    'incremental (entries since the last checkpoint)',
    'ledgerbox.reconciliation_findings (run 42)',
    unbalanced.detail,
    limbo.detail,
  ];
  for (const [name, part] of [
    ['text', rendered.text],
    ['html', visibleText(rendered.html)],
  ] as const) {
    let from = 0;
    for (const phrase of inOrder) {
      const at = part.indexOf(phrase, from);
      assert.ok(at >= 0, `${name}: expected ${JSON.stringify(phrase)} after offset ${from}`);
      from = at;
    }
    for (const cell of cells) assert.ok(part.includes(cell), `${name}: expected ${JSON.stringify(cell)}`);
    assert.ok(!part.includes('9,007,199,254,740,992'), `${name}: no float rounding`);
  }
  // Critical groups are listed before warnings, by kind; the text lines keep their columns, and
  // a group's examples are indented under it.
  const textLines = rendered.text.split('\n');
  const driftAt = textLines.findIndex((line) => line.startsWith('balance_drift'));
  const driftLine = textLines[driftAt];
  assert.match(driftLine ?? '', /^balance_drift +customer:\*:USD +1 +1,234\.56 USD$/);
  assert.ok(textLines[driftAt + 1]?.startsWith('    customer:42:USD (expected 10,000.00 USD, actual 8,765.44 USD, difference -1,234.56 USD): '), textLines[driftAt + 1]);
  const position = (kind: string) => rendered.text.indexOf(`\n${kind}  `);
  assert.ok(position('balance_drift') < position('unbalanced_transfer'));
  assert.ok(position('unbalanced_transfer') < position('forbidden_overdraft'));
  assert.ok(position('forbidden_overdraft') < position('money_in_limbo'));
});

test('data is escaped in HTML, and HTML is self-contained and fits a phone', () => {
  const { html, text } = renderReport(dirtyReport());
  assert.ok(!html.includes('<script'), 'a detail cannot inject markup');
  assert.ok(html.includes('transfer t-9 sums to 1500 POINTS &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more'));
  assert.ok(html.includes('untouched for 2 hours &amp; no pending job'));
  assert.ok(html.includes('is the worker&#39;s schedule running?'));
  assert.ok(!/&(?!amp;|lt;|gt;|quot;|#39;)/.test(html), 'every & in the HTML is an entity');
  // The plain-text part is not HTML: the detail stays as written.
  assert.ok(text.includes('<script>alert("x")</script> & more'));

  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.ok(html.includes('<meta name="viewport" content="width=device-width, initial-scale=1">'));
  assert.ok(!/<style|<link|<img|<script|\ssrc=|\shref=|url\(|@import|https?:/i.test(html), 'no external assets, no style block');
  assert.ok(!/\sclass=/.test(html), 'inline styles only');
  const tables = html.match(/<table[^>]*>/g) ?? [];
  assert.ok(tables.length >= 5);
  for (const table of tables) assert.ok(table.includes('max-width:100%'), table);
  assert.ok(html.includes('#b00020'), 'the critical banner is red');
});

test('rendering is pure and deterministic, whatever order the findings come in', () => {
  const first = renderReport(dirtyReport());
  const shuffled = dirtyReport();
  shuffled.findings.reverse();
  shuffled.comparison.persisting.reverse();
  shuffled.movement.reverse();
  assert.deepEqual(renderReport(shuffled), first);
  const report = dirtyReport();
  const before = structuredClone(report);
  renderReport(report);
  assert.deepEqual(report, before, 'the report is not changed');
});

test('a table shows at most report_table_rows_max rows and says how many it left out', () => {
  const many = Array.from({ length: report_table_rows_max + 50 }, (_, index) =>
    // a task each: as many groups as findings
    finding({ severity: 'warning', kind: 'failed_job', subject: `failed_job:${String(index).padStart(4, '0')}`, detail: `job ${index} (task_${String(index).padStart(4, '0')}) failed for good after 3 attempts: boom` }),
  );
  const report: ReconciliationReport = { ...cleanReport(), status: 'warnings', findings: many, comparison: { new: many, persisting: [], resolved: [] } };
  const { text, html } = renderReport(report);
  assert.ok(text.includes(`Warnings (${report_table_rows_max + 50})`));
  assert.ok(text.includes('… and 50 more, not shown here'));
  assert.ok(html.includes('… and 50 more, not shown here'));
  assert.equal(text.split('\n').filter((line) => line.startsWith('failed_job  ')).length, report_table_rows_max);
});

test('a report that breaks its contract is refused with invalid_input', () => {
  assert.throws(() => renderReport({ ...dirtyReport(), status: 'clean' }), {
    code: 'invalid_input',
    message: /report\.status.*critical \(3 critical, 2 warning findings\), got clean/,
  });
  const floaty = dirtyReport();
  (floaty.findings[0] as unknown as { difference: number }).difference = 12.5;
  assert.throws(() => renderReport(floaty), { code: 'invalid_input', message: /report\.findings\.0\.difference/ });
  assert.throws(() => renderReport({ ...cleanReport(), asOf: new Date(Number.NaN) }), { code: 'invalid_input', message: /report\.asOf/ });
  assert.throws(() => renderReport({ ...cleanReport(), moneyAtRisk: [{ currency: 'usd', amount: 1n }] }), {
    code: 'invalid_input',
    message: /report\.moneyAtRisk\.0\.currency/,
  });
});

// ---------------------------------------------------------------------------------------------
// A real SMTP server, and reading what it received

interface Received {
  from: string | false;
  to: string[];
  raw: string;
}

interface TestSmtpServer {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

const openServers = new Set<TestSmtpServer>();
after(async () => {
  for (const server of openServers) await server.close();
});

async function startSmtpServer(options: Pick<SMTPServerOptions, 'onRcptTo'> & { refuseData?: Error } = {}): Promise<TestSmtpServer> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    ...(options.onRcptTo === undefined ? {} : { onRcptTo: options.onRcptTo }),
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (options.refuseData !== undefined) return callback(options.refuseData);
        received.push({
          from: session.envelope.mailFrom === false ? false : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((address) => address.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  const handle: TestSmtpServer = {
    url: `smtp://127.0.0.1:${port}`,
    received,
    close: () => {
      openServers.delete(handle);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  openServers.add(handle);
  return handle;
}

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

interface MimePart {
  headers: Map<string, string>;
  body: string;
}

/** Headers (unfolded, names in lower case) and the body; CRLF read as LF. */
function parseMime(raw: string): MimePart {
  const text = raw.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  assert.ok(split > 0, 'a header block and a body');
  const headers = new Map<string, string>();
  for (const line of text.slice(0, split).replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: text.slice(split + 2) };
}

/** The parts of a multipart body, each decoded to text. */
function multipartParts(message: MimePart): { type: string; content: string }[] {
  const boundary = /boundary="?([^";]+)"?/.exec(message.headers.get('content-type') ?? '')?.[1];
  assert.ok(boundary !== undefined, 'a multipart boundary');
  const pieces = `\n${message.body}`.split(`\n--${boundary}`);
  assert.ok(pieces.at(-1)?.startsWith('--'), 'the closing boundary');
  return pieces.slice(1, -1).map((piece) => {
    const part = parseMime(piece.replace(/^\n/, ''));
    const encoding = (part.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
    const content =
      encoding === 'quoted-printable'
        ? decodeQuotedPrintable(part.body)
        : encoding === 'base64'
          ? Buffer.from(part.body, 'base64').toString('utf8')
          : part.body;
    return { type: part.headers.get('content-type') ?? '', content };
  });
}

function decodeQuotedPrintable(body: string): string {
  const bytes: number[] = [];
  const unfolded = body.replace(/=\n/g, '');
  for (let index = 0; index < unfolded.length; index += 1) {
    if (unfolded[index] === '=' && /^[0-9A-F]{2}$/i.test(unfolded.slice(index + 1, index + 3))) {
      bytes.push(Number.parseInt(unfolded.slice(index + 1, index + 3), 16));
      index += 2;
    } else {
      bytes.push(unfolded.charCodeAt(index));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`), adjacent ones joined before decoding. */
function decodeHeader(value: string): string {
  const word = /=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g;
  let result = '';
  let pending: number[] = [];
  let last = 0;
  for (const match of value.matchAll(word)) {
    const between = value.slice(last, match.index);
    if (between.trim() !== '' || pending.length === 0) {
      result += Buffer.from(pending).toString('utf8') + between;
      pending = [];
    }
    const [, , encoding = '', data = ''] = match;
    if (encoding.toUpperCase() === 'B') pending.push(...Buffer.from(data, 'base64'));
    else pending.push(...Buffer.from(decodeQuotedPrintable(data.replace(/_/g, ' ')), 'utf8'));
    last = match.index + match[0].length;
  }
  return result + Buffer.from(pending).toString('utf8') + value.slice(last);
}

/** The message's subject, text and HTML as a mail client would show them. */
function readMessage(raw: string): { headers: Map<string, string>; subject: string; text: string; html: string } {
  const message = parseMime(raw);
  assert.match(message.headers.get('content-type') ?? '', /^multipart\/alternative;/);
  const parts = multipartParts(message);
  assert.deepEqual(
    parts.map((part) => part.type.split(';')[0]),
    ['text/plain', 'text/html'],
  );
  for (const part of parts) assert.match(part.type, /charset=utf-8/i);
  return {
    headers: message.headers,
    subject: decodeHeader(message.headers.get('subject') ?? ''),
    text: parts[0]?.content ?? '',
    html: parts[1]?.content ?? '',
  };
}

function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

function assertSameReport(received: ReturnType<typeof readMessage>, rendered: RenderedReport): void {
  assert.equal(received.subject, rendered.subject);
  assert.equal(received.text.replace(/\n+$/, ''), rendered.text.replace(/\n+$/, ''));
  assert.equal(received.html.replace(/\n+$/, ''), rendered.html.replace(/\n+$/, ''));
}

// ---------------------------------------------------------------------------------------------
// Delivery over SMTP

test('with SMTP configured, one message with a text and an HTML part reaches the server', async () => {
  const server = await startSmtpServer();
  const { logger, lines } = capturingLogger();
  const rendered = renderReport(dirtyReport());
  const result = await deliverReport(rendered, {
    runId: '42',
    smtpUrl: server.url,
    from: 'ledgerbox <reports@ledgerbox.test>',
    to: ['ops@ledgerbox.test', 'cfo@ledgerbox.test'],
    logger,
  });
  assert.deepEqual(result, { sentTo: ['ops@ledgerbox.test', 'cfo@ledgerbox.test'] });
  assert.equal(server.received.length, 1, 'exactly one message');
  const [delivered] = server.received;
  assert.ok(delivered !== undefined);
  assert.equal(delivered.from, 'reports@ledgerbox.test');
  assert.deepEqual(delivered.to, ['ops@ledgerbox.test', 'cfo@ledgerbox.test']);

  const message = readMessage(delivered.raw);
  assert.equal(message.headers.get('from'), 'ledgerbox <reports@ledgerbox.test>');
  assert.equal(message.headers.get('to'), 'ops@ledgerbox.test, cfo@ledgerbox.test');
  assert.equal(message.headers.get('message-id'), '<reconciliation-42@ledgerbox.test>');
  assert.equal(message.headers.get('x-ledgerbox-reconciliation-run'), '42');
  assertSameReport(message, rendered);
  assert.ok(message.text.includes('-1,234.56 USD'));
  assert.ok(message.html.includes('&lt;script&gt;') && !message.html.includes('<script'));

  const sent = lines.find((line) => line.msg === 'reconciliation report sent');
  assert.deepEqual(sent?.sentTo, ['ops@ledgerbox.test', 'cfo@ledgerbox.test']);
  assert.equal(sent?.server, server.url);
  await server.close();
});

test('a recipient the server refuses is logged; the others still get the report', async () => {
  const server = await startSmtpServer({
    onRcptTo(address, _session, callback) {
      callback(address.address === 'gone@ledgerbox.test' ? smtpError('no such mailbox', 550) : null);
    },
  });
  const { logger, lines } = capturingLogger();
  const result = await deliverReport(renderReport(cleanReport()), {
    runId: '43',
    smtpUrl: server.url,
    to: ['ops@ledgerbox.test', 'gone@ledgerbox.test'],
    logger,
  });
  assert.deepEqual(result, { sentTo: ['ops@ledgerbox.test'] });
  assert.deepEqual(server.received[0]?.to, ['ops@ledgerbox.test']);
  assert.equal(server.received[0]?.from, 'ledgerbox@localhost', 'the default sender');
  const warning = lines.find((line) => line.msg === 'reconciliation report refused for some recipients');
  assert.deepEqual(warning?.rejected, ['gone@ledgerbox.test']);
  await server.close();
});

test('a server refusing every recipient fails with report_send_failed, not retryable', async () => {
  const server = await startSmtpServer({ onRcptTo: (_address, _session, callback) => callback(smtpError('relay denied', 550)) });
  const { logger } = capturingLogger();
  await assert.rejects(
    deliverReport(renderReport(dirtyReport()), { runId: '42', smtpUrl: server.url, to: ['ops@ledgerbox.test'], logger }),
    (error: unknown) => {
      assert.ok(error instanceof Error);
      const failure = error as Error & { code: string; retryable: boolean; details: Record<string, unknown> };
      assert.equal(failure.code, 'report_send_failed');
      assert.equal(failure.retryable, false, 'a 5xx refusal will not pass on a retry');
      assert.equal(failure.details.runId, '42');
      assert.equal(failure.details.server, server.url);
      assert.match(failure.message, /report of run 42 through smtp:\/\/127\.0\.0\.1:\d+ failed/);
      return true;
    },
  );
  assert.equal(server.received.length, 0);
  await server.close();
});

test('a server refusing the message data fails with report_send_failed, retryable on a 4xx', async () => {
  const server = await startSmtpServer({ refuseData: smtpError('try again later', 451) });
  const { logger } = capturingLogger();
  await assert.rejects(
    deliverReport(renderReport(dirtyReport()), { runId: '42', smtpUrl: server.url, to: ['ops@ledgerbox.test'], logger }),
    { code: 'report_send_failed', retryable: true, details: { runId: '42', server: server.url, smtpCode: 'EMESSAGE', responseCode: 451, response: '451 try again later', command: 'DATA', rejected: undefined } },
  );
  await server.close();
});

test('no server listening fails with report_send_failed, retryable, without leaking the password', async () => {
  const server = await startSmtpServer();
  const port = new URL(server.url).port;
  await server.close();
  const { logger } = capturingLogger();
  await assert.rejects(
    deliverReport(renderReport(cleanReport()), { runId: '43', smtpUrl: `smtp://reports:s3cret@127.0.0.1:${port}`, to: ['ops@ledgerbox.test'], logger }),
    (error: unknown) => {
      const failure = error as Error & { code: string; retryable: boolean; details: Record<string, unknown> };
      assert.equal(failure.code, 'report_send_failed');
      assert.equal(failure.retryable, true);
      assert.equal(failure.details.server, `smtp://127.0.0.1:${port}`);
      assert.ok(!JSON.stringify(failure.details).includes('s3cret') && !failure.message.includes('s3cret'));
      return true;
    },
  );
});

// ---------------------------------------------------------------------------------------------
// Without SMTP: a file

test('without SMTP the same message is written as an .eml file named by the run, and its path logged', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'ledgerbox-report-'));
  try {
    const reports = join(directory, 'nested', 'reports');
    const { logger, lines } = capturingLogger();
    const rendered = renderReport(dirtyReport());
    const result = await deliverReport(rendered, { runId: '42', to: ['ops@ledgerbox.test'], directory: reports, logger });
    const path = join(reports, 'reconciliation-42.eml');
    assert.deepEqual(result, { path });
    const raw = await readFile(path, 'utf8');
    assert.ok(raw.includes('\r\n'), 'RFC 822 line endings');
    const message = readMessage(raw);
    assert.equal(message.headers.get('to'), 'ops@ledgerbox.test');
    assert.equal(message.headers.get('message-id'), '<reconciliation-42@localhost>');
    assertSameReport(message, rendered);
    assert.equal(lines.find((line) => line.msg === 'reconciliation report written to a file (SMTP_URL is not set)')?.path, path);

    // Delivered again (a retried job): the same file, nothing else left behind.
    await deliverReport(rendered, { runId: '42', directory: reports, logger });
    assert.deepEqual(await readdir(reports), ['reconciliation-42.eml']);
    assert.equal(readMessage(await readFile(path, 'utf8')).subject, rendered.subject);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

test('the file goes to LEDGERBOX_REPORT_DIR when no directory is given', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'ledgerbox-report-env-'));
  const previous = process.env.LEDGERBOX_REPORT_DIR;
  process.env.LEDGERBOX_REPORT_DIR = directory;
  try {
    const { logger } = capturingLogger();
    assert.deepEqual(await deliverReport(renderReport(cleanReport()), { runId: '43', logger }), { path: join(directory, 'reconciliation-43.eml') });
  } finally {
    if (previous === undefined) delete process.env.LEDGERBOX_REPORT_DIR;
    else process.env.LEDGERBOX_REPORT_DIR = previous;
    await rm(directory, { recursive: true, force: true });
  }
});

test('a file that cannot be written fails with report_send_failed', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'ledgerbox-report-blocked-'));
  try {
    const { logger } = capturingLogger();
    // A directory where the .eml should go: rename onto it fails.
    await mkdir(join(directory, 'reconciliation-42.eml'));
    await assert.rejects(deliverReport(renderReport(cleanReport()), { runId: '42', directory, logger }), {
      code: 'report_send_failed',
      details: { runId: '42', path: join(directory, 'reconciliation-42.eml') },
    });
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Options

test('unusable delivery options are refused with invalid_input before anything is sent', async () => {
  const { logger } = capturingLogger();
  const rendered = renderReport(cleanReport());
  await assert.rejects(deliverReport(rendered, { runId: '../../etc/passwd', directory: tmpdir(), logger }), {
    code: 'invalid_input',
    message: /options\.runId/,
  });
  await assert.rejects(deliverReport(rendered, { runId: '43', smtpUrl: 'smtp://127.0.0.1:1', logger }), {
    code: 'invalid_input',
    message: /options\.to.*REPORT_TO/,
  });
  await assert.rejects(deliverReport(rendered, { runId: '43', smtpUrl: 'http://mail.ledgerbox.test', to: ['ops@ledgerbox.test'], logger }), {
    code: 'invalid_input',
    message: /smtp:\/\/ or smtps:\/\//,
  });
  await assert.rejects(deliverReport(rendered, { runId: '43', smtpUrl: 'not a url, s3cret', to: ['ops@ledgerbox.test'], logger }), (error: unknown) => {
    const failure = error as Error & { code: string; details: Record<string, unknown> };
    assert.equal(failure.code, 'invalid_input');
    assert.ok(!JSON.stringify(failure.details).includes('s3cret') && !failure.message.includes('s3cret'));
    return true;
  });
  await assert.rejects(deliverReport({ ...rendered, html: undefined } as unknown as RenderedReport, { runId: '43', logger }), {
    code: 'invalid_input',
    message: /rendered\.html/,
  });
});

test('delivery settings come from SMTP_URL, REPORT_FROM, REPORT_TO and LEDGERBOX_REPORT_DIR', () => {
  assert.deepEqual(
    reportDeliveryFromEnv({
      SMTP_URL: 'smtp://mail.ledgerbox.test:587',
      REPORT_FROM: 'ledgerbox <reports@ledgerbox.test>',
      REPORT_TO: ' ops@ledgerbox.test, cfo@ledgerbox.test ,',
      LEDGERBOX_REPORT_DIR: '/var/lib/ledgerbox/reports',
    }),
    {
      smtpUrl: 'smtp://mail.ledgerbox.test:587',
      from: 'ledgerbox <reports@ledgerbox.test>',
      to: ['ops@ledgerbox.test', 'cfo@ledgerbox.test'],
      directory: '/var/lib/ledgerbox/reports',
    },
  );
  assert.deepEqual(reportDeliveryFromEnv({ SMTP_URL: '', REPORT_TO: '' }), { smtpUrl: undefined, from: undefined, to: undefined, directory: undefined });
});
