import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from '@databases/pg';
import pg from 'pg';
import { autocommitSession, inTransaction, prepareStatementsOn } from '../src/db/handle.ts';
import { createAccount, getBalance, postTransfer } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';

// A host may fire several ledgerbox calls at once on one connection (Promise.all over a
// client). They must not interleave: each call's savepoint or transaction is its own.

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'a', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'b', currency: 'USD' });
await createAccount(db.pool, { key: 'empty', currency: 'USD' });

const posted = async (key: string) => minor((await getBalance(db.pool, key)).posted);
const transferCount = async (key: string) =>
  (await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = $1`, [key])).rows[0].n as number;

test("calls at once on one client inside the host's transaction: the failing one undoes only itself", async () => {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const [ok, failed] = await Promise.allSettled([
      postTransfer(client, { key: 'together-ok', legs: [{ from: 'a', to: 'b', amount: usd(100n) }] }),
      postTransfer(client, { key: 'together-failed', legs: [{ from: 'empty', to: 'a', amount: usd(5n) }] }),
    ]);
    assert.equal(ok.status, 'fulfilled');
    assert.equal(failed.status, 'rejected');
    assert.equal((failed as PromiseRejectedResult).reason.code, 'insufficient_funds');
    await client.query('commit');
  } finally {
    client.release();
  }
  assert.equal(await transferCount('together-ok'), 1);
  assert.equal(await transferCount('together-failed'), 0);
  assert.equal(await posted('b'), 100n);
  // the file's closing check proves every cached balance equals its entries
});

test('calls at once on one idle client: each is its own transaction', async () => {
  const client = await db.pool.connect();
  try {
    const outcomes = await Promise.allSettled([
      postTransfer(client, { key: 'idle-ok', legs: [{ from: 'a', to: 'b', amount: usd(10n) }] }),
      postTransfer(client, { key: 'idle-failed', legs: [{ from: 'empty', to: 'a', amount: usd(5n) }] }),
      postTransfer(client, { key: 'idle-ok-2', legs: [{ from: 'a', to: 'b', amount: usd(1n) }] }),
    ]);
    assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(client.getTransactionStatus(), 'I');
  } finally {
    client.release();
  }
  assert.equal(await transferCount('idle-ok'), 1);
  assert.equal(await transferCount('idle-ok-2'), 1);
  assert.equal(await transferCount('idle-failed'), 0);
  assert.equal(await posted('b'), 111n);
});

test("a pool connection terminated between ledgerbox's statements fails the call, and does not crash the host's process", async () => {
  // a host that follows node-postgres' advice listens on the pool only; a checked-out client's
  // 'error' with no listener would be an uncaught exception (node:test fails the test on one)
  const pool = new pg.Pool({ connectionString: db.connectionString, max: 2 });
  pool.on('error', () => undefined);
  try {
    await assert.rejects(
      inTransaction(pool, async (session) => {
        const [row] = await session.query(sql`select pg_backend_pid() as pid`);
        const pid = (row as { pid: number }).pid;
        await db.pool.query('select pg_terminate_backend($1)', [pid]);
        // idle in transaction: the termination arrives as an 'error' event on the client
        await new Promise((resolve) => setTimeout(resolve, 200));
        await session.query(sql`select 1`);
      }),
      (error: Error) => /terminat|Connection terminated|not queryable/i.test(error.message),
    );
    // the pool goes on with a new connection
    assert.deepEqual((await pool.query('select 1 as one')).rows, [{ one: 1 }]);
  } finally {
    await pool.end();
  }
});

test("a worker's pool prepares ledgerbox's statements once per connection, at most 200 of them; other pools prepare none", async () => {
  const preparedOn = async (pool: pg.Pool) =>
    (await pool.query<{ name: string; statement: string }>(`select name, statement from pg_prepared_statements where name like 'ledgerbox\\_%' order by statement`)).rows;
  // one connection each, so what the statements prepared is what that same connection shows
  const plain = new pg.Pool({ connectionString: db.connectionString, max: 1 });
  const preparing = new pg.Pool({ connectionString: db.connectionString, max: 1 });
  db.onClose(() => Promise.all([plain.end(), preparing.end()]));
  prepareStatementsOn(preparing);

  for (const pool of [plain, preparing]) {
    for (let round = 0; round < 3; round += 1) {
      assert.deepEqual(await autocommitSession(pool).query(sql`select ${round}::int as round`), [{ round }]);
      assert.deepEqual(await inTransaction(pool, (session) => session.query(sql`select ${round}::int + 1 as next`)), [{ next: round + 1 }]);
    }
  }
  assert.deepEqual(await preparedOn(plain), []);
  assert.deepEqual(
    (await preparedOn(preparing)).map((row) => row.statement),
    ['select $1::int + 1 as next', 'select $1::int as round'],
    'each text prepared once, under a name of its own, whatever its values',
  );

  // texts built from lists (a batch of N rows) stop being prepared past the cap: the server
  // must not keep one statement per N
  for (let columns = 1; columns <= 250; columns += 1) {
    const list = sql.join(Array.from({ length: columns }, (_, index) => sql`${index}::int`), sql`, `);
    await autocommitSession(preparing).query(sql`select ${list}`);
  }
  assert.equal((await preparedOn(preparing)).length, 200);
});
