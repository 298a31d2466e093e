import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { SMTPServer } from 'smtp-server';
import { createAccount, postTransfer, startWorker } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();

// a real SMTP server: refuses the first message (a flaky relay), accepts the rest
const received: string[] = [];
let refusals = 1;
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  onData(stream, _session, callback) {
    let raw = '';
    stream.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    stream.on('end', () => {
      if (refusals > 0) {
        refusals -= 1;
        const error = Object.assign(new Error('try again later'), { responseCode: 451 });
        return callback(error);
      }
      received.push(raw);
      callback();
    });
  },
});
smtp.listen(0, '127.0.0.1');
await once(smtp.server, 'listening');
const port = (smtp.server.address() as AddressInfo).port;
db.onClose(() => new Promise<void>((resolve) => smtp.close(() => resolve())));

const worker = await startWorker({
  connectionString: db.connectionString,
  pollInterval_ms: 50,
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
  reconciliation: { at: '02:00', report: { smtpUrl: `smtp://127.0.0.1:${port}`, from: 'ledgerbox@example.test', to: ['finance@example.test'] } },
});
db.onClose(() => worker.stop());

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'zoe', currency: 'USD' });
await postTransfer(db.pool, { key: 'seed', legs: [{ from: 'world', to: 'zoe', amount: usd(12_345n) }] });

/** What graphile-worker's crontab enqueues at 02:00 UTC, twice: a redelivery, or a second worker's backfill. */
async function cronFires(ts: string): Promise<void> {
  await db.pool.query(`select graphile_worker.add_job('ledgerbox:reconcile', json_build_object('_cron', json_build_object('ts', $1::text)))`, [ts]);
}

test('the nightly run reconciles once per night, stores its report, and emails it even through a refused first send', async () => {
  await cronFires('2026-11-20T02:00:00.000Z');
  const run = await waitFor(
    'the report to be sent',
    async () => {
      const { rows } = await db.pool.query(
        `select id, status, night::text, report_subject, report_text is not null as stored, report_sent_at is not null as sent
         from ledgerbox.reconciliation_runs where night = '2026-11-20'`,
      );
      return rows[0]?.sent ? rows[0] : undefined;
    },
    30_000,
  );
  assert.equal(run.status, 'clean');
  assert.equal(run.stored, true);
  assert.equal(received.length, 1, 'sent once, after the refused attempt was retried');
  const message = received[0]!;
  assert.match(message, /^Subject: .*reconciliation/im);
  assert.match(message, /^To: finance@example\.test/im);
  assert.match(message, /Content-Type: text\/plain/i);
  assert.match(message, /Content-Type: text\/html/i);

  // the same night again: no second run, no second email
  await cronFires('2026-11-20T02:00:00.000Z');
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const runs = await db.pool.query(`select count(*)::int as n from ledgerbox.reconciliation_runs where night = '2026-11-20'`);
  assert.equal(runs.rows[0].n, 1);
  assert.equal(received.length, 1);
});
