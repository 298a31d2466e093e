import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createAccount,
  defineCurrency,
  getAccount,
  getBalance,
  getTransfer,
  postTransfer,
  reverseTransfer,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { eur, minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });

async function fund(key: string, currency: 'USD' | 'EUR', amount: bigint) {
  await createAccount(db.pool, { key, currency });
  await postTransfer(db.pool, {
    key: `fund:${key}`,
    legs: [{ from: `world:${currency}`, to: key, amount: currency === 'USD' ? usd(amount) : eur(amount) }],
  });
}

async function posted(key: string): Promise<bigint> {
  return minor((await getBalance(db.pool, key)).posted);
}

async function count(table: string): Promise<number> {
  return (await db.pool.query(`select count(*)::int as n from ledgerbox.${table}`)).rows[0].n;
}

test('a transfer moves money and writes two balanced entries per leg', async () => {
  await fund('alice', 'USD', 10_000n);
  await createAccount(db.pool, { key: 'bob', currency: 'USD' });
  const transfer = await postTransfer(db.pool, {
    key: 'pay-1',
    legs: [{ from: 'alice', to: 'bob', amount: usd(2_500n) }],
    metadata: { order: 'A-1' },
  });
  assert.equal(transfer.kind, 'posted');
  assert.equal(transfer.replayed, false);
  assert.deepEqual(transfer.metadata, { order: 'A-1' });
  assert.equal(minor(transfer.legs[0]!.amount), 2_500n);
  assert.equal(await posted('alice'), 7_500n);
  assert.equal(await posted('bob'), 2_500n);
  const entries = await db.pool.query(
    `select a.key, e.amount::text, e.phase from ledgerbox.entries e join ledgerbox.accounts a on a.id = e.account_id
     where e.transfer_id = $1 order by e.amount`,
    [transfer.id],
  );
  assert.deepEqual(entries.rows, [
    { key: 'alice', amount: '-2500', phase: 'posted' },
    { key: 'bob', amount: '2500', phase: 'posted' },
  ]);
  assert.equal((await getAccount(db.pool, 'alice')).version, 2n);
});

test('amounts given as { amount, currency } minor units work like dinero objects', async () => {
  await fund('carol', 'USD', 1_000n);
  await postTransfer(db.pool, { key: 'minor-1', legs: [{ from: 'carol', to: 'bob', amount: { amount: 300n, currency: 'USD' } }] });
  assert.equal(await posted('carol'), 700n);
});

test('a multi-leg transfer across currencies is written whole, balanced per currency', async () => {
  await fund('dave', 'USD', 5_000n);
  await createAccount(db.pool, { key: 'dave:EUR', currency: 'EUR' });
  await fund('fx:EUR', 'EUR', 1_000_000n);
  await createAccount(db.pool, { key: 'fx:USD', currency: 'USD' });
  await createAccount(db.pool, { key: 'fees:USD', currency: 'USD' });
  const exchange = await postTransfer(db.pool, {
    key: 'fx-1',
    legs: [
      { from: 'dave', to: 'fx:USD', amount: usd(1_000n) },
      { from: 'dave', to: 'fees:USD', amount: usd(10n) },
      { from: 'fx:EUR', to: 'dave:EUR', amount: eur(920n) },
    ],
  });
  assert.equal(exchange.legs.length, 3);
  assert.equal(await posted('dave'), 3_990n);
  assert.equal(await posted('fees:USD'), 10n);
  assert.equal(await posted('dave:EUR'), 920n);
  const sums = await db.pool.query(
    `select currency, sum(amount)::text as total, count(*)::int as entries from ledgerbox.entries where transfer_id = $1 group by currency order by currency`,
    [exchange.id],
  );
  assert.deepEqual(sums.rows, [
    { currency: 'EUR', total: '0', entries: 2 },
    { currency: 'USD', total: '0', entries: 4 },
  ]);
});

test('replaying a key with the same request returns the original transfer and moves nothing', async () => {
  await fund('erin', 'USD', 1_000n);
  const request = { key: 'replay-1', legs: [{ from: 'erin', to: 'bob', amount: usd(100n) }], metadata: { a: 1, b: 2 } };
  const first = await postTransfer(db.pool, request);
  const transfersBefore = await count('transfers');
  const again = await postTransfer(db.pool, { ...request, metadata: { b: 2, a: 1 } });
  assert.equal(again.id, first.id);
  assert.equal(again.replayed, true);
  assert.equal(await count('transfers'), transfersBefore);
  assert.equal(await posted('erin'), 900n);
});

test('replaying a key with a different request is exists_with_different_request and moves nothing', async () => {
  await fund('frank', 'USD', 1_000n);
  await postTransfer(db.pool, { key: 'conflict-1', legs: [{ from: 'frank', to: 'bob', amount: usd(100n) }] });
  await assert.rejects(postTransfer(db.pool, { key: 'conflict-1', legs: [{ from: 'frank', to: 'bob', amount: usd(101n) }] }), {
    code: 'exists_with_different_request',
    field: 'legs',
    message: /conflict-1.*legs.*100 USD.*101 USD/,
  });
  await assert.rejects(
    postTransfer(db.pool, { key: 'conflict-1', legs: [{ from: 'frank', to: 'bob', amount: usd(100n) }], metadata: { x: 1 } }),
    { code: 'exists_with_different_request', field: 'metadata' },
  );
  await assert.rejects(
    postTransfer(db.pool, { key: 'conflict-1', legs: [{ from: 'frank', to: 'bob', amount: usd(100n) }], effectiveAt: '2020-01-01T00:00:00Z' }),
    { code: 'exists_with_different_request', field: 'effectiveAt' },
  );
  assert.equal(await posted('frank'), 900n);
});

test('the same key racing from 8 connections writes one transfer; every caller gets it back', async () => {
  await fund('gina', 'USD', 1_000n);
  const results = await Promise.all(
    Array.from({ length: 8 }, () => postTransfer(db.pool, { key: 'race-1', legs: [{ from: 'gina', to: 'bob', amount: usd(10n) }] })),
  );
  assert.equal(new Set(results.map((transfer) => transfer.id)).size, 1);
  assert.equal(results.filter((transfer) => !transfer.replayed).length, 1);
  assert.equal(await posted('gina'), 990n);
});

test('an account that must not go negative refuses an overdraft with insufficient_funds', async () => {
  await fund('hank', 'USD', 100n);
  await assert.rejects(postTransfer(db.pool, { key: 'overdraft-1', legs: [{ from: 'hank', to: 'bob', amount: usd(101n) }] }), {
    code: 'insufficient_funds',
    message: /hank.*100.*101/,
  });
  assert.equal(await posted('hank'), 100n);
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = 'overdraft-1'`)).rows[0].n, 0);
  // exactly to zero is fine
  await postTransfer(db.pool, { key: 'overdraft-2', legs: [{ from: 'hank', to: 'bob', amount: usd(100n) }] });
  assert.equal(await posted('hank'), 0n);
});

test('an account that may go negative does', async () => {
  await createAccount(db.pool, { key: 'credit-line', currency: 'USD', allowNegative: true });
  await postTransfer(db.pool, { key: 'negative-1', legs: [{ from: 'credit-line', to: 'bob', amount: usd(5_000n) }] });
  assert.equal(await posted('credit-line'), -5_000n);
});

test('a leg in a currency the account does not hold is currency_mismatch', async () => {
  await fund('ivan', 'USD', 100n);
  await assert.rejects(postTransfer(db.pool, { key: 'mismatch-1', legs: [{ from: 'ivan', to: 'bob', amount: eur(10n) }] }), {
    code: 'currency_mismatch',
  });
});

test('a reversal undoes a transfer with a linked transfer, at most once, and leaves the original untouched', async () => {
  await fund('judy', 'USD', 1_000n);
  const original = await postTransfer(db.pool, { key: 'to-reverse', legs: [{ from: 'judy', to: 'bob', amount: usd(400n) }] });
  const bobBefore = await posted('bob');
  const reversal = await reverseTransfer(db.pool, { key: 'reverse-1', transferId: original.id, metadata: { reason: 'refund' } });
  assert.equal(reversal.kind, 'reversal');
  assert.equal(reversal.reversesId, original.id);
  assert.deepEqual(
    reversal.legs.map((leg) => [leg.from, leg.to, minor(leg.amount)]),
    [['bob', 'judy', 400n]],
  );
  assert.equal(await posted('judy'), 1_000n);
  assert.equal(await posted('bob'), bobBefore - 400n);
  assert.equal((await reverseTransfer(db.pool, { key: 'reverse-1', transferId: original.id, metadata: { reason: 'refund' } })).replayed, true);
  await assert.rejects(reverseTransfer(db.pool, { key: 'reverse-2', transferId: original.id }), { code: 'transfer_already_reversed' });
  await assert.rejects(reverseTransfer(db.pool, { key: 'reverse-3', transferId: reversal.id }), { code: 'transfer_not_reversible' });
  await assert.rejects(reverseTransfer(db.pool, { key: 'reverse-4', transferId: '00000000-0000-4000-8000-000000000000' }), {
    code: 'transfer_not_found',
  });
  const stillThere = await getTransfer(db.pool, { id: original.id });
  assert.equal(minor(stillThere.legs[0]!.amount), 400n);
});

test('getTransfer finds a transfer by id and by key, and reports transfer_not_found', async () => {
  await fund('kate', 'USD', 100n);
  const transfer = await postTransfer(db.pool, { key: 'lookup-1', legs: [{ from: 'kate', to: 'bob', amount: usd(1n) }] });
  assert.equal((await getTransfer(db.pool, { key: 'lookup-1' })).id, transfer.id);
  assert.equal((await getTransfer(db.pool, { id: transfer.id })).key, 'lookup-1');
  await assert.rejects(getTransfer(db.pool, { key: 'no-such-key' }), { code: 'transfer_not_found' });
});

test('balances as of a past effective date come from the entries', async () => {
  await createAccount(db.pool, { key: 'liam', currency: 'USD' });
  await postTransfer(db.pool, { key: 'eff-1', legs: [{ from: 'world:USD', to: 'liam', amount: usd(100n) }], effectiveAt: '2025-01-10T00:00:00Z' });
  await postTransfer(db.pool, { key: 'eff-2', legs: [{ from: 'world:USD', to: 'liam', amount: usd(50n) }], effectiveAt: new Date('2025-02-10T00:00:00Z') });
  await postTransfer(db.pool, { key: 'eff-3', legs: [{ from: 'liam', to: 'bob', amount: usd(30n) }], effectiveAt: '2025-03-10T00:00:00Z' });
  const at = async (asOf: string) => minor((await getBalance(db.pool, 'liam', { asOf })).posted);
  assert.equal(await at('2025-01-01T00:00:00Z'), 0n);
  assert.equal(await at('2025-01-10T00:00:00Z'), 100n);
  assert.equal(await at('2025-02-15T00:00:00Z'), 150n);
  assert.equal(await at('2025-12-31T00:00:00Z'), 120n);
  assert.equal(await posted('liam'), 120n);
  const transfer = await getTransfer(db.pool, { key: 'eff-2' });
  assert.equal(transfer.effectiveAt.toISOString(), '2025-02-10T00:00:00.000Z');
  assert.ok(transfer.createdAt > transfer.effectiveAt, 'inserted later than it took effect');
});

test('custom currencies carry their own exponent', async () => {
  await defineCurrency(db.pool, { code: 'POINTS', exponent: 0 });
  await defineCurrency(db.pool, { code: 'POINTS', exponent: 0 }); // idempotent on boot
  await createAccount(db.pool, { key: 'points:issuer', currency: 'POINTS', allowNegative: true });
  await createAccount(db.pool, { key: 'points:mia', currency: 'POINTS' });
  const transfer = await postTransfer(db.pool, {
    key: 'points-1',
    legs: [{ from: 'points:issuer', to: 'points:mia', amount: { amount: 1_500n, currency: 'POINTS' } }],
  });
  assert.equal(minor(transfer.legs[0]!.amount), 1_500n);
  const balance = await getBalance(db.pool, 'points:mia');
  assert.equal(minor(balance.posted), 1_500n);
  assert.equal(balance.currency, 'POINTS');
});

test('a dinero amount at a finer scale is accepted when no minor unit is lost', async () => {
  await fund('nina', 'USD', 1_000n);
  const { dinero, USD } = await import('dinero.js/bigint');
  await postTransfer(db.pool, { key: 'scale-1', legs: [{ from: 'nina', to: 'bob', amount: dinero({ amount: 5_670n, currency: USD, scale: 3n }) }] });
  assert.equal(await posted('nina'), 1_000n - 567n);
  await assert.rejects(
    postTransfer(db.pool, { key: 'scale-2', legs: [{ from: 'nina', to: 'bob', amount: dinero({ amount: 5_675n, currency: USD, scale: 3n }) }] }),
    { code: 'currency_exponent_mismatch' },
  );
});

test('a balance that would outgrow a PostgreSQL bigint is amount_out_of_range, and nothing moves', async () => {
  await createAccount(db.pool, { key: 'huge:source', currency: 'USD', allowNegative: true });
  await createAccount(db.pool, { key: 'huge:sink', currency: 'USD' });
  const half = 2n ** 62n;
  await postTransfer(db.pool, { key: 'huge-1', legs: [{ from: 'huge:source', to: 'huge:sink', amount: { amount: half, currency: 'USD' } }] });
  await assert.rejects(
    postTransfer(db.pool, { key: 'huge-2', legs: [{ from: 'huge:source', to: 'huge:sink', amount: { amount: half, currency: 'USD' } }] }),
    { code: 'amount_out_of_range', message: /huge:(source|sink)/ },
  );
  assert.equal(await posted('huge:sink'), half);
});

test('metadata is compared as stored: a Date or an undefined field replays instead of conflicting', async () => {
  await fund('otto', 'USD', 100n);
  const request = () => ({
    key: 'metadata-json',
    legs: [{ from: 'otto', to: 'bob', amount: usd(1n) }],
    metadata: { orderedAt: new Date('2026-11-01T10:00:00Z'), note: undefined, nested: { b: 1, a: [1, 2] } },
  });
  const first = await postTransfer(db.pool, request());
  assert.deepEqual(first.metadata, { orderedAt: '2026-11-01T10:00:00.000Z', nested: { a: [1, 2], b: 1 } });
  const again = await postTransfer(db.pool, request());
  assert.equal(again.replayed, true);
  assert.equal(again.id, first.id);
});

test('an as-of balance at a transfer\'s own effective time includes it', async () => {
  await fund('pia', 'USD', 100n);
  const transfer = await postTransfer(db.pool, { key: 'boundary-1', legs: [{ from: 'pia', to: 'bob', amount: usd(40n) }] });
  const at = await getBalance(db.pool, 'pia', { asOf: transfer.effectiveAt });
  assert.equal(minor(at.posted), 60n);
});
