import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { dinero, EUR, GBP, USD } from 'dinero.js/bigint';
import {
  createAccount,
  fxClearingAccount,
  fxClearingShards,
  postTransfer,
  startExchange,
  startWorker,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';
import { useTestDatabase } from './support/database.ts';
import { seededRandom } from './support/random.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();
const random = seededRandom('1,000 exchanges');
const exchanges = 1_000;
const currencies = { USD, EUR, GBP } as const;
type Code = keyof typeof currencies;
const customers = ['ada', 'bo', 'cy', 'declined'];

const fx = new FakeFxRateProvider({ rates: demoRates, faults: { failRate: 0.1, timeoutRate: 0.1, slowRate: 0.05, slow_ms: 30, seed: random.seed } });
const compliance = new FakeComplianceProvider({
  declinedAccounts: ['declined:USD', 'declined:EUR', 'declined:GBP'],
  faults: { failRate: 0.1, timeoutRate: 0.1, slowRate: 0.05, slow_ms: 30, seed: random.seed + 1 },
});
const worker = await startWorker({
  connectionString: db.connectionString,
  providers: { fx, compliance },
  concurrency: 8,
  // jobs fetched 9 at a time into this process's queue, locked by its pool's id (as the demo runs)
  localQueueSize: 9,
  pollInterval_ms: 50,
  retry: { base_ms: 5, max_ms: 50 },
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
});
db.onClose(() => worker.stop());

test('1,000 concurrent exchanges across a few accounts with random faults: each completes or is compensated, and the books balance', async () => {
  for (const code of Object.keys(currencies) as Code[]) {
    await createAccount(db.pool, { key: `world:${code}`, currency: code, allowNegative: true });
    for (const name of customers) {
      await createAccount(db.pool, { key: `${name}:${code}`, currency: code });
      await postTransfer(db.pool, {
        key: `fund:${name}:${code}`,
        legs: [{ from: `world:${code}`, to: `${name}:${code}`, amount: dinero({ amount: 1_000_000_00n, currency: currencies[code] }) }],
      });
    }
  }

  const clients = new pg.Pool({ connectionString: db.connectionString, max: 16 });
  const codes = Object.keys(currencies) as Code[];
  try {
    await Promise.all(
      Array.from({ length: exchanges }, async (_, index) => {
        const name = customers[random.int(customers.length)]!;
        const from = codes[random.int(codes.length)]!;
        let to = codes[random.int(codes.length)]!;
        while (to === from) to = codes[random.int(codes.length)]!;
        await startExchange(clients, {
          key: `load-${index}`,
          from: `${name}:${from}`,
          to: `${name}:${to}`,
          amount: dinero({ amount: BigInt(1 + random.int(500_00)), currency: currencies[from] }),
        });
      }),
    );
  } finally {
    await clients.end();
  }

  const statuses = await waitFor(
    'every exchange to finish',
    async () => {
      const { rows } = await db.pool.query(`select status, count(*)::int as n from ledgerbox.workflows group by status order by status`);
      return rows.every((row) => ['completed', 'compensated'].includes(row.status)) ? rows : undefined;
    },
    240_000,
  );
  const total = statuses.reduce((sum, row) => sum + row.n, 0);
  assert.equal(total, exchanges);
  assert.ok(statuses.some((row) => row.status === 'compensated'), 'the declined customer was compensated');

  const pendingHolds = await db.pool.query(`select count(*)::int as n from ledgerbox.holds where status = 'pending'`);
  assert.equal(pendingHolds.rows[0].n, 0, 'no hold is left pending');
  const perCurrency = await db.pool.query(`select currency, sum(amount)::text as total from ledgerbox.entries group by currency having sum(amount) <> 0`);
  assert.deepEqual(perCurrency.rows, [], 'each currency sums to zero');

  // compensated exchanges left their customer where they started; completed ones moved exactly
  // the source amount out and the converted amount in
  const expected = await db.pool.query(`
    with moves as (
      select x.source_account as account, -x.source_amount as amount from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id where w.status = 'completed'
      union all
      select x.target_account, x.target_amount from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id where w.status = 'completed'
    )
    select a.key, a.posted_balance::text as actual, (100000000 + coalesce(sum(m.amount), 0))::text as expected
    from ledgerbox.accounts a left join moves m on m.account = a.key
    where a.key like any (array['ada:%', 'bo:%', 'cy:%', 'declined:%'])
    group by a.key, a.posted_balance
    having a.posted_balance <> 100000000 + coalesce(sum(m.amount), 0)`);
  assert.deepEqual(expected.rows, []);

  // the FX clearing is spread over every shard of each currency, and each shard holds exactly
  // what its exchanges passed through it (the FX position is the sum over shards)
  const shards = await db.pool.query(`
    with moves as (
      select x.source_currency as currency, x.workflow_id, x.source_amount as amount from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id where w.status = 'completed'
      union all
      select x.target_currency, x.workflow_id, -x.target_amount from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id where w.status = 'completed'
    )
    select m.currency, w.key, m.amount::text as amount from moves m join ledgerbox.workflows w on w.id = m.workflow_id`);
  const expectedShards = new Map<string, bigint>();
  for (const row of shards.rows) {
    const account = fxClearingAccount(row.currency, row.key);
    expectedShards.set(account, (expectedShards.get(account) ?? 0n) + BigInt(row.amount));
  }
  const actualShards = await db.pool.query(`select key, posted_balance::text as posted from ledgerbox.accounts where key like 'ledgerbox:fx:%'`);
  assert.deepEqual(
    new Map(actualShards.rows.map((row) => [row.key as string, BigInt(row.posted)])),
    expectedShards,
  );
  assert.equal(actualShards.rows.filter((row) => row.key.startsWith('ledgerbox:fx:USD:')).length, fxClearingShards, 'every USD shard was used');

  // every provider did each piece of work once per exchange, however many retries there were
  assert.ok([...fx.executions.values()].every((count) => count === 1));
  assert.ok([...compliance.executions.values()].every((count) => count === 1));
  const settlements = await db.pool.query(`select count(*)::int as n from ledgerbox.exchanges where settlement_id is not null`);
  const completed = statuses.find((row) => row.status === 'completed')?.n ?? 0;
  assert.equal(settlements.rows[0].n, completed);

  // with the local queue, jobs are locked by the pool's id: no step job is left behind, and
  // every step was finished under the id that held its job
  const leftover = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ledgerbox:step'`);
  assert.equal(leftover.rows[0].n, 0);
  const byWorker = await db.pool.query(`select count(*)::int as n from ledgerbox.step_attempts where outcome = 'succeeded' and worker_id is null`);
  assert.equal(byWorker.rows[0].n, 0);
});
