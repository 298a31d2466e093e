import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { object, string } from 'superstruct';
import { createAccount, createHold, defineTask, enqueue, postHold, postTransfer } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'sam', currency: 'USD' });
const transfer = await postTransfer(db.pool, { key: 'seed', legs: [{ from: 'world', to: 'sam', amount: usd(1_000n) }] });

async function ids() {
  const { rows } = await db.pool.query(`select id from ledgerbox.accounts where key in ('world', 'sam') order by key`);
  return { sam: rows[0].id as string, world: rows[1].id as string };
}

async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

async function entryCount(): Promise<number> {
  return (await db.pool.query('select count(*)::int as n from ledgerbox.entries')).rows[0].n;
}

test('an unbalanced transfer inserted with raw SQL is refused at commit', async () => {
  const { sam, world } = await ids();
  const before = await entryCount();
  await assert.rejects(
    inTransaction(async (client) => {
      const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-unbalanced', 'posted') returning id`);
      await client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'USD', -100), ($1, 0, $3, 'USD', 99)`,
        [rows[0].id, world, sam],
      );
    }),
    { code: '23514', constraint: 'transfer_balanced_per_currency', message: /does not balance in USD: its entries sum to -1/ },
  );
  assert.equal(await entryCount(), before);
});

test('a transfer balanced in total but not per currency is refused', async () => {
  await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });
  const { sam, world } = await ids();
  const { rows: eurAccount } = await db.pool.query(`select id from ledgerbox.accounts where key = 'world:EUR'`);
  await assert.rejects(
    inTransaction(async (client) => {
      const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-cross', 'posted') returning id`);
      await client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'USD', -100), ($1, 0, $3, 'EUR', 100)`,
        [rows[0].id, world, eurAccount[0].id],
      );
      void sam;
    }),
    { constraint: 'transfer_balanced_per_currency' },
  );
});

test('a transfer without entries, and an entry in another currency than its account, are refused', async () => {
  await assert.rejects(
    inTransaction((client) => client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-empty', 'posted')`)),
    { constraint: 'transfer_has_entries' },
  );
  const { sam, world } = await ids();
  await assert.rejects(
    inTransaction(async (client) => {
      const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-currency', 'posted') returning id`);
      await client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'EUR', -5), ($1, 0, $3, 'EUR', 5)`,
        [rows[0].id, world, sam],
      );
    }),
    { code: '23503', constraint: 'entry_account_currency_fk' },
  );
});

async function posted(key: string): Promise<string> {
  return (await db.pool.query(`select posted_balance::text from ledgerbox.accounts where key = $1`, [key])).rows[0].posted_balance;
}

test('a balanced raw-SQL transfer commits, and the cached balances follow its entries', async () => {
  const { sam, world } = await ids();
  const before = BigInt(await posted('sam'));
  await inTransaction(async (client) => {
    const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-balanced', 'posted') returning id`);
    await client.query(
      `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'USD', -7), ($1, 0, $3, 'USD', 7)`,
      [rows[0].id, world, sam],
    );
  });
  assert.equal(await posted('sam'), String(before + 7n));
  await assertLedgerInvariants(db.pool);
});

test('entries cannot be added to a transfer committed earlier, even balanced ones', async () => {
  const { sam, world } = await ids();
  const before = await entryCount();
  await assert.rejects(
    inTransaction((client) =>
      client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 1, $2, 'USD', -1000000), ($1, 1, $3, 'USD', 1000000)`,
        [transfer.id, sam, world],
      ),
    ),
    { code: '42501', constraint: 'entries_only_with_their_transfer', message: /is committed: entries cannot be added/ },
  );
  assert.equal(await entryCount(), before);
});

test('cached balances cannot be set directly; only bypassing the triggers makes drift, and the invariant check catches it', async () => {
  await assert.rejects(db.pool.query(`update ledgerbox.accounts set posted_balance = 999999 where key = 'sam'`), {
    code: '42501',
    message: /follow its entries and cannot be set directly/,
  });
  await assert.rejects(db.pool.query(`insert into ledgerbox.accounts (key, currency, posted_balance) values ('rich', 'USD', 100)`), {
    code: '42501',
    message: /must open with zero balances/,
  });
  // a superuser switching triggers off is the one way left: what reconciliation exists for
  const client = await db.pool.connect();
  try {
    await client.query(`set session_replication_role = replica`);
    await client.query(`update ledgerbox.accounts set posted_balance = posted_balance + 1 where key = 'sam'`);
    await assert.rejects(assertLedgerInvariants(db.pool), /cached balances equal the sum of entries/);
    await client.query(`update ledgerbox.accounts set posted_balance = posted_balance - 1 where key = 'sam'`);
  } finally {
    await client.query(`reset session_replication_role`);
    client.release();
  }
  await assertLedgerInvariants(db.pool);
});

for (const table of ['entries', 'transfers']) {
  test(`UPDATE, DELETE and TRUNCATE on ${table} are refused, even for a superuser`, async () => {
    await assert.rejects(db.pool.query(`update ledgerbox.${table} set created_at = now()`), {
      code: '42501',
      message: new RegExp(`ledgerbox.${table} is append-only: UPDATE refused`),
    });
    await assert.rejects(db.pool.query(`delete from ledgerbox.${table}`), { code: '42501', message: /DELETE refused/ });
    await assert.rejects(db.pool.query(`truncate ledgerbox.${table} cascade`), { code: '42501', message: /TRUNCATE refused/ });
    const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where id = $1`, [transfer.id]);
    assert.equal(rows[0].n, 1);
  });
}

test("an account's currency cannot change and an account cannot be deleted", async () => {
  await assert.rejects(db.pool.query(`update ledgerbox.accounts set currency = 'EUR' where key = 'sam'`), { code: '42501' });
  await assert.rejects(db.pool.query(`delete from ledgerbox.accounts where key = 'sam'`), { code: '42501' });
});

test('the ledgerbox_app role may insert but has no UPDATE, DELETE or TRUNCATE privilege on accounting records', async () => {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query('set local role ledgerbox_app');
    await assert.rejects(client.query('savepoint s; update ledgerbox.entries set amount = amount'), { code: '42501', message: /permission denied/ });
    await client.query('rollback to savepoint s');
    await assert.rejects(client.query('delete from ledgerbox.transfers'), { code: '42501', message: /permission denied/ });
    await client.query('rollback to savepoint s');
    await assert.rejects(client.query('truncate ledgerbox.entries'), { code: '42501', message: /permission denied/ });
    await client.query('rollback');
    // …nor may it write balances, graphile-worker's tables or jobs directly…
    await client.query('begin');
    await client.query('set local role ledgerbox_app');
    await assert.rejects(client.query(`savepoint s; update ledgerbox.accounts set posted_balance = 1`), { code: '42501' });
    await client.query('rollback to savepoint s');
    await assert.rejects(client.query(`delete from graphile_worker._private_jobs`), { code: '42501' });
    await client.query('rollback');
    // …and can do the ledger's work: a transfer, a hold and its job through the role commit
    await client.query('begin');
    await client.query('set local role ledgerbox_app');
    await createAccount(client, { key: 'app-made', currency: 'USD' });
    const made = await postTransfer(client, { key: 'as-app-role', legs: [{ from: 'world', to: 'sam', amount: usd(5n) }] });
    const hold = await createHold(client, { key: 'as-app-role-hold', from: 'sam', to: 'app-made', amount: usd(2n), expiresAt: new Date(Date.now() + 60_000) });
    await postHold(client, { key: 'as-app-role-post', holdId: hold.id });
    await enqueue(client, defineTask('ledger.as_app_role', object({ transferId: string() })), { transferId: made.id });
    await client.query('commit');
  } finally {
    client.release();
  }
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key like 'as-app-role%'`);
  assert.equal(rows[0].n, 3);
  const jobs = await db.pool.query(`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'ledger.as_app_role'`);
  assert.equal(jobs.rows[0].n, 1);
  assert.equal(await posted('app-made'), '2');
});

test('the database refuses an overdraft written with raw SQL', async () => {
  const { sam, world } = await ids();
  const balance = BigInt(await posted('sam'));
  await assert.rejects(
    inTransaction(async (client) => {
      const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-overdraft', 'posted') returning id`);
      await client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'USD', $4), ($1, 0, $3, 'USD', $5)`,
        [rows[0].id, sam, world, String(-(balance + 1n)), String(balance + 1n)],
      );
    }),
    { code: '23514', constraint: 'account_available_not_negative' },
  );
  assert.equal(await posted('sam'), String(balance));
});
