import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  createAccount,
  fxClearingAccount,
  getBalance,
  getExchange,
  postTransfer,
  startExchange,
  startWorker,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
const fx = new FakeFxRateProvider({ rates: { 'USD/EUR': { amount: 9213n, scale: 4 } } });
const compliance = new FakeComplianceProvider({ declinedAccounts: ['sanctioned:USD'] });
const worker = await startWorker({
  connectionString: db.connectionString,
  providers: { fx, compliance },
  pollInterval_ms: 50,
  retry: { base_ms: 20, max_ms: 200 },
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
});
db.onClose(() => worker.stop());

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });

async function customer(name: string, dollars: bigint) {
  await createAccount(db.pool, { key: `${name}:USD`, currency: 'USD' });
  await createAccount(db.pool, { key: `${name}:EUR`, currency: 'EUR' });
  await postTransfer(db.pool, { key: `fund:${name}`, legs: [{ from: 'world:USD', to: `${name}:USD`, amount: usd(dollars) }] });
}

const posted = async (key: string) => minor((await getBalance(db.pool, key)).posted);
const finished = (id: string) =>
  waitFor(`exchange ${id} to finish`, async () => {
    const exchange = await getExchange(db.pool, id);
    return ['completed', 'compensated', 'compensation_failed'].includes(exchange.status) ? exchange : undefined;
  });

test('an exchange locks a rate once, checks compliance once, settles both currencies through FX clearing, and notifies', async () => {
  await customer('ann', 500_00n);
  const started = await startExchange(db.pool, { key: 'ex-ann-1', from: 'ann:USD', to: 'ann:EUR', amount: usd(123_45n) });
  assert.equal(started.replayed, false);
  // reserved at once: the hold counts against what ann can still spend
  assert.equal(minor((await getBalance(db.pool, 'ann:USD')).available), 500_00n - 123_45n);

  const exchange = await finished(started.exchangeId);
  assert.equal(exchange.status, 'completed');
  // 123.45 USD × 0.9213 = 113.734485 EUR, half-even to the cent: 113.73
  assert.equal(minor(exchange.targetAmount!), 113_73n);
  assert.equal(exchange.quote!.rate.amount, 9213n);
  assert.equal(await posted('ann:USD'), 500_00n - 123_45n);
  assert.equal(await posted('ann:EUR'), 113_73n);
  assert.equal(await posted(fxClearingAccount('USD', 'ex-ann-1')), 123_45n);
  assert.equal(await posted(fxClearingAccount('EUR', 'ex-ann-1')), -113_73n);
  assert.match(fxClearingAccount('USD', 'ex-ann-1'), /^ledgerbox:fx:USD:[0-7]$/);
  assert.equal(fx.executions.get(`${started.exchangeId}:lock_rate`), 1);
  assert.equal(compliance.executions.get(`${started.exchangeId}:compliance`), 1);

  const steps = await db.pool.query(`select step, outcome from ledgerbox.step_attempts where workflow_id = $1 order by id`, [started.exchangeId]);
  assert.deepEqual(steps.rows.map((row) => `${row.step}:${row.outcome}`), ['lock_rate:succeeded', 'compliance:succeeded', 'settle:succeeded', 'notify:succeeded']);
  const notified = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ledgerbox:exchange_settled'`);
  assert.equal(notified.rows[0].n, 1);
  // one balanced transfer settles both currencies
  const settlement = await db.pool.query(
    `select currency, sum(amount)::text as total, count(*)::int as entries from ledgerbox.entries where transfer_id = $1 group by currency order by currency`,
    [exchange.settlementId],
  );
  assert.deepEqual(settlement.rows, [
    { currency: 'EUR', total: '0', entries: 2 },
    { currency: 'USD', total: '0', entries: 2 },
  ]);
});

test('a declined exchange is compensated: the hold is voided and the source balance restored exactly', async () => {
  await customer('sanctioned', 50_00n);
  const started = await startExchange(db.pool, { key: 'ex-sanctioned', from: 'sanctioned:USD', to: 'sanctioned:EUR', amount: usd(10_00n) });
  const exchange = await finished(started.exchangeId);
  assert.equal(exchange.status, 'compensated');
  assert.match(exchange.failureReason!, /compliance declined/);
  const balance = await getBalance(db.pool, 'sanctioned:USD');
  assert.equal(minor(balance.posted), 50_00n);
  assert.equal(minor(balance.available), 50_00n);
  const alerts = await db.pool.query(`select severity, kind from ledgerbox.alerts where workflow_id = $1`, [started.exchangeId]);
  assert.deepEqual(alerts.rows, [{ severity: 'warning', kind: 'workflow_declined' }]);
});
