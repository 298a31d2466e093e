import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { dinero, toSnapshot } from 'dinero.js/bigint';
import { createAccount, createHold, getBalance, getTransfer, postHold, postTransfer, voidHold, type Transfer } from '../src/index.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';

// The common postings take one statement (ledgerbox.try_post_transfer); everything else falls
// back to the TypeScript path. These tests pin both: what the one statement writes is what the
// longer path writes, and the cases it leaves to that path still come out right.

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'ann', currency: 'USD' });
await createAccount(db.pool, { key: 'bob', currency: 'USD' });
await postTransfer(db.pool, { key: 'fund:ann', legs: [{ from: 'world', to: 'ann', amount: usd(100_00n) }] });

/** The statements a call sends, on a client of its own outside any transaction. */
async function statementsOf<T>(call: (client: pg.PoolClient) => Promise<T>): Promise<{ result: T; statements: string[] }> {
  const client = await db.pool.connect();
  const statements: string[] = [];
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const first = args[0] as string | { text: string };
    statements.push((typeof first === 'string' ? first : first.text).trim().split(/\s+/).slice(0, 2).join(' '));
    return query(...args);
  };
  try {
    return { result: await call(client), statements };
  } finally {
    (client as unknown as { query: unknown }).query = query;
    client.release();
  }
}

/** A transfer with its amounts as plain snapshots, for deep comparison. */
function plain(transfer: Transfer) {
  return { ...transfer, legs: transfer.legs.map((leg) => ({ ...leg, amount: toSnapshot(leg.amount) })) };
}

async function posted(key: string): Promise<bigint> {
  return minor((await getBalance(db.pool, key)).posted);
}

test('a transfer is one statement, and reads back exactly as the TypeScript path writes it', async () => {
  const { result: transfer, statements } = await statementsOf((client) =>
    postTransfer(client, { key: 'one:1', legs: [{ from: 'ann', to: 'bob', amount: usd(12_34n) }], metadata: { order: 7 } }),
  );
  assert.deepEqual(statements, ['select ledgerbox.try_post_transfer($1::jsonb)']);
  assert.equal(transfer.replayed, false);
  assert.deepEqual(plain(await getTransfer(db.pool, { id: transfer.id })), plain(transfer));
  assert.deepEqual([await posted('ann'), await posted('bob')], [87_66n, 12_34n]);

  // the replay is the TypeScript path's: after the one statement declines, it reads the original
  const { result: replay, statements: replayStatements } = await statementsOf((client) =>
    postTransfer(client, { key: 'one:1', legs: [{ from: 'ann', to: 'bob', amount: usd(12_34n) }], metadata: { order: 7 } }),
  );
  assert.equal(replayStatements[0], 'select ledgerbox.try_post_transfer($1::jsonb)');
  assert.ok(replayStatements.length > 1);
  assert.deepEqual(plain({ ...replay, replayed: false }), plain(transfer));
  assert.equal(replay.replayed, true);
  assert.deepEqual([await posted('ann'), await posted('bob')], [87_66n, 12_34n]);
  await assertLedgerInvariants(db.pool);
});

test('an amount at a finer dinero.js scale is converted on the server; one that cannot be is refused by the TypeScript path', async () => {
  const USD = { code: 'USD', base: 10n, exponent: 2n };
  const fine = dinero({ amount: 1_500n, currency: USD, scale: 3n }); // 1.500 USD = 150 cents
  const transfer = await postTransfer(db.pool, { key: 'one:scale', legs: [{ from: 'ann', to: 'bob', amount: fine }] });
  assert.equal(minor(transfer.legs[0]!.amount), 1_50n);
  await assert.rejects(
    postTransfer(db.pool, { key: 'one:scale:odd', legs: [{ from: 'ann', to: 'bob', amount: dinero({ amount: 1_501n, currency: USD, scale: 3n }) }] }),
    { code: 'currency_exponent_mismatch' },
  );
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = 'one:scale:odd'`)).rows[0].n, 0);
});

test('refusals come from the TypeScript path with their codes, and the one statement leaves nothing behind', async () => {
  const before = (await db.pool.query(`select count(*)::int as n from ledgerbox.transfers`)).rows[0].n;
  await assert.rejects(postTransfer(db.pool, { key: 'one:broke', legs: [{ from: 'bob', to: 'ann', amount: usd(1_000_00n) }] }), {
    code: 'insufficient_funds',
  });
  await assert.rejects(postTransfer(db.pool, { key: 'one:nobody', legs: [{ from: 'ann', to: 'nobody', amount: usd(1n) }] }), {
    code: 'account_not_found',
  });
  await assert.rejects(postTransfer(db.pool, { key: 'one:1', legs: [{ from: 'ann', to: 'bob', amount: usd(1n) }] }), {
    code: 'exists_with_different_request',
  });
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.transfers`)).rows[0].n, before);
});

test('a hold, its post in full and a void are one statement each; a partial post takes the TypeScript path', async () => {
  const { result: hold, statements } = await statementsOf((client) =>
    createHold(client, { key: 'one:hold', from: 'ann', to: 'bob', amount: usd(5_00n), expiresAt: new Date(Date.now() + 60_000) }),
  );
  assert.deepEqual(statements, ['select ledgerbox.try_post_transfer($1::jsonb)']);
  assert.equal(minor((await getBalance(db.pool, 'ann')).pendingOutgoing), 5_00n);

  const { result: post, statements: postStatements } = await statementsOf((client) => postHold(client, { key: 'one:hold:post', holdId: hold.id }));
  assert.deepEqual(postStatements, ['select ledgerbox.try_post_transfer($1::jsonb)']);
  assert.equal(post.holdId, hold.id);
  assert.equal(minor(post.legs[0]!.amount), 5_00n);
  assert.deepEqual(plain(await getTransfer(db.pool, { id: post.id })), plain(post));
  assert.equal(minor((await getBalance(db.pool, 'ann')).pendingOutgoing), 0n);

  const second = await createHold(db.pool, { key: 'one:hold:2', from: 'ann', to: 'bob', amount: usd(3_00n) });
  const { result: voided, statements: voidStatements } = await statementsOf((client) => voidHold(client, { key: 'one:hold:2:void', holdId: second.id }));
  assert.deepEqual(voidStatements, ['select ledgerbox.try_post_transfer($1::jsonb)']);
  assert.equal(voided.voidReason, 'voided');
  await assert.rejects(postHold(db.pool, { key: 'one:hold:2:late', holdId: second.id }), { code: 'hold_already_resolved' });

  const third = await createHold(db.pool, { key: 'one:hold:3', from: 'ann', to: 'bob', amount: usd(4_00n) });
  const partial = await postHold(db.pool, { key: 'one:hold:3:post', holdId: third.id, amount: usd(1_00n) });
  assert.equal(minor(partial.legs[0]!.amount), 1_00n);
  assert.equal(minor((await getBalance(db.pool, 'ann')).pendingOutgoing), 0n);
  await assertLedgerInvariants(db.pool);
});
