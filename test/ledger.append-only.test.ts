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

/**
 * A transfer and its entries written with raw SQL as the rules require: in one statement (a
 * writable CTE), phase and effective date left to the database.
 */
async function rawTransfer(client: pg.PoolClient, key: string, entries: readonly [accountId: string, currency: string, amount: string | number][]): Promise<string> {
  const { rows } = await client.query(
    `with t as (insert into ledgerbox.transfers (key, kind) values ($1, 'posted') returning id)
     insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
     select t.id, 0, e.account_id, e.currency, e.amount
     from t, unnest($2::bigint[], $3::text[], $4::bigint[]) as e(account_id, currency, amount)
     returning transfer_id`,
    [key, entries.map((e) => e[0]), entries.map((e) => e[1]), entries.map((e) => String(e[2]))],
  );
  return rows[0].transfer_id;
}

async function entryCount(): Promise<number> {
  return (await db.pool.query('select count(*)::int as n from ledgerbox.entries')).rows[0].n;
}

test('an unbalanced transfer inserted with raw SQL is refused by its statement', async () => {
  const { sam, world } = await ids();
  const before = await entryCount();
  await assert.rejects(
    inTransaction((client) => rawTransfer(client, 'raw-unbalanced', [[world, 'USD', -100], [sam, 'USD', 99]])),
    { code: '23514', constraint: 'transfer_balanced_per_currency', message: /does not balance in USD: its entries sum to -1/ },
  );
  assert.equal(await entryCount(), before);
});

test('a transfer balanced in total but not per currency is refused', async () => {
  await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });
  const { sam, world } = await ids();
  const { rows: eurAccount } = await db.pool.query(`select id from ledgerbox.accounts where key = 'world:EUR'`);
  await assert.rejects(
    inTransaction((client) => {
      void sam;
      return rawTransfer(client, 'raw-cross', [[world, 'USD', -100], [eurAccount[0].id, 'EUR', 100]]);
    }),
    { constraint: 'transfer_balanced_per_currency' },
  );
});

test('a transfer without entries, and an entry in another currency than its account, are refused', async () => {
  const before = await posted('sam');
  await assert.rejects(
    inTransaction((client) => client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-empty', 'posted')`)),
    { constraint: 'transfer_has_entries' },
  );
  const { sam, world } = await ids();
  await assert.rejects(
    inTransaction((client) => rawTransfer(client, 'raw-currency', [[world, 'EUR', -5], [sam, 'EUR', 5]])),
    { code: '23503', constraint: 'entry_account_currency_fk', detail: new RegExp(`\\(${world}, EUR\\) is not present`) },
  );
  // an account that does not exist, and a transfer that does not exist: checked per statement
  // as the foreign keys checked them per row, same SQLSTATE and names
  await assert.rejects(
    inTransaction((client) => rawTransfer(client, 'raw-no-account', [[world, 'USD', -5], ['987654321', 'USD', 5]])),
    { code: '23503', constraint: 'entry_account_currency_fk', detail: /\(987654321, USD\) is not present/ },
  );
  await assert.rejects(
    inTransaction((client) =>
      client.query(`insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at) values (gen_random_uuid(), 0, $1, 'USD', -5, 'posted', now()), (gen_random_uuid(), 0, $2, 'USD', 5, 'posted', now())`, [world, sam]),
    ),
    { code: '23503', constraint: 'entries_transfer_id_fkey' },
  );
  assert.equal(await posted('sam'), before);
});

async function posted(key: string): Promise<string> {
  return (await db.pool.query(`select posted_balance::text from ledgerbox.accounts where key = $1`, [key])).rows[0].posted_balance;
}

test('a balanced raw-SQL transfer commits, and the cached balances follow its entries', async () => {
  const { sam, world } = await ids();
  const before = BigInt(await posted('sam'));
  await inTransaction((client) => rawTransfer(client, 'raw-balanced', [[world, 'USD', -7], [sam, 'USD', 7]]));
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

test('a transfer\'s entries arrive in the statement that creates it: not in a later statement of its transaction, whatever SET CONSTRAINTS says', async () => {
  const { sam, world } = await ids();
  const before = { entries: await entryCount(), sam: await posted('sam') };
  for (const mode of ['immediate', 'deferred']) {
    // the transfer alone: refused when its statement ends, not at commit
    await assert.rejects(
      inTransaction(async (client) => {
        await client.query(`set constraints all ${mode}`);
        await client.query(`insert into ledgerbox.transfers (key, kind) values ('raw-alone', 'posted')`);
      }),
      { code: '23514', constraint: 'transfer_has_entries', message: /inserted by the statement that creates it/ },
    );
    // entries added by a later statement of the same transaction, balanced ones included
    await assert.rejects(
      inTransaction(async (client) => {
        await client.query(`set constraints all ${mode}`);
        const id = await rawTransfer(client, `raw-later-${mode}`, [[world, 'USD', -3], [sam, 'USD', 3]]);
        await client.query(
          `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 1, $2, 'USD', -4), ($1, 1, $3, 'USD', 4)`,
          [id, world, sam],
        );
      }),
      { code: '42501', constraint: 'entries_only_with_their_transfer', message: /inserted by the statement that creates the transfer/ },
    );
  }
  assert.equal(await entryCount(), before.entries);
  assert.equal(await posted('sam'), before.sam);
});

test('one statement of many transfers is checked per transfer: one unbalanced among them refuses the statement and writes none', async () => {
  const { sam, world } = await ids();
  const before = { entries: await entryCount(), sam: await posted('sam') };
  const many = (badAt: number) =>
    inTransaction((client) =>
      client.query(
        `with t as (
           insert into ledgerbox.transfers (key, kind) select 'raw-many-' || $3::int || '-' || g, 'posted' from generate_series(1, 50) g
           returning id, key
         )
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
         select t.id, 0, side.account_id, 'USD', side.amount
         from t
         cross join lateral (values ($1::bigint, -2::bigint),
           ($2::bigint, case when t.key = 'raw-many-' || $3::int || '-' || $3::int then 1 else 2 end::bigint)) side(account_id, amount)`,
        [world, sam, badAt],
      ),
    );
  await assert.rejects(many(37), { constraint: 'transfer_balanced_per_currency', message: /does not balance in USD: its entries sum to -1/ });
  assert.equal(await entryCount(), before.entries);
  await many(0); // none unbalanced: all fifty commit
  assert.equal(await entryCount(), before.entries + 100);
  assert.equal(await posted('sam'), String(BigInt(before.sam) + 100n));
  await assertLedgerInvariants(db.pool);
});

test('an entry given its own phase or effective date is held to its transfer\'s; left out, they are the transfer\'s', async () => {
  const { sam, world } = await ids();
  const write = (phase: string, effectiveAt: string | null) =>
    inTransaction((client) =>
      client.query(
        `with t as (insert into ledgerbox.transfers (key, kind, effective_at) values ($4, 'posted', '2026-01-02T03:04:05.678Z') returning id, effective_at)
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
         select t.id, 0, e.account_id, 'USD', e.amount, $3, coalesce($5::timestamptz, t.effective_at)
         from t, (values ($1::bigint, -1::bigint), ($2::bigint, 1::bigint)) e(account_id, amount)`,
        [world, sam, phase, `raw-phase-${phase}-${effectiveAt ?? 'own'}`, effectiveAt],
      ),
    );
  await assert.rejects(write('pending', null), { code: '23514', constraint: 'entries_follow_their_transfer' });
  await assert.rejects(write('posted', '2026-01-01T00:00:00Z'), { code: '23514', constraint: 'entries_follow_their_transfer' });
  await write('posted', null);
  const id = await inTransaction((client) => rawTransfer(client, 'raw-filled', [[world, 'USD', -1], [sam, 'USD', 1]]));
  const { rows } = await db.pool.query(
    `select e.phase, e.effective_at = t.effective_at as same_date from ledgerbox.entries e join ledgerbox.transfers t on t.id = e.transfer_id where t.id = $1`,
    [id],
  );
  assert.deepEqual(rows, [{ phase: 'posted', same_date: true }, { phase: 'posted', same_date: true }]);
});

test('a void_hold has no entries, even in the statement that creates it', async () => {
  const { sam, world } = await ids();
  const hold = await createHold(db.pool, { key: 'raw-void-target', from: 'sam', to: 'world', amount: usd(1n) });
  await assert.rejects(
    inTransaction((client) =>
      client.query(
        `with t as (insert into ledgerbox.transfers (key, kind, hold_id, void_reason) values ('raw-void-entries', 'void_hold', $3, 'voided') returning id)
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
         select t.id, 0, e.account_id, 'USD', e.amount from t, (values ($1::bigint, -1::bigint), ($2::bigint, 1::bigint)) e(account_id, amount)`,
        [world, sam, hold.id],
      ),
    ),
    { code: '23514', constraint: 'void_hold_has_no_entries' },
  );
});

test('a hold past its expiry can be voided but not posted, by raw SQL too (hold_not_expired)', async () => {
  const { sam, world } = await ids();
  const holdOf = (key: string) =>
    inTransaction(async (client) => {
      const { rows } = await client.query(
        `with t as (insert into ledgerbox.transfers (key, kind, expires_at) values ($3, 'hold', now() - interval '1 minute') returning id)
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
         select t.id, 0, e.account_id, 'USD', e.amount from t, (values ($1::bigint, -2::bigint), ($2::bigint, 2::bigint)) e(account_id, amount)
         returning transfer_id`,
        [sam, world, key],
      );
      return rows[0].transfer_id as string;
    });
  const expired = await holdOf('raw-expired-hold');
  const postIt = (key: string) =>
    inTransaction((client) =>
      client.query(
        `with t as (insert into ledgerbox.transfers (key, kind, hold_id) values ($4, 'post_hold', $3) returning id)
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
         select t.id, 0, e.account_id, 'USD', e.amount from t, (values ($1::bigint, -2::bigint), ($2::bigint, 2::bigint)) e(account_id, amount)`,
        [sam, world, expired, key],
      ),
    );
  await assert.rejects(postIt('raw-post-expired'), { code: '23514', constraint: 'hold_not_expired', message: new RegExp(`hold ${expired} expired at`) });
  await assert.rejects(postHold(db.pool, { key: 'api-post-expired', holdId: expired }), { code: 'hold_expired' });
  await inTransaction((client) => client.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason) values ('raw-void-expired', 'void_hold', $1, 'expired')`, [expired]));
  const { rows } = await db.pool.query(`select status from ledgerbox.holds where id = $1`, [expired]);
  assert.equal(rows[0].status, 'expired');
  await assertLedgerInvariants(db.pool);
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
    inTransaction((client) => rawTransfer(client, 'raw-overdraft', [[sam, 'USD', String(-(balance + 1n))], [world, 'USD', String(balance + 1n)]])),
    { code: '23514', constraint: 'account_available_not_negative' },
  );
  assert.equal(await posted('sam'), String(balance));
});
