import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createAccount, getBalance, postTransfer } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'a', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'b', currency: 'USD', allowNegative: true });

/**
 * Another session locks `b`, waits until ledgerbox holds `a` and waits for `b`, then asks
 * for `a`: a real deadlock. Its deadlock_timeout is long, so PostgreSQL picks ledgerbox's
 * transaction (which waited first) as the victim.
 */
async function deadlockWith(call: () => Promise<unknown>): Promise<{ call: PromiseSettledResult<unknown> }> {
  const other = new pg.Client({ connectionString: db.connectionString });
  await other.connect();
  try {
    await other.query(`begin; set local deadlock_timeout = '30s'`);
    await other.query(`select 1 from ledgerbox.accounts where key = 'b' for update`);
    const pending = call().then(
      (value) => ({ status: 'fulfilled', value }) as const,
      (reason) => ({ status: 'rejected', reason }) as const,
    );
    // wait until ledgerbox's backend is blocked on our lock of b
    for (let attempt = 0; attempt < 200; attempt++) {
      const { rows } = await other.query(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()`,
      );
      if (rows[0].n > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await other.query(`select 1 from ledgerbox.accounts where key = 'a' for update`);
    await other.query('commit');
    return { call: await pending };
  } finally {
    await other.end();
  }
}

test('a deadlock inside a transaction ledgerbox owns is retried, and the transfer is written once', async () => {
  const before = minor((await getBalance(db.pool, 'b')).posted);
  const { call } = await deadlockWith(() => postTransfer(db.pool, { key: 'owned', legs: [{ from: 'a', to: 'b', amount: usd(10n) }] }));
  assert.equal(call.status, 'fulfilled', call.status === 'rejected' ? String(call.reason) : '');
  assert.equal(minor((await getBalance(db.pool, 'b')).posted), before + 10n);
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = 'owned'`);
  assert.equal(rows[0].n, 1);
});

test("inside the caller's transaction a deadlock is transaction_conflict, retryable, and the caller's transaction survives", async () => {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query(`create temporary table host_work (note text) on commit drop`);
    await client.query(`insert into host_work values ('before')`);
    const { call } = await deadlockWith(() => postTransfer(client, { key: 'hosted', legs: [{ from: 'a', to: 'b', amount: usd(10n) }] }));
    assert.equal(call.status, 'rejected');
    assert.equal((call as PromiseRejectedResult).reason.code, 'transaction_conflict');
    assert.equal((call as PromiseRejectedResult).reason.retryable, true);
    // the savepoint undid only ledgerbox's part: the host's work is intact, and a retry succeeds
    const { rows } = await client.query(`select note from host_work`);
    assert.deepEqual(rows, [{ note: 'before' }]);
    await postTransfer(client, { key: 'hosted', legs: [{ from: 'a', to: 'b', amount: usd(10n) }] });
    await client.query('commit');
  } finally {
    client.release();
  }
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = 'hosted'`);
  assert.equal(rows[0].n, 1);
});
