import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { object, string } from 'superstruct';
import {
  closeInvestigation,
  defineTask,
  deliverAlerts,
  enqueue,
  listOpenInvestigations,
  recordAlert,
  startWorker,
  type DeliverAlertsOptions,
  type DeliveryCounts,
  type SlackMessage,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { capturingLogger } from './support/logs.ts';
import { waitFor } from './support/wait.ts';

// Alerts by urgency, against real webhooks: local HTTP servers that record the JSON they get.
// critical → on-call, warning → ops + an investigation, info → the log; the same alert stays
// quiet while its investigation is open; a failing webhook loses nothing.

const db = await useTestDatabase();

interface Webhook {
  url: string;
  /** Every JSON body received, including those answered with an error. */
  received: SlackMessage[];
  /** Answer with this status (200 by default). */
  status: number;
  /** Never answer (until the server closes). */
  hang: boolean;
  /** Wait this long before answering, so deliverers overlap. */
  delay_ms: number;
}

const servers: { close: () => Promise<void> }[] = [];

async function startWebhook(): Promise<Webhook> {
  const webhook: Webhook = { url: '', received: [], status: 200, hang: false, delay_ms: 0 };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      assert.equal(request.method, 'POST');
      assert.equal(request.headers['content-type'], 'application/json');
      webhook.received.push(JSON.parse(body) as SlackMessage);
      if (webhook.hang) return;
      const status = webhook.status;
      setTimeout(() => response.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'internal_error'), webhook.delay_ms);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  webhook.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/secret-token`;
  servers.push({
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  });
  return webhook;
}

after(async () => {
  for (const server of servers) await server.close();
});

const oncall = await startWebhook();
const ops = await startWebhook();

// every log line, parsed
const { logger, lines } = capturingLogger();


const deliver = (options: Partial<DeliverAlertsOptions> = {}): Promise<DeliveryCounts> =>
  deliverAlerts(db.pool, { oncallWebhookUrl: oncall.url, opsWebhookUrl: ops.url, logger, ...options });

const none: DeliveryCounts = { sent: 0, logged: 0, suppressed: 0, noChannel: 0, failed: 0 };

async function deliveryOf(alertId: string): Promise<{ channel: string; outcome: string }[]> {
  const { rows } = await db.pool.query('select channel, outcome from ledgerbox.alert_deliveries where alert_id = $1', [alertId]);
  return rows;
}

async function openInvestigation(dedupeKey: string) {
  return (await listOpenInvestigations(db.pool)).find((investigation) => investigation.dedupeKey === dedupeKey);
}

/** The value of a `*Label*\nvalue` field of a message's fields section. */
function fieldOf(message: SlackMessage, label: string): string | undefined {
  for (const block of message.blocks) {
    if (!('fields' in block)) continue;
    const found = block.fields.find((field) => field.text.startsWith(`*${label}*\n`));
    if (found !== undefined) return found.text.slice(label.length + 3);
  }
  return undefined;
}

async function workflow(key: string): Promise<string> {
  const { rows } = await db.pool.query(
    `insert into ledgerbox.workflows (kind, key, current_step) values ('exchange', $1, 'lock_rate') returning id::text as id`,
    [key],
  );
  return rows[0].id;
}

test('a critical alert pages on-call only, as a Slack-compatible message, and opens an incident', async () => {
  const workflowId = await workflow('alerts-critical');
  const alert = await recordAlert(db.pool, {
    severity: 'critical',
    kind: 'workflow_failed',
    workflowId,
    message: 'exchange alerts-critical failed at settle: <!channel> ledger unreachable',
    details: { step: 'settle', amount: '500' },
  });
  assert.equal(alert.dedupeKey, `workflow_failed:${workflowId}`, 'no key given: kind and workflow');

  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  assert.equal(ops.received.length, 0);
  assert.equal(oncall.received.length, 1);
  const message = oncall.received[0]!;
  assert.equal(message.text, 'CRITICAL: workflow_failed: exchange alerts-critical failed at settle: &lt;!channel&gt; ledger unreachable');
  assert.deepEqual(message.blocks[0], { type: 'header', text: { type: 'plain_text', text: 'CRITICAL: workflow_failed' } });
  assert.deepEqual(message.blocks[1], { type: 'section', text: { type: 'plain_text', text: 'exchange alerts-critical failed at settle: <!channel> ledger unreachable' } });
  assert.equal(fieldOf(message, 'Severity'), 'critical');
  assert.equal(fieldOf(message, 'Kind'), 'workflow_failed');
  assert.equal(fieldOf(message, 'Workflow'), workflowId);
  assert.equal(fieldOf(message, 'Alert id'), alert.id);
  assert.equal(fieldOf(message, 'Dedupe key'), `workflow_failed:${workflowId}`);
  const incident = await openInvestigation(alert.dedupeKey);
  assert.equal(incident?.severity, 'critical');
  assert.equal(fieldOf(message, 'Incident'), incident?.id);
  // the details, in a code block; mrkdwn text from the database cannot mention or link
  const rendered = JSON.stringify(message.blocks);
  assert.match(rendered, /\\"amount\\": \\"500\\"/);
  assert.match(rendered, new RegExp(`npx ledgerbox workflow show ${workflowId}`));
  assert.deepEqual(await deliveryOf(alert.id), [{ channel: 'oncall', outcome: 'sent' }]);

  // a host's critical alert that names no workflow and no key: each is an alert of its own (not
  // job_failed, which ledgerbox raises itself, as a warning: docs/severities.md)
  const first = await recordAlert(db.pool, { severity: 'critical', kind: 'payout_unsettled', message: 'payout 1 (shop.payout) unsettled at the bank' });
  const second = await recordAlert(db.pool, { severity: 'critical', kind: 'payout_unsettled', message: 'payout 2 (shop.payout) unsettled at the bank' });
  assert.equal(first.dedupeKey, `payout_unsettled:alert:${first.id}`);
  assert.deepEqual(await deliver(), { ...none, sent: 2 });
  assert.equal(oncall.received.length, 3);
  assert.equal(ops.received.length, 0);
  assert.deepEqual(await deliveryOf(second.id), [{ channel: 'oncall', outcome: 'sent' }]);
});

test('a warning goes to the ops channel and opens an investigation', async () => {
  const before = oncall.received.length;
  const alert = await recordAlert(db.pool, {
    severity: 'warning',
    kind: 'reconciliation_money_in_limbo',
    message: 'hold 42 (ana:USD → shop:USD, 500 USD) pending 3 days past its expiry',
    dedupeKey: 'reconciliation:money_in_limbo:hold:42',
  });
  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  assert.equal(oncall.received.length, before);
  assert.equal(ops.received.length, 1);
  const message = ops.received[0]!;
  assert.equal(message.text, 'Warning: reconciliation_money_in_limbo: hold 42 (ana:USD → shop:USD, 500 USD) pending 3 days past its expiry');
  assert.equal(fieldOf(message, 'Severity'), 'warning');
  assert.equal(fieldOf(message, 'Workflow'), '-');
  assert.equal(fieldOf(message, 'Dedupe key'), 'reconciliation:money_in_limbo:hold:42');

  const investigation = await openInvestigation('reconciliation:money_in_limbo:hold:42');
  assert.ok(investigation, 'an investigation is open');
  assert.equal(investigation.severity, 'warning');
  assert.equal(investigation.title, 'hold 42 (ana:USD → shop:USD, 500 USD) pending 3 days past its expiry');
  assert.equal(investigation.closedAt, null);
  assert.equal(investigation.suppressedAlerts, 0);
  assert.equal(fieldOf(message, 'Investigation'), investigation.id);
  assert.deepEqual(await deliveryOf(alert.id), [{ channel: 'ops', outcome: 'sent' }]);
});

test('an info alert is logged through pino and sent nowhere', async () => {
  const [oncallBefore, opsBefore] = [oncall.received.length, ops.received.length];
  const alert = await recordAlert(db.pool, {
    severity: 'info',
    kind: 'money_moved',
    message: 'batch 7: 1 204 transfers, 38 210.55 USD moved',
    details: { batch: '7' },
  });
  assert.deepEqual(await deliver(), { ...none, logged: 1 });
  assert.equal(oncall.received.length, oncallBefore);
  assert.equal(ops.received.length, opsBefore);
  const line = lines.find((logged) => logged.alertId === alert.id);
  assert.ok(line, 'the alert is in the log');
  assert.equal(line.level, 30);
  assert.equal(line.msg, 'batch 7: 1 204 transfers, 38 210.55 USD moved');
  assert.equal(line.kind, 'money_moved');
  assert.deepEqual(line.details, { batch: '7' });
  assert.deepEqual(await deliveryOf(alert.id), [{ channel: 'log', outcome: 'logged' }]);
  assert.equal(await openInvestigation(alert.dedupeKey), undefined, 'info opens nothing');
});

test('the same warning is sent once while its investigation is open, and again after it is closed', async () => {
  const before = ops.received.length;
  const raise = () =>
    recordAlert(db.pool, { severity: 'warning', kind: 'stuck_workflow', message: 'exchange x stuck at compliance for 2 h', dedupeKey: 'stuck:x' });
  const first = await raise();
  const second = await raise();
  assert.deepEqual(await deliver(), { ...none, sent: 1, suppressed: 1 });
  assert.equal(ops.received.length, before + 1);
  assert.deepEqual(await deliveryOf(first.id), [{ channel: 'ops', outcome: 'sent' }]);
  assert.deepEqual(await deliveryOf(second.id), [{ channel: 'ops', outcome: 'suppressed_duplicate' }]);

  // the next night's reconciliation finds it again: still quiet
  await raise();
  assert.deepEqual(await deliver(), { ...none, suppressed: 1 });
  const open = await openInvestigation('stuck:x');
  assert.ok(open);
  assert.equal(open.suppressedAlerts, 2);

  const closed = await closeInvestigation(db.pool, { id: open.id, resolution: 'compliance provider back; exchange resumed (INC-7)' });
  assert.equal(closed.id, open.id);
  assert.ok(closed.closedAt instanceof Date);
  assert.equal(closed.closedBy, 'postgres', 'the database user by default');
  assert.equal(closed.resolution, 'compliance provider back; exchange resumed (INC-7)');
  assert.equal(closed.suppressedAlerts, 2);
  assert.equal(await openInvestigation('stuck:x'), undefined);

  // it happens again after the fix: that is news
  const again = await raise();
  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  assert.equal(ops.received.length, before + 2);
  assert.deepEqual(await deliveryOf(again.id), [{ channel: 'ops', outcome: 'sent' }]);
  const reopened = await openInvestigation('stuck:x');
  assert.ok(reopened);
  assert.notEqual(reopened.id, open.id);

  await assert.rejects(closeInvestigation(db.pool, { id: open.id, resolution: 'twice' }), {
    code: 'investigation_already_closed',
    message: /already closed by postgres .*: compliance provider back/,
  });
  await assert.rejects(closeInvestigation(db.pool, { id: '999999', resolution: 'what?' }), { code: 'investigation_not_found', message: 'No investigation 999999' });
  await closeInvestigation(db.pool, { id: reopened.id, resolution: 'fixed for good', closedBy: 'ana@ops' });
  const { rows } = await db.pool.query('select closed_by from ledgerbox.investigations where id = $1', [reopened.id]);
  assert.equal(rows[0].closed_by, 'ana@ops');
});

test('a critical alert under an open warning investigation escalates to on-call; the incident then keeps both quiet', async () => {
  const [oncallBefore, opsBefore] = [oncall.received.length, ops.received.length];
  const key = 'reconciliation:statement:bank-1:USD';
  await recordAlert(db.pool, { severity: 'warning', kind: 'reconciliation_statement_difference_within_tolerance', message: 'bank-1 USD off by 3 cents', dedupeKey: key });
  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  const warning = await openInvestigation(key);
  assert.equal(warning?.severity, 'warning');

  await recordAlert(db.pool, { severity: 'critical', kind: 'reconciliation_statement_difference', message: 'bank-1 USD off by 4 000.00', dedupeKey: key });
  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  assert.equal(oncall.received.length, oncallBefore + 1, 'an escalation pages');
  const incident = await openInvestigation(key);
  assert.equal(incident?.severity, 'critical');
  const { rows } = await db.pool.query('select closed_by, resolution from ledgerbox.investigations where id = $1', [warning!.id]);
  assert.equal(rows[0].closed_by, 'ledgerbox');
  assert.match(rows[0].resolution, /^escalated: critical alert \d+ opened an incident$/);

  await recordAlert(db.pool, { severity: 'critical', kind: 'reconciliation_statement_difference', message: 'bank-1 USD still off', dedupeKey: key });
  await recordAlert(db.pool, { severity: 'warning', kind: 'reconciliation_statement_difference_within_tolerance', message: 'bank-1 USD off by 1 cent', dedupeKey: key });
  assert.deepEqual(await deliver(), { ...none, suppressed: 2 });
  assert.equal(oncall.received.length, oncallBefore + 1);
  assert.equal(ops.received.length, opsBefore + 1);
  await closeInvestigation(db.pool, { id: incident!.id, resolution: 'statement re-imported' });
});

test('a webhook that fails records no delivery, does not hold up the others, and is retried once it recovers', async () => {
  const [oncallBefore, opsBefore] = [oncall.received.length, ops.received.length];
  ops.status = 500;
  const warning = await recordAlert(db.pool, { severity: 'warning', kind: 'clearing_not_zero', message: 'payout clearing at 120 USD for 2 days', dedupeKey: 'clearing:payout:USD' });
  const critical = await recordAlert(db.pool, { severity: 'critical', kind: 'balance_drift', message: 'ana:USD cached 10 000, entries say 9 000', dedupeKey: 'drift:ana:USD' });
  assert.deepEqual(await deliver(), { ...none, sent: 1, failed: 1 });
  assert.equal(ops.received.length, opsBefore + 1, 'the ops webhook was tried');
  assert.equal(oncall.received.length, oncallBefore + 1, 'the critical behind it still went out');
  assert.deepEqual(await deliveryOf(warning.id), []);
  assert.equal(await openInvestigation('clearing:payout:USD'), undefined, 'the investigation it opened was rolled back');
  const failure = lines.find((line) => line.alertId === warning.id && line.level === 50);
  assert.ok(failure, 'the failure is logged as an error');
  assert.equal(failure.status, 500);
  assert.match(String(failure.msg), /alert webhook failed, the alert will be tried again: HTTP 500: internal_error/);
  assert.ok(!JSON.stringify(lines).includes('secret-token'), 'a webhook URL is a credential: never logged');

  // still down: tried again, still nothing recorded
  assert.deepEqual(await deliver(), { ...none, failed: 1 });
  ops.status = 200;
  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  assert.equal(ops.received.length, opsBefore + 3);
  assert.equal(ops.received.at(-1)?.text, 'Warning: clearing_not_zero: payout clearing at 120 USD for 2 days');
  assert.deepEqual(await deliveryOf(warning.id), [{ channel: 'ops', outcome: 'sent' }]);
  assert.deepEqual(await deliveryOf(critical.id), [{ channel: 'oncall', outcome: 'sent' }]);
  assert.equal(await deliver().then((counts) => counts.sent), 0, 'each alert once');
});

test('a webhook that does not answer times out after webhookTimeout_ms, and the alert is retried', async () => {
  ops.hang = true;
  const alert = await recordAlert(db.pool, { severity: 'warning', kind: 'failed_job', message: 'job 9 failed for good', dedupeKey: 'failed_job:9' });
  const started_ms = Date.now();
  assert.deepEqual(await deliver({ webhookTimeout_ms: 200 }), { ...none, failed: 1 });
  const took_ms = Date.now() - started_ms;
  assert.ok(took_ms >= 190 && took_ms < 3_000, `gave up after ${took_ms} ms`);
  const failure = lines.find((line) => line.alertId === alert.id && line.level === 50);
  assert.match(String(failure?.reason), /no answer within 200 ms/);
  assert.deepEqual(await deliveryOf(alert.id), []);
  ops.hang = false;
  assert.deepEqual(await deliver(), { ...none, sent: 1 });
  assert.deepEqual(await deliveryOf(alert.id), [{ channel: 'ops', outcome: 'sent' }]);
});

test('deliverers running at once deliver each alert exactly once', async () => {
  const [oncallBefore, opsBefore] = [oncall.received.length, ops.received.length];
  oncall.delay_ms = 5;
  ops.delay_ms = 5;
  const raised: string[] = [];
  for (let index = 0; index < 30; index++) {
    raised.push((await recordAlert(db.pool, { severity: 'critical', kind: 'balance_drift', message: `drift ${index}`, dedupeKey: `race:critical:${index}` })).id);
  }
  for (let index = 0; index < 10; index++) {
    raised.push((await recordAlert(db.pool, { severity: 'warning', kind: 'stuck_workflow', message: `stuck ${index}`, dedupeKey: `race:warning:${index}` })).id);
  }
  for (let index = 0; index < 5; index++) {
    raised.push((await recordAlert(db.pool, { severity: 'warning', kind: 'money_in_limbo', message: `limbo again ${index}`, dedupeKey: 'race:shared' })).id);
    raised.push((await recordAlert(db.pool, { severity: 'info', kind: 'money_moved', message: `moved ${index}` })).id);
  }
  const results = await Promise.all([deliver(), deliver(), deliver()]);
  oncall.delay_ms = 0;
  ops.delay_ms = 0;
  const total = results.reduce((sum, counts) => ({
    sent: sum.sent + counts.sent,
    logged: sum.logged + counts.logged,
    suppressed: sum.suppressed + counts.suppressed,
    noChannel: sum.noChannel + counts.noChannel,
    failed: sum.failed + counts.failed,
  }));
  assert.deepEqual(total, { ...none, sent: 41, suppressed: 4, logged: 5 });
  assert.ok(results.filter((counts) => counts.sent > 0).length >= 2, `the deliverers shared the work: ${JSON.stringify(results)}`);

  const pagedIds = oncall.received.slice(oncallBefore).map((message) => fieldOf(message, 'Alert id'));
  assert.equal(pagedIds.length, 30);
  assert.equal(new Set(pagedIds).size, 30, 'no critical paged twice');
  const opsMessages = ops.received.slice(opsBefore);
  assert.equal(opsMessages.length, 11);
  assert.equal(opsMessages.filter((message) => fieldOf(message, 'Dedupe key') === 'race:shared').length, 1);
  assert.equal((await openInvestigation('race:shared'))?.suppressedAlerts, 4);
  const { rows } = await db.pool.query(
    `select count(*)::int as alerts, count(d.alert_id)::int as delivered from ledgerbox.alerts a
     left join ledgerbox.alert_deliveries d on d.alert_id = a.id where a.id = any($1::bigint[])`,
    [raised],
  );
  assert.deepEqual(rows[0], { alerts: 50, delivered: 50 });
});

test('with no webhook configured, criticals and warnings are recorded as no_channel and logged', async () => {
  const [oncallBefore, opsBefore] = [oncall.received.length, ops.received.length];
  const critical = await recordAlert(db.pool, { severity: 'critical', kind: 'unbalanced_transfer', message: 'transfer t-1 does not sum to zero', dedupeKey: 'unbalanced:t-1' });
  const warning = await recordAlert(db.pool, { severity: 'warning', kind: 'stuck_workflow', message: 'exchange y stuck', dedupeKey: 'stuck:y' });
  assert.deepEqual(await deliverAlerts(db.pool, { logger }), { ...none, noChannel: 2 });
  assert.equal(oncall.received.length, oncallBefore);
  assert.equal(ops.received.length, opsBefore);
  assert.deepEqual(await deliveryOf(critical.id), [{ channel: 'oncall', outcome: 'no_channel' }]);
  assert.deepEqual(await deliveryOf(warning.id), [{ channel: 'ops', outcome: 'no_channel' }]);
  const criticalLine = lines.find((line) => line.alertId === critical.id);
  assert.equal(criticalLine?.level, 50);
  assert.match(String(criticalLine?.msg), /no oncall webhook configured \(LEDGERBOX_ONCALL_WEBHOOK_URL\): transfer t-1 does not sum to zero/);
  assert.equal(lines.find((line) => line.alertId === warning.id)?.level, 40);
  // the investigation is opened all the same: operators see it, and it is not logged again
  assert.equal((await openInvestigation('stuck:y'))?.severity, 'warning');
  await recordAlert(db.pool, { severity: 'warning', kind: 'stuck_workflow', message: 'exchange y stuck', dedupeKey: 'stuck:y' });
  assert.deepEqual(await deliverAlerts(db.pool, { logger }), { ...none, suppressed: 1 });
  // the limit bounds one call
  await recordAlert(db.pool, { severity: 'info', kind: 'note', message: 'one' });
  await recordAlert(db.pool, { severity: 'info', kind: 'note', message: 'two' });
  assert.deepEqual(await deliverAlerts(db.pool, { logger, limit: 1 }), { ...none, logged: 1 });
  assert.deepEqual(await deliverAlerts(db.pool, { logger, limit: 1 }), { ...none, logged: 1 });
});

test('recordAlert joins the caller’s transaction, and asks a worker to deliver it', async () => {
  const count = async (query: string) => (await db.pool.query(query)).rows[0].n as number;
  const alertsBefore = await count('select count(*)::int as n from ledgerbox.alerts');
  await db.pool.query(`delete from graphile_worker._private_jobs where key = 'ledgerbox:deliver_alerts'`);
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await recordAlert(client, { severity: 'critical', kind: 'rolled_back', message: 'never happened' });
    await client.query('rollback');
    assert.equal(await count('select count(*)::int as n from ledgerbox.alerts'), alertsBefore);
    assert.equal(await count(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ledgerbox:deliver_alerts'`), 0);

    await client.query('begin');
    await recordAlert(client, { severity: 'warning', kind: 'kept', message: 'first' });
    // an unknown workflow is refused; the caller's transaction is still usable
    await assert.rejects(recordAlert(client, { severity: 'critical', kind: 'workflow_failed', message: 'x', workflowId: '00000000-0000-4000-8000-000000000000' }), {
      code: 'workflow_not_found',
    });
    await recordAlert(client, { severity: 'info', kind: 'kept', message: 'second' });
    await client.query('commit');
  } finally {
    client.release();
  }
  assert.equal(await count('select count(*)::int as n from ledgerbox.alerts'), alertsBefore + 2);
  assert.equal(
    await count(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ledgerbox:deliver_alerts' and key = 'ledgerbox:deliver_alerts'`),
    1,
    'alerts recorded together share one delivery job',
  );
  assert.deepEqual(await deliver(), { ...none, sent: 1, logged: 1 });
});

test('the application role can record and deliver alerts and close investigations', async () => {
  const client = await db.pool.connect();
  try {
    await client.query('set role ledgerbox_app');
    const alert = await recordAlert(client, { severity: 'warning', kind: 'as_app_role', message: 'raised by the service', dedupeKey: 'app-role' });
    assert.deepEqual(await deliverAlerts(client, { oncallWebhookUrl: oncall.url, opsWebhookUrl: ops.url, logger }), { ...none, sent: 1 });
    assert.deepEqual(await deliveryOf(alert.id), [{ channel: 'ops', outcome: 'sent' }]);
    const [open] = (await listOpenInvestigations(client)).filter((investigation) => investigation.dedupeKey === 'app-role');
    assert.ok(open);
    const closed = await closeInvestigation(client, { id: open.id, resolution: 'handled' });
    assert.equal(closed.closedBy, 'ledgerbox_app');
  } finally {
    await client.query('reset role');
    client.release();
  }
});

test('invalid inputs are refused with invalid_input, naming the field, before anything is written', async () => {
  const alertsBefore = (await db.pool.query('select count(*)::int as n from ledgerbox.alerts')).rows[0].n;
  const valid = { severity: 'warning', kind: 'stuck_workflow', message: 'm' } as const;
  const badAlerts: [unknown, RegExp][] = [
    [{ ...valid, severity: 'urgent' }, /alert\.severity/],
    [{ ...valid, kind: 'Stuck Workflow' }, /alert\.kind.*lower-case name like `workflow_failed`, got "Stuck Workflow"/],
    [{ ...valid, kind: '' }, /alert\.kind/],
    [{ ...valid, message: '   ' }, /alert\.message.*must not be blank/],
    [{ ...valid, message: 'x'.repeat(4_001) }, /alert\.message/],
    [{ ...valid, details: ['a'] }, /alert\.details/],
    [{ ...valid, details: { amount: 5n } }, /alert\.details/],
    [{ ...valid, workflowId: 'wf-1' }, /alert\.workflowId/],
    [{ ...valid, dedupeKey: ' padded' }, /alert\.dedupeKey.*must not start or end with spaces/],
    [{ ...valid, dedupeKey: 'k'.repeat(201) }, /alert\.dedupeKey/],
    [{ ...valid, surprise: true }, /alert\.surprise/],
    [null, /alert/],
  ];
  for (const [input, message] of badAlerts) {
    await assert.rejects(recordAlert(db.pool, input as never), { code: 'invalid_input', message }, JSON.stringify(input, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
  assert.equal((await db.pool.query('select count(*)::int as n from ledgerbox.alerts')).rows[0].n, alertsBefore);

  const badOptions: [unknown, RegExp][] = [
    [{ logger, oncallWebhookUrl: 'ftp://pager.example/hook' }, /options\.oncallWebhookUrl.*expected an http\(s\) URL, got a ftp: URL/],
    [{ logger, opsWebhookUrl: 'not a url' }, /options\.opsWebhookUrl.*not a URL/],
    [{ logger, opsWebhookUrl: '' }, /options\.opsWebhookUrl/],
    [{ logger, limit: 0 }, /options\.limit/],
    [{ logger, limit: 1.5 }, /options\.limit/],
    [{ logger, limit: 1_001 }, /options\.limit/],
    [{ logger, webhookTimeout_ms: 0 }, /options\.webhookTimeout_ms/],
    [{ logger: console.log }, /options\.logger/],
    [{}, /options\.logger/],
    [{ logger, webhook: 'https://x' }, /options\.webhook/],
  ];
  for (const [options, message] of badOptions) {
    await assert.rejects(deliverAlerts(db.pool, options as never), { code: 'invalid_input', message }, JSON.stringify(options));
  }

  const badCloses: [unknown, RegExp][] = [
    [{ id: 'abc', resolution: 'r' }, /close\.id/],
    [{ id: '0', resolution: 'r' }, /close\.id/],
    [{ id: 7, resolution: 'r' }, /close\.id/],
    [{ id: '99999999999999999999', resolution: 'r' }, /close\.id/],
    [{ id: '1' }, /close\.resolution/],
    [{ id: '1', resolution: '  ' }, /close\.resolution.*must not be blank/],
    [{ id: '1', resolution: 'r', closedBy: '' }, /close\.closedBy/],
  ];
  for (const [input, message] of badCloses) {
    await assert.rejects(closeInvestigation(db.pool, input as never), { code: 'invalid_input', message }, JSON.stringify(input));
  }
  await assert.rejects(listOpenInvestigations(db.pool, { limit: 0 }), { code: 'invalid_input', message: /options\.limit/ });
  await assert.rejects(listOpenInvestigations(db.pool, { limit: 1_001 }), { code: 'invalid_input', message: /options\.limit/ });
});

// Last: a running worker takes every undelivered alert, which would race the tests above.
test('the worker delivers alerts soon after they are recorded, and when a host job fails for good', async () => {
  const oncallBefore = oncall.received.length;
  const payouts = defineTask('shop.payout', object({ payoutId: string() }), { maxAttempts: 1 });
  const worker = await startWorker({
    connectionString: db.connectionString,
    oncallWebhookUrl: oncall.url,
    opsWebhookUrl: ops.url,
    pollInterval_ms: 50,
    noHandleSignals: true,
    logger,
    tasks: [{ task: payouts, handler: async () => Promise.reject(new Error('bank API refused the payout')) }],
  });
  db.onClose(() => worker.stop());
  try {
    const alert = await recordAlert(db.pool, { severity: 'critical', kind: 'balance_drift', message: 'found by the nightly run', dedupeKey: 'worker:drift' });
    // recordAlert woke the worker: no waiting for the next minute
    await waitFor('the worker to page on-call', async () => ((await deliveryOf(alert.id)).length > 0 ? true : undefined), 20_000);
    assert.deepEqual(await deliveryOf(alert.id), [{ channel: 'oncall', outcome: 'sent' }]);
    assert.equal(oncall.received.length, oncallBefore + 1);
    assert.equal(fieldOf(oncall.received.at(-1)!, 'Alert id'), alert.id);

    await enqueue(db.pool, payouts, { payoutId: 'p-1' });
    // a host job carries no money: a warning for the ops channel, not a page (docs/severities.md)
    const posted = await waitFor('the failed job to reach the ops channel', async () =>
      ops.received.find((message) => fieldOf(message, 'Kind') === 'job_failed' && message.text.includes('bank API refused')),
    10_000);
    assert.match(posted.text, /^Warning: job_failed: Job \d+ \(shop\.payout\) failed for good after 1 attempts: bank API refused the payout$/);
    assert.equal(oncall.received.filter((message) => fieldOf(message, 'Kind') === 'job_failed' && message.text.includes('bank API refused')).length, 0);
  } finally {
    await worker.stop();
  }
  await assert.rejects(startWorker({ connectionString: db.connectionString, oncallWebhookUrl: 'pager', noHandleSignals: true }), {
    code: 'invalid_input',
    message: /oncallWebhookUrl/,
  });
});
