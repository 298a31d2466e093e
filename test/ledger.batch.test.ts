import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAccount, getBalance, postTransfer, postTransfers, type TransferInput } from '../src/index.ts';
import { isLedgerboxError, type LedgerboxError } from '../src/errors.ts';
import { limits } from '../src/limits.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });

async function posted(key: string): Promise<bigint> {
  return minor((await getBalance(db.pool, key)).posted);
}

async function count(table: string): Promise<number> {
  return (await db.pool.query(`select count(*)::int as n from ledgerbox.${table}`)).rows[0].n;
}

async function refused(call: () => Promise<unknown>, code: string): Promise<LedgerboxError> {
  try {
    await call();
  } catch (error) {
    assert.ok(isLedgerboxError(error), `expected a LedgerboxError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, the call succeeded`);
}

/** Opens `count` funded accounts under `prefix`; returns their keys. */
async function fundedAccounts(prefix: string, count: number, amount: bigint): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, n) => `${prefix}:${n}`);
  for (const key of keys) await createAccount(db.pool, { key, currency: 'USD' });
  await postTransfers(
    db.pool,
    keys.map((key) => ({ key: `fund:${key}`, legs: [{ from: 'world:USD', to: key, amount: usd(amount) }] })),
  );
  return keys;
}

test('a batch of 500 transfers across 20 accounts posts every one, in input order', async () => {
  const accounts = await fundedAccounts('ring', 20, 1_000n);
  const expected = new Map(accounts.map((key) => [key, 1_000n]));
  const batch: TransferInput[] = Array.from({ length: 500 }, (_, n) => {
    const from = accounts[n % 20]!;
    const to = accounts[(n * 7 + 3) % 20 === n % 20 ? (n + 1) % 20 : (n * 7 + 3) % 20]!;
    const amount = BigInt(1 + (n % 13));
    expected.set(from, expected.get(from)! - amount);
    expected.set(to, expected.get(to)! + amount);
    return { key: `ring:${n}`, legs: [{ from, to, amount: usd(amount) }], metadata: { n } };
  });
  const transfers = await postTransfers(db.pool, batch);
  assert.deepEqual(transfers.map((t) => t.key), batch.map((t) => t.key));
  assert.ok(transfers.every((t) => !t.replayed && t.kind === 'posted'));
  assert.deepEqual(transfers[42]!.metadata, { n: 42 });
  assert.equal(minor(transfers[12]!.legs[0]!.amount), 13n);
  for (const [key, balance] of expected) assert.equal(await posted(key), balance, key);

  const entriesBefore = await count('entries');
  const replayed = await postTransfers(db.pool, batch);
  assert.ok(replayed.every((t) => t.replayed), 'every transfer of the same batch is replayed');
  assert.deepEqual(replayed.map((t) => t.id), transfers.map((t) => t.id));
  assert.equal(await count('entries'), entriesBefore);
  for (const [key, balance] of expected) assert.equal(await posted(key), balance, key);
});

test('one key already used for a different request fails the whole batch and writes nothing', async () => {
  const [a, b] = await fundedAccounts('conflict', 2, 1_000n);
  await postTransfer(db.pool, { key: 'conflict:taken', legs: [{ from: a!, to: b!, amount: usd(10n) }] });
  const before = [await count('transfers'), await count('entries')];
  const error = await refused(
    () =>
      postTransfers(db.pool, [
        { key: 'conflict:new-1', legs: [{ from: a!, to: b!, amount: usd(5n) }] },
        { key: 'conflict:taken', legs: [{ from: a!, to: b!, amount: usd(11n) }] },
        { key: 'conflict:new-2', legs: [{ from: b!, to: a!, amount: usd(5n) }] },
      ]),
    'exists_with_different_request',
  );
  assert.equal(error.details.key, 'conflict:taken');
  assert.deepEqual([await count('transfers'), await count('entries')], before);
  assert.equal(await posted(a!), 990n);
});

test('insufficient funds in transfer 7, after earlier transfers drained the account, fails the whole batch naming index 7', async () => {
  const [payer, payee] = await fundedAccounts('drain', 2, 700n);
  const before = [await count('transfers'), await count('entries')];
  const batch = Array.from({ length: 10 }, (_, n) => ({ key: `drain:${n}`, legs: [{ from: payer!, to: payee!, amount: usd(100n) }] }));
  const error = await refused(() => postTransfers(db.pool, batch), 'insufficient_funds');
  assert.equal(error.details.transfer, 7);
  assert.equal(error.details.account, payer);
  assert.equal(error.details.available, '0');
  assert.match(error.message, /^Transfer 7:/);
  assert.deepEqual([await count('transfers'), await count('entries')], before);
  assert.equal(await posted(payer!), 700n);
  // money moved in by an earlier transfer of the batch counts for a later one
  await postTransfers(db.pool, [
    { key: 'refill:in', legs: [{ from: payee!, to: payer!, amount: usd(500n) }] },
    { key: 'refill:out', legs: [{ from: payer!, to: payee!, amount: usd(1_200n) }] },
  ]);
  assert.equal(await posted(payer!), 0n);
});

test('a key repeated inside one batch is invalid_input naming the second use', async () => {
  const [a, b] = await fundedAccounts('repeat', 2, 100n);
  const leg = { from: a!, to: b!, amount: usd(1n) };
  const error = await refused(
    () => postTransfers(db.pool, [{ key: 'repeat:1', legs: [leg] }, { key: 'repeat:2', legs: [leg] }, { key: 'repeat:1', legs: [leg] }]),
    'invalid_input',
  );
  assert.equal(error.details.path, 'transfers.2.key');
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key like 'repeat:%'`)).rows[0].n, 0);
});

test('every input is checked with postTransfer’s contract, with paths into the batch', async () => {
  const error = await refused(
    () =>
      postTransfers(db.pool, [
        { key: 'path:0', legs: [{ from: 'world:USD', to: 'x', amount: usd(1n) }] },
        { key: 'path:1', legs: [{ from: 'world:USD', to: 'x', amount: usd(-5n) }] },
      ]),
    'invalid_input',
  );
  assert.equal(error.details.path, 'transfers.1.legs.0.amount');
  await refused(() => postTransfers(db.pool, [{ key: 'path:2', legs: [{ from: 'world:USD', to: 'nobody', amount: usd(1n) }] }]), 'account_not_found');
});

test('an empty batch and one over transfer_batch_max are invalid_input', async () => {
  const empty = await refused(() => postTransfers(db.pool, []), 'invalid_input');
  assert.equal(empty.details.path, 'transfers');
  const leg = { from: 'world:USD', to: 'x', amount: usd(1n) };
  const tooMany = Array.from({ length: limits.transfer_batch_max + 1 }, (_, n) => ({ key: `over:${n}`, legs: [leg] }));
  const over = await refused(() => postTransfers(db.pool, tooMany), 'invalid_input');
  assert.equal(over.details.path, 'transfers');
});

test('inside a host transaction that rolls back, nothing of the batch remains', async () => {
  const [a, b] = await fundedAccounts('host', 2, 100n);
  const before = [await count('transfers'), await count('entries')];
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const transfers = await postTransfers(client, [
      { key: 'host:1', legs: [{ from: a!, to: b!, amount: usd(30n) }] },
      { key: 'host:2', legs: [{ from: b!, to: a!, amount: usd(10n) }] },
    ]);
    assert.equal(transfers.length, 2);
    // a failed batch rolls back to its savepoint; the host's transaction stays usable
    await refused(() => postTransfers(client, [{ key: 'host:3', legs: [{ from: a!, to: b!, amount: usd(1_000n) }] }]), 'insufficient_funds');
    assert.equal((await client.query(`select count(*)::int as n from ledgerbox.transfers where key like 'host:%'`)).rows[0].n, 2);
    await client.query('rollback');
  } finally {
    client.release();
  }
  assert.deepEqual([await count('transfers'), await count('entries')], before);
  assert.equal(await posted(a!), 100n);
});
