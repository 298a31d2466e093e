import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as databases from '@databases/pg';
import { pgFormat, sql, type ConnectionPool, type SQLQuery } from '@databases/pg';
import pg from 'pg';
import { array, boolean, integer, object, size, string } from 'superstruct';
import {
  createAccount,
  defineTask,
  enqueue,
  enqueueMany,
  getBalance,
  limits,
  minorUnits,
  postTransfer,
  type DatabaseHandle,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { usd } from './support/money.ts';
import { waitFor } from './support/wait.ts';

// The @databases pool must be disposed before useTestDatabase drops the database; `after`
// hooks run in the order they are registered, so this one is registered first.
let databasesPool: ConnectionPool | undefined;
after(async () => databasesPool?.dispose());

const db = await useTestDatabase();
const createConnectionPool: typeof databases.default.default = (databases.default as any).default ?? databases.default;
databasesPool = createConnectionPool({ connectionString: db.connectionString, bigIntMode: 'bigint' });
const databasesHandle: ConnectionPool = databasesPool;

const settleTransfer = defineTask('ledger.settle_transfer', object({ transferKey: size(string(), 1, 200) }));

// The host service's own table, written in the same transactions as the ledger.
await db.pool.query(`create table public.host_orders (id text primary key)`);

// Fault injection, in this file's own database: an entry insert for a transfer keyed
// `fault:<kind>:<sequence>:<failures>` fails for the first <failures> attempts (counted by a
// sequence, which a rollback does not undo), after the transfer row is already written.
// Single-leg transfers only: the check runs once per leg.
await db.pool.query(`
  create function public.inject_fault() returns trigger language plpgsql as $$
  declare
    transfer_key text;
  begin
    if new.amount > 0 then
      return new; -- one check per leg: its debit entry
    end if;
    select key into transfer_key from ledgerbox.transfers where id = new.transfer_id;
    if transfer_key not like 'fault:%' then
      return new;
    end if;
    if nextval(split_part(transfer_key, ':', 3)::regclass) <= split_part(transfer_key, ':', 4)::int then
      if split_part(transfer_key, ':', 2) = 'serialization' then
        raise exception 'injected serialization failure' using errcode = 'serialization_failure';
      end if;
      raise exception 'injected failure half way through the transfer';
    end if;
    return new;
  end
  $$;
  create trigger inject_fault after insert on ledgerbox.entries
    for each row execute function public.inject_fault();`);

// The same for jobs: a job whose payload's transferKey is `jobfault:<kind>:<sequence>:<failures>`
// is refused by PostgreSQL, inside graphile-worker's add_jobs, for its first <failures> tries.
await db.pool.query(`
  create function public.inject_job_fault() returns trigger language plpgsql as $$
  declare
    job_key text := new.payload->>'transferKey';
  begin
    if job_key is null or job_key not like 'jobfault:%' then
      return new;
    end if;
    -- schema-qualified: add_jobs runs with a search path of pg_catalog only
    if nextval(('public.' || split_part(job_key, ':', 3))::regclass) <= split_part(job_key, ':', 4)::int then
      if split_part(job_key, ':', 2) = 'serialization' then
        raise exception 'injected serialization failure adding a job' using errcode = 'serialization_failure';
      end if;
      raise exception 'injected failure adding a job';
    end if;
    return new;
  end
  $$;
  create trigger inject_job_fault before insert on graphile_worker._private_jobs
    for each row execute function public.inject_job_fault();`);

let faultSequences = 0;
/** A transfer key that makes the transfer fail `failures` times; `attempts()` counts the tries. */
async function faultyTransferKey(kind: 'serialization' | 'failure', failures: number) {
  const sequence = `fault_attempts_${++faultSequences}`;
  await db.pool.query(`create sequence public.${sequence}`);
  return {
    key: `fault:${kind}:${sequence}:${failures}`,
    attempts: async () => {
      const { rows } = await db.pool.query(`select case when is_called then last_value else 0 end as n from public.${sequence}`);
      return Number(rows[0].n);
    },
  };
}

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });

/** A payer funded with `funds` (minor units) and an empty payee, both new. */
async function openAccounts(name: string, funds: bigint): Promise<{ payer: string; payee: string }> {
  const payer = `${name}:payer`;
  const payee = `${name}:payee`;
  await createAccount(db.pool, { key: payer, currency: 'USD' });
  await createAccount(db.pool, { key: payee, currency: 'USD' });
  await postTransfer(db.pool, { key: `${name}:funding`, legs: [{ from: 'world:USD', to: payer, amount: usd(funds) }] });
  return { payer, payee };
}

/** Posted balances in minor units, read from the account rows. */
async function balances(...keys: string[]): Promise<Record<string, bigint>> {
  const { rows } = await db.pool.query(`select key, posted_balance::text as posted from ledgerbox.accounts where key = any($1)`, [keys]);
  return Object.fromEntries(rows.map((row) => [row.key, BigInt(row.posted)]));
}

/** What a transfer key left in the ledger and the job table, seen from another connection. */
async function committed(transferKey: string) {
  const transfers = await db.pool.query(`select kind from ledgerbox.transfers where key = $1`, [transferKey]);
  const entries = await db.pool.query(
    `select e.amount::text from ledgerbox.entries e join ledgerbox.transfers t on t.id = e.transfer_id where t.key = $1 order by e.amount`,
    [transferKey],
  );
  return {
    transfers: transfers.rows.map((row) => row.kind),
    entries: entries.rows.map((row) => row.amount),
    jobs: await jobsWithPayload('transferKey', transferKey),
  };
}

async function jobsWithPayload(field: string, value: string) {
  const { rows } = await db.pool.query(
    `select t.identifier as task, j.payload from graphile_worker._private_jobs j
     join graphile_worker._private_tasks t on t.id = j.task_id where j.payload->>$1 = $2`,
    [field, value],
  );
  return rows;
}

async function jobCount(): Promise<number> {
  const { rows } = await db.pool.query(`select count(*)::int as n from graphile_worker._private_jobs`);
  return rows[0].n;
}

async function hostOrderExists(id: string): Promise<boolean> {
  const { rows } = await db.pool.query(`select 1 from public.host_orders where id = $1`, [id]);
  return rows.length === 1;
}

const nothing = { transfers: [], entries: [], jobs: [] };

// ---------------------------------------------------------------------------------------------
// The host's transaction: one per kind of handle a host service may hold.

interface HostTransaction {
  /** The handle ledgerbox is given. */
  handle: DatabaseHandle;
  /** A statement of the host's own, on the same connection and transaction. */
  query(query: SQLQuery): Promise<Record<string, unknown>[]>;
}

interface HostKind {
  name: string;
  slug: string;
  /** Runs `work` in a transaction of the host's, then commits it or rolls it back. */
  run(work: (host: HostTransaction) => Promise<void>, outcome: 'commit' | 'rollback'): Promise<void>;
}

class HostRollback extends Error {}

const hostKinds: HostKind[] = [
  {
    name: '@databases/pg Transaction (db.tx)',
    slug: 'databases-tx',
    async run(work, outcome) {
      const transaction = databasesHandle.tx(async (db) => {
        await work({ handle: db, query: (query) => db.query(query) });
        if (outcome === 'rollback') throw new HostRollback();
      });
      if (outcome === 'commit') await transaction;
      else await assert.rejects(transaction, HostRollback);
    },
  },
  {
    name: 'node-postgres PoolClient inside BEGIN … COMMIT',
    slug: 'pg-client',
    async run(work, outcome) {
      const client = await db.pool.connect();
      try {
        await client.query('begin');
        await work({
          handle: client,
          query: async (query) => {
            const { text, values } = query.format(pgFormat);
            return (await client.query(text, values)).rows;
          },
        });
        await client.query(outcome === 'commit' ? 'commit' : 'rollback');
      } finally {
        client.release();
      }
    },
  },
];

async function countInside(host: HostTransaction, transferKey: string): Promise<{ transfers: number; jobs: number }> {
  const [row] = await host.query(sql`
    select
      (select count(*)::int from ledgerbox.transfers where key = ${transferKey}) as transfers,
      (select count(*)::int from graphile_worker._private_jobs where payload->>'transferKey' = ${transferKey}) as jobs`);
  return { transfers: Number(row!.transfers), jobs: Number(row!.jobs) };
}

for (const kind of hostKinds) {
  test(`${kind.name}: a transfer and its job commit together`, async () => {
    const { payer, payee } = await openAccounts(`${kind.slug}-commit`, 100_00n);
    const transferKey = `${kind.slug}-commit:order-1`;

    await kind.run(async (host) => {
      await postTransfer(host.handle, { key: transferKey, legs: [{ from: payer, to: payee, amount: usd(25_00n) }] });
      await enqueue(host.handle, settleTransfer, { transferKey });
      // Written on the host's connection: visible inside its transaction, nowhere else yet.
      assert.deepEqual(await countInside(host, transferKey), { transfers: 1, jobs: 1 });
      assert.deepEqual(await committed(transferKey), nothing);
    }, 'commit');

    assert.deepEqual(await committed(transferKey), {
      transfers: ['posted'],
      entries: ['-2500', '2500'],
      jobs: [{ task: 'ledger.settle_transfer', payload: { transferKey } }],
    });
    assert.deepEqual(await balances(payer, payee), { [payer]: 75_00n, [payee]: 25_00n });
    await assertLedgerInvariants(db.pool);
  });

  test(`${kind.name}: a transfer and its job roll back together`, async () => {
    const { payer, payee } = await openAccounts(`${kind.slug}-rollback`, 100_00n);
    const transferKey = `${kind.slug}-rollback:order-1`;

    await kind.run(async (host) => {
      await postTransfer(host.handle, { key: transferKey, legs: [{ from: payer, to: payee, amount: usd(25_00n) }] });
      await enqueue(host.handle, settleTransfer, { transferKey });
      assert.deepEqual(await countInside(host, transferKey), { transfers: 1, jobs: 1 });
    }, 'rollback');

    assert.deepEqual(await committed(transferKey), nothing);
    assert.deepEqual(await balances(payer, payee), { [payer]: 100_00n, [payee]: 0n });
    await assertLedgerInvariants(db.pool);
  });

  test(`${kind.name}: a failing ledger call is undone to its savepoint and the host's transaction carries on`, async () => {
    const { payer, payee } = await openAccounts(`${kind.slug}-savepoint`, 10_00n);
    const orderId = `${kind.slug}-savepoint:order-1`;
    const failsInPostgres = await faultyTransferKey('failure', 1);

    await kind.run(async (host) => {
      await host.query(sql`insert into public.host_orders (id) values (${orderId})`);
      // Refused by ledgerbox before anything is written…
      await assert.rejects(
        postTransfer(host.handle, { key: `${orderId}:too-much`, legs: [{ from: payer, to: payee, amount: usd(10_01n) }] }),
        { code: 'insufficient_funds' },
      );
      // …and refused by Postgres after the transfer row was written: without a savepoint this
      // would leave the host's whole transaction aborted.
      await assert.rejects(
        postTransfer(host.handle, { key: failsInPostgres.key, legs: [{ from: payer, to: payee, amount: usd(1_00n) }] }),
        /injected failure half way/,
      );
      await enqueue(host.handle, settleTransfer, { transferKey: orderId });
      await host.query(sql`select 1`); // still usable
    }, 'commit');

    assert.equal(await hostOrderExists(orderId), true);
    assert.deepEqual(await jobsWithPayload('transferKey', orderId), [{ task: 'ledger.settle_transfer', payload: { transferKey: orderId } }]);
    assert.deepEqual(await committed(`${orderId}:too-much`), nothing);
    assert.deepEqual(await committed(failsInPostgres.key), nothing);
    assert.equal(await failsInPostgres.attempts(), 1);
    assert.deepEqual(await balances(payer, payee), { [payer]: 10_00n, [payee]: 0n });
    await assertLedgerInvariants(db.pool);
  });

  test(`${kind.name}: a serialization failure is not retried inside the host's transaction: transaction_conflict, and the host may retry the call`, async () => {
    const { payer, payee } = await openAccounts(`${kind.slug}-conflict`, 10_00n);
    const conflictsOnce = await faultyTransferKey('serialization', 1);
    const orderId = `${kind.slug}-conflict:order-1`;
    const transfer = { key: conflictsOnce.key, legs: [{ from: payer, to: payee, amount: usd(1_00n) }] };

    await kind.run(async (host) => {
      await host.query(sql`insert into public.host_orders (id) values (${orderId})`);
      await assert.rejects(postTransfer(host.handle, transfer), (error: any) => {
        assert.equal(error.code, 'transaction_conflict');
        assert.equal(error.retryable, true);
        assert.equal(error.details.sqlstate, '40001');
        assert.match(error.message, /rolled back to its savepoint/);
        return true;
      });
      assert.equal(await conflictsOnce.attempts(), 1, 'not retried behind the host’s back');
      assert.deepEqual(await countInside(host, conflictsOnce.key), { transfers: 0, jobs: 0 });
      // The host's transaction survived the savepoint rollback: the call can simply be made again.
      await postTransfer(host.handle, transfer);
      await enqueue(host.handle, settleTransfer, { transferKey: conflictsOnce.key });
    }, 'commit');

    assert.equal(await conflictsOnce.attempts(), 2);
    assert.equal(await hostOrderExists(orderId), true);
    assert.deepEqual(await committed(conflictsOnce.key), {
      transfers: ['posted'],
      entries: ['-100', '100'],
      jobs: [{ task: 'ledger.settle_transfer', payload: { transferKey: conflictsOnce.key } }],
    });
    assert.deepEqual(await balances(payer, payee), { [payer]: 9_00n, [payee]: 1_00n });
    await assertLedgerInvariants(db.pool);
  });
}

for (const kind of hostKinds) {
  test(`${kind.name}: a job PostgreSQL refuses is undone within its one statement, and the host's transaction carries on`, async () => {
    const fails = await faultyTransferKey('failure', 1);
    const conflicts = await faultyTransferKey('serialization', 1);
    const failing = fails.key.replace(/^fault:/, 'jobfault:');
    const conflicting = conflicts.key.replace(/^fault:/, 'jobfault:');
    const orderId = `${kind.slug}-job-fault:order-1`;

    await kind.run(async (host) => {
      await host.query(sql`insert into public.host_orders (id) values (${orderId})`);
      await assert.rejects(enqueue(host.handle, settleTransfer, { transferKey: failing }), /injected failure adding a job/);
      await assert.rejects(enqueue(host.handle, settleTransfer, { transferKey: conflicting }), (error: any) => {
        assert.equal(error.code, 'transaction_conflict');
        assert.equal(error.details.sqlstate, '40001');
        return true;
      });
      // still usable, and the refused jobs left nothing behind: the calls can be made again
      await enqueue(host.handle, settleTransfer, { transferKey: failing });
      await enqueue(host.handle, settleTransfer, { transferKey: conflicting });
    }, 'commit');

    assert.equal(await hostOrderExists(orderId), true);
    assert.deepEqual(await jobsWithPayload('transferKey', failing), [{ task: 'ledger.settle_transfer', payload: { transferKey: failing } }]);
    assert.deepEqual(await jobsWithPayload('transferKey', conflicting), [{ task: 'ledger.settle_transfer', payload: { transferKey: conflicting } }]);
    assert.equal(await fails.attempts(), 2);
    assert.equal(await conflicts.attempts(), 2);
  });
}

test("enqueue inside a node-postgres client's transaction is one statement: no savepoint of its own", async () => {
  const client = await db.pool.connect();
  const sent: string[] = [];
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  try {
    await client.query('begin');
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      sent.push(typeof first === 'string' ? first : String((first as { text?: string }).text));
      return query(...args);
    };
    const { jobId } = await enqueue(client, settleTransfer, { transferKey: 'one-statement' });
    (client as { query: unknown }).query = query;
    await client.query('commit');
    assert.match(jobId, /^\d+$/);
  } finally {
    client.release();
  }
  assert.equal(sent.length, 1, sent.join('\n'));
  assert.match(sent[0]!, /ledgerbox\.try_add_jobs/);
  assert.deepEqual(await jobsWithPayload('transferKey', 'one-statement'), [{ task: 'ledger.settle_transfer', payload: { transferKey: 'one-statement' } }]);
});

// ---------------------------------------------------------------------------------------------
// Handles without a transaction of the host's: ledgerbox owns one per call.

interface OwnedKind {
  name: string;
  slug: string;
  /** Gives a handle to `work`; returns a check that ledgerbox left no connection or transaction open. */
  use(work: (handle: DatabaseHandle) => Promise<void>): Promise<void>;
}

async function openTransactions(): Promise<number> {
  const { rows } = await db.pool.query(
    `select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`,
  );
  return rows[0].n;
}

const ownedKinds: OwnedKind[] = [
  {
    name: 'node-postgres Pool',
    slug: 'pg-pool',
    async use(work) {
      const pool = new pg.Pool({ connectionString: db.connectionString, max: 3 });
      try {
        await work(pool);
        assert.equal(pool.idleCount, pool.totalCount, 'every client went back to the pool');
      } finally {
        await pool.end();
      }
    },
  },
  {
    name: '@databases/pg ConnectionPool',
    slug: 'databases-pool',
    use: (work) => work(databasesHandle),
  },
  {
    name: '@databases/pg Connection (db.task)',
    slug: 'databases-connection',
    use: (work) => databasesHandle.task((connection) => work(connection)),
  },
  {
    name: 'node-postgres PoolClient outside a transaction',
    slug: 'pg-client-idle',
    async use(work) {
      const client = await db.pool.connect();
      try {
        await work(client);
        assert.equal(client.getTransactionStatus(), 'I', 'ledgerbox committed the transaction it began');
      } finally {
        client.release();
      }
    },
  },
];

for (const kind of ownedKinds) {
  test(`${kind.name}: each call commits on its own, and a call that fails half way writes nothing`, async () => {
    const { payer, payee } = await openAccounts(`${kind.slug}-owned`, 100_00n);
    const transferKey = `${kind.slug}-owned:order-1`;
    const failsHalfWay = await faultyTransferKey('failure', 1_000);

    await kind.use(async (handle) => {
      await postTransfer(handle, { key: transferKey, legs: [{ from: payer, to: payee, amount: usd(25_00n) }] });
      await enqueue(handle, settleTransfer, { transferKey });
      // Committed already: another connection sees both.
      assert.deepEqual(await committed(transferKey), {
        transfers: ['posted'],
        entries: ['-2500', '2500'],
        jobs: [{ task: 'ledger.settle_transfer', payload: { transferKey } }],
      });

      await assert.rejects(
        postTransfer(handle, { key: failsHalfWay.key, legs: [{ from: payer, to: payee, amount: usd(5_00n) }] }),
        /injected failure half way/,
      );
      await assert.rejects(
        postTransfer(handle, { key: `${transferKey}:too-much`, legs: [{ from: payer, to: payee, amount: usd(75_01n) }] }),
        { code: 'insufficient_funds' },
      );
    });

    assert.equal(await failsHalfWay.attempts(), 1, 'an ordinary failure is not retried');
    assert.deepEqual(await committed(failsHalfWay.key), nothing);
    assert.deepEqual(await committed(`${transferKey}:too-much`), nothing);
    assert.deepEqual(await balances(payer, payee), { [payer]: 75_00n, [payee]: 25_00n });
    assert.equal(await openTransactions(), 0);
    await assertLedgerInvariants(db.pool);
  });

  test(`${kind.name}: a job's serialization failures are retried like a posting's`, async () => {
    const twice = await faultyTransferKey('serialization', 2);
    const transferKey = twice.key.replace(/^fault:/, 'jobfault:');
    await kind.use(async (handle) => {
      await enqueue(handle, settleTransfer, { transferKey });
    });
    assert.equal(await twice.attempts(), 3, 'two failures, then the third attempt commits');
    assert.deepEqual(await jobsWithPayload('transferKey', transferKey), [{ task: 'ledger.settle_transfer', payload: { transferKey } }]);
    assert.equal(await openTransactions(), 0);
  });

  test(`${kind.name}: serialization failures are retried, at most transaction_attempts_max times, then transaction_conflict`, async () => {
    const { payer, payee } = await openAccounts(`${kind.slug}-retry`, 100_00n);
    const twice = await faultyTransferKey('serialization', 2);
    const always = await faultyTransferKey('serialization', 1_000);

    await kind.use(async (handle) => {
      const transfer = await postTransfer(handle, { key: twice.key, legs: [{ from: payer, to: payee, amount: usd(10_00n) }] });
      assert.equal(transfer.replayed, false);
      await assert.rejects(
        postTransfer(handle, { key: always.key, legs: [{ from: payer, to: payee, amount: usd(10_00n) }] }),
        (error: any) => {
          assert.equal(error.code, 'transaction_conflict');
          assert.equal(error.retryable, true);
          assert.equal(error.details.attempts, limits.transaction_attempts_max);
          assert.equal(error.details.sqlstate, '40001');
          return true;
        },
      );
    });

    assert.equal(await twice.attempts(), 3, 'two failures, then the third attempt commits');
    assert.deepEqual((await committed(twice.key)).entries, ['-1000', '1000']);
    assert.equal(await always.attempts(), limits.transaction_attempts_max);
    assert.deepEqual(await committed(always.key), nothing);
    assert.deepEqual(await balances(payer, payee), { [payer]: 90_00n, [payee]: 10_00n });
    assert.equal(await openTransactions(), 0);
    await assertLedgerInvariants(db.pool);
  });
}

// ---------------------------------------------------------------------------------------------
// Crashes and broken transactions.

test('a connection killed before COMMIT leaves neither the transfer, its entries nor its job, and releases its locks', async () => {
  const { payer, payee } = await openAccounts('crash', 100_00n);
  const transferKey = 'crash:order-1';
  const client = await db.pool.connect();
  const clientErrors: Error[] = [];
  client.on('error', (error) => clientErrors.push(error)); // a checked-out client has no other listener
  let lost: Error | undefined;
  try {
    const { rows } = await client.query('select pg_backend_pid() as pid');
    const pid: number = rows[0].pid;
    await client.query('begin');
    await postTransfer(client, { key: transferKey, legs: [{ from: payer, to: payee, amount: usd(40_00n) }] });
    await enqueue(client, settleTransfer, { transferKey });

    const { rows: killed } = await db.pool.query('select pg_terminate_backend($1) as killed', [pid]);
    assert.equal(killed[0].killed, true);
    lost = await client.query('commit').then(
      () => undefined,
      (error: Error) => error,
    );
    assert.ok(lost !== undefined, 'COMMIT on a killed connection fails');
  } finally {
    client.release(lost ?? true);
  }

  assert.deepEqual(await committed(transferKey), nothing);
  assert.deepEqual(await balances(payer, payee), { [payer]: 100_00n, [payee]: 0n });
  // The killed transaction's row locks are gone: the same accounts take a new transfer at once.
  await postTransfer(db.pool, { key: 'crash:order-2', legs: [{ from: payer, to: payee, amount: usd(40_00n) }] });
  assert.deepEqual(await balances(payer, payee), { [payer]: 60_00n, [payee]: 40_00n });
  await assertLedgerInvariants(db.pool);
});

test('a node-postgres client whose transaction already failed gets host_transaction_aborted, and nothing is written', async () => {
  const { payer, payee } = await openAccounts('aborted', 100_00n);
  const transferKey = 'aborted:order-1';
  const jobsBefore = await jobCount();
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await assert.rejects(client.query('select 1/0'), { code: '22012' });

    await assert.rejects(
      postTransfer(client, { key: transferKey, legs: [{ from: payer, to: payee, amount: usd(1_00n) }] }),
      { code: 'host_transaction_aborted', message: /already failed; roll it back/ },
    );
    await assert.rejects(enqueue(client, settleTransfer, { transferKey }), { code: 'host_transaction_aborted' });
    await assert.rejects(getBalance(client, payer), { code: 'host_transaction_aborted' });
    await client.query('rollback');

    // Rolled back, the same client works again (ledgerbox owns the transaction now).
    await postTransfer(client, { key: `${transferKey}:after-rollback`, legs: [{ from: payer, to: payee, amount: usd(1_00n) }] });
    assert.equal(minorUnits((await getBalance(client, payee)).posted), 1_00n);
  } finally {
    client.release();
  }

  assert.deepEqual(await committed(transferKey), nothing);
  assert.equal(await jobCount(), jobsBefore);
  assert.deepEqual(await balances(payer, payee), { [payer]: 99_00n, [payee]: 1_00n });
  await assertLedgerInvariants(db.pool);
});

test('a handle ledgerbox does not know is unsupported_database_handle, and nothing is written', async () => {
  const { payer, payee } = await openAccounts('unsupported', 100_00n);
  const jobsBefore = await jobCount();
  for (const handle of [{}, { query: async () => ({ rows: [] }) }]) {
    const unsupported = handle as unknown as DatabaseHandle;
    await assert.rejects(
      postTransfer(unsupported, { key: 'unsupported:order-1', legs: [{ from: payer, to: payee, amount: usd(1_00n) }] }),
      { code: 'unsupported_database_handle', message: /got Object/ },
    );
    await assert.rejects(enqueue(unsupported, settleTransfer, { transferKey: 'unsupported:order-1' }), { code: 'unsupported_database_handle' });
    await assert.rejects(
      enqueueMany(unsupported, [{ task: settleTransfer, payload: { transferKey: 'unsupported:order-1' } }]),
      { code: 'unsupported_database_handle' },
    );
  }
  assert.deepEqual(await committed('unsupported:order-1'), nothing);
  assert.equal(await jobCount(), jobsBefore);
  assert.deepEqual(await balances(payer, payee), { [payer]: 100_00n, [payee]: 0n });
  await assertLedgerInvariants(db.pool);
});

// ---------------------------------------------------------------------------------------------
// enqueueMany, job options, task defaults.

const fanOut = defineTask('ledger.fan_out', object({ accountKey: string(), shard: integer() }));

test('enqueueMany adds a thousand jobs in one call', async () => {
  const jobs = Array.from({ length: 1_000 }, (_, index) => ({
    task: fanOut,
    payload: { accountKey: `fan-out:${index}`, shard: index % 7 },
  }));
  const added = await enqueueMany(db.pool, jobs);

  assert.equal(added.length, 1_000);
  assert.equal(new Set(added.map((job) => job.jobId)).size, 1_000);
  const { rows } = await db.pool.query(
    `select j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
     where t.identifier = 'ledger.fan_out' order by (j.payload->>'accountKey')`,
  );
  assert.deepEqual(
    rows.map((row) => row.payload),
    jobs.map((job) => job.payload).sort((a, b) => (a.accountKey < b.accountKey ? -1 : 1)),
  );
  // The ids returned are the rows written.
  const { rows: ids } = await db.pool.query(`select id::text from graphile_worker._private_jobs where id = any($1::bigint[])`, [
    added.map((job) => job.jobId),
  ]);
  assert.equal(ids.length, 1_000);
  await assertLedgerInvariants(db.pool);
});

test("enqueueMany's ids are the jobs' own, in the order given: tasks interleaved, keyed and unkeyed, identical payloads", async () => {
  const other = defineTask('ledger.order_check', object({ n: size(string(), 1, 20) }));
  const jobs = Array.from({ length: 40 }, (_, index) =>
    index % 2 === 0
      ? { task: other, payload: { n: `m${index}` }, options: index % 4 === 0 ? { jobKey: `order-check:${index}` } : {} }
      : // the same payload three times over: any of those ids may go to any of those jobs
        { task: settleTransfer, payload: { transferKey: `order-check:${index % 3}` } },
  );
  const added = await enqueueMany(db.pool, jobs);
  const { rows } = await db.pool.query<{ id: string; task: string; payload: unknown; key: string | null }>(
    `select j.id::text, t.identifier as task, j.payload, j.key from graphile_worker._private_jobs j
     join graphile_worker._private_tasks t on t.id = j.task_id where j.id = any($1::bigint[])`,
    [added.map((job) => job.jobId)],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  assert.equal(byId.size, 40);
  jobs.forEach((job, index) => {
    const row = byId.get(added[index]!.jobId)!;
    assert.deepEqual({ task: row.task, payload: row.payload, key: row.key }, { task: job.task.name, payload: job.payload, key: job.options?.jobKey ?? null }, `job ${index}`);
  });
});

test('enqueueMany is all or none: one bad job among many adds no job at all', async () => {
  const good = (index: number) => ({ task: fanOut as any, payload: { accountKey: `all-or-none:${index}`, shard: 0 } as unknown });
  const jobsBefore = await jobCount();
  const withBadPayload = Array.from({ length: 500 }, (_, index) => good(index));
  withBadPayload[499] = { task: fanOut, payload: { accountKey: 'all-or-none:499', shard: 1.5 } };
  await assert.rejects(enqueueMany(db.pool, withBadPayload), { code: 'invalid_input', path: ['jobs.499.payload'] });

  const withUnknownTask = Array.from({ length: 500 }, (_, index) => good(index));
  withUnknownTask[250] = { task: 'ledger.fan_out', payload: { accountKey: 'all-or-none:250', shard: 0 } };
  await assert.rejects(enqueueMany(db.pool, withUnknownTask), { code: 'unknown_task' });

  const withBadOption = Array.from({ length: 500 }, (_, index) => ({ ...good(index), options: { priority: index === 100 ? 1e6 : 0 } }));
  await assert.rejects(enqueueMany(db.pool, withBadOption), { code: 'invalid_input', path: ['jobs.100.options', 'priority'] });

  assert.equal(await jobCount(), jobsBefore);
  const { rows } = await db.pool.query(`select count(*)::int as n from graphile_worker._private_jobs where payload->>'accountKey' like 'all-or-none:%'`);
  assert.equal(rows[0].n, 0);
  await assertLedgerInvariants(db.pool);
});

test('job options land in graphile-worker’s job row', async () => {
  const runAt = new Date('2031-05-06T07:08:09.000Z');
  await enqueue(db.pool, settleTransfer, { transferKey: 'options:1' }, {
    jobKey: 'options:settle:1',
    runAt,
    priority: 7,
    queue: 'settlement.eu',
    maxAttempts: 4,
  });
  await enqueue(db.pool, settleTransfer, { transferKey: 'options:2' }, { runAt: '2031-05-06T09:08:09+02:00' });

  const { rows } = await db.pool.query(
    `select task_identifier, key, queue_name, priority, run_at, max_attempts, attempts from graphile_worker.jobs
     where id in (select id from graphile_worker._private_jobs where payload->>'transferKey' like 'options:%') order by key nulls last`,
  );
  assert.deepEqual(rows, [
    {
      task_identifier: 'ledger.settle_transfer',
      key: 'options:settle:1',
      queue_name: 'settlement.eu',
      priority: 7,
      run_at: runAt,
      max_attempts: 4,
      attempts: 0,
    },
    { task_identifier: 'ledger.settle_transfer', key: null, queue_name: null, priority: 0, run_at: runAt, max_attempts: 25, attempts: 0 },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('a task’s defaults apply to its jobs, and per-call options override them', async () => {
  const payout = defineTask('ledger.payout', object({ payoutKey: string() }), { queue: 'payouts', maxAttempts: 3, priority: 10 });
  await enqueue(db.pool, payout, { payoutKey: 'defaults:1' });
  await enqueue(db.pool, payout, { payoutKey: 'defaults:2' }, { priority: -5, maxAttempts: 9 });
  await enqueueMany(db.pool, [
    { task: payout, payload: { payoutKey: 'defaults:3' }, options: { queue: 'payouts.urgent' } },
    { task: settleTransfer, payload: { transferKey: 'defaults:4' } },
  ]);

  const { rows } = await db.pool.query(
    `select coalesce(j.payload->>'payoutKey', j.payload->>'transferKey') as id, q.queue_name, j.priority, j.max_attempts
     from graphile_worker._private_jobs j left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
     where coalesce(j.payload->>'payoutKey', j.payload->>'transferKey') like 'defaults:%' order by 1`,
  );
  assert.deepEqual(rows, [
    { id: 'defaults:1', queue_name: 'payouts', priority: 10, max_attempts: 3 },
    { id: 'defaults:2', queue_name: 'payouts', priority: -5, max_attempts: 9 },
    { id: 'defaults:3', queue_name: 'payouts.urgent', priority: 10, max_attempts: 3 },
    { id: 'defaults:4', queue_name: null, priority: 0, max_attempts: 25 },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('a job key replaces the pending job; preserve_run_at keeps its run time', async () => {
  const first = new Date('2032-01-01T00:00:00.000Z');
  const second = new Date('2033-01-01T00:00:00.000Z');
  await enqueue(db.pool, settleTransfer, { transferKey: 'job-key:v1' }, { jobKey: 'job-key:replace', runAt: first });
  await enqueue(db.pool, settleTransfer, { transferKey: 'job-key:v2' }, { jobKey: 'job-key:replace', runAt: second });
  await enqueue(db.pool, settleTransfer, { transferKey: 'job-key:v1' }, { jobKey: 'job-key:preserve', runAt: first });
  await enqueue(db.pool, settleTransfer, { transferKey: 'job-key:v2' }, { jobKey: 'job-key:preserve', runAt: second, jobKeyMode: 'preserve_run_at' });

  const { rows } = await db.pool.query(
    `select key, payload, run_at from graphile_worker._private_jobs where key like 'job-key:%' order by key`,
  );
  assert.deepEqual(rows, [
    { key: 'job-key:preserve', payload: { transferKey: 'job-key:v2' }, run_at: first },
    { key: 'job-key:replace', payload: { transferKey: 'job-key:v2' }, run_at: second },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('a job key whose pending job a worker locks at that very moment still gets its job', async () => {
  // graphile_worker.add_jobs alone drops the new job here: its "on conflict ... where
  // locked_at is null" waits for the worker's lock, then matches nothing.
  await enqueue(db.pool, settleTransfer, { transferKey: 'race:v1' }, { jobKey: 'job-key:race' });
  const worker = await db.pool.connect();
  const host = await db.pool.connect();
  try {
    await worker.query('begin');
    await worker.query(`update graphile_worker._private_jobs set locked_at = now(), locked_by = 'worker-under-test' where key = 'job-key:race'`);
    await host.query('begin');
    const hostPid = (await host.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    const adding = enqueueMany(host, [
      { task: settleTransfer, payload: { transferKey: 'race:before' } },
      { task: settleTransfer, payload: { transferKey: 'race:v2' }, options: { jobKey: 'job-key:race' } },
      { task: settleTransfer, payload: { transferKey: 'race:after' } },
    ]);
    await waitFor('the host to wait on the worker’s lock', async () =>
      (await db.pool.query(`select 1 from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`, [hostPid])).rowCount ? true : undefined,
    );
    await worker.query('commit');
    const added = await adding;
    await host.query('commit');
    assert.equal(added.length, 3);
    const { rows } = await db.pool.query(
      `select id::text, key, payload->>'transferKey' as transfer_key, locked_by from graphile_worker._private_jobs
       where payload->>'transferKey' like 'race:%' order by transfer_key`,
    );
    assert.deepEqual(rows.map(({ key, transfer_key, locked_by }) => ({ key, transfer_key, locked_by })), [
      { key: null, transfer_key: 'race:after', locked_by: null },
      { key: null, transfer_key: 'race:before', locked_by: null },
      // the running job lost its key (graphile-worker will not retry it); ours took it
      { key: null, transfer_key: 'race:v1', locked_by: 'worker-under-test' },
      { key: 'job-key:race', transfer_key: 'race:v2', locked_by: null },
    ]);
    assert.deepEqual(added.map((job) => job.jobId).sort(), rows.filter((row) => row.transfer_key !== 'race:v1').map((row) => row.id).sort());
  } finally {
    await worker.query('rollback').catch(() => undefined);
    await host.query('rollback').catch(() => undefined);
    worker.release();
    host.release();
    await db.pool.query(`delete from graphile_worker._private_jobs where payload->>'transferKey' like 'race:%'`);
  }
});

// ---------------------------------------------------------------------------------------------
// The payload contract.

const identifiers = defineTask(
  'ledger.identifiers',
  object({ accountKeys: array(string()), note: string(), shard: integer(), urgent: boolean() }),
);

test('payloads at the identifiers-only bounds are accepted', async () => {
  const note = 'n'.repeat(limits.payload_string_length_max);
  const accountKeys = Array.from({ length: limits.payload_array_length_max }, (_, index) => `bounds:${index}`);
  await enqueue(db.pool, identifiers, { accountKeys, note, shard: Number.MAX_SAFE_INTEGER, urgent: true });

  const { rows } = await db.pool.query(`select payload from graphile_worker._private_jobs where payload->>'note' = $1`, [note]);
  assert.deepEqual(rows, [{ payload: { accountKeys, note, shard: Number.MAX_SAFE_INTEGER, urgent: true } }]);
  await assertLedgerInvariants(db.pool);
});

test('the identifiers-only rule rejects state in a payload with invalid_input, and adds no job', async () => {
  const valid = { accountKeys: ['rule:1'], note: 'rule', shard: 1, urgent: false };
  const cases: { name: string; payload: unknown; shows: string }[] = [
    { name: 'a nested object', payload: { ...valid, note: { amount: 100 } }, shows: '"amount":100' },
    { name: 'an array of objects', payload: { ...valid, accountKeys: [{ key: 'rule:1' }] }, shows: '"key":"rule:1"' },
    { name: 'a float', payload: { ...valid, shard: 10.5 }, shows: '10.5' },
    { name: 'an unsafe integer', payload: { ...valid, shard: 2 ** 53 }, shows: '9007199254740992' },
    { name: 'a bigint', payload: { ...valid, shard: 1050n }, shows: '1050n' },
    { name: 'a Date', payload: { ...valid, note: new Date('2030-01-01T00:00:00Z') }, shows: '2030-01-01T00:00:00.000Z' },
    { name: 'null', payload: { ...valid, note: null }, shows: '`note` is null' },
    { name: 'a long string', payload: { ...valid, note: 'x'.repeat(limits.payload_string_length_max + 1) }, shows: 'xxxxxxxx' },
    {
      name: 'a too-long array',
      payload: { ...valid, accountKeys: Array.from({ length: limits.payload_array_length_max + 1 }, () => 'k') },
      shows: '"k","k"',
    },
    { name: 'an array as the payload', payload: ['rule:1'], shows: '["rule:1"]' },
    { name: 'a string as the payload', payload: 'rule:1', shows: '"rule:1"' },
  ];
  const jobsBefore = await jobCount();
  for (const { name, payload, shows } of cases) {
    await assert.rejects(
      enqueue(db.pool, identifiers, payload as any),
      (error: any) => {
        assert.equal(error.code, 'invalid_input', name);
        assert.deepEqual(error.path, ['payload'], name);
        assert.match(error.message, /`payload`/, name);
        assert.ok(error.message.includes(shows), `${name}: ${error.message} shows ${shows}`);
        return true;
      },
      name,
    );
  }
  assert.equal(await jobCount(), jobsBefore);
  await assertLedgerInvariants(db.pool);
});

test('the task’s own payload contract is enforced', async () => {
  const jobsBefore = await jobCount();
  await assert.rejects(enqueue(db.pool, settleTransfer, {} as any), {
    code: 'invalid_input',
    path: ['payload', 'transferKey'],
    message: /`payload\.transferKey`.*undefined/,
  });
  await assert.rejects(enqueue(db.pool, settleTransfer, { transferKey: 42 } as any), {
    code: 'invalid_input',
    message: /`payload\.transferKey` to be string, got 42/,
  });
  await assert.rejects(enqueue(db.pool, settleTransfer, { transferKey: '' }), {
    code: 'invalid_input',
    message: /`payload\.transferKey`/,
  });
  await assert.rejects(enqueue(db.pool, settleTransfer, { transferKey: 'contract:1', amount: 5 } as any), {
    code: 'invalid_input',
    path: ['payload', 'amount'],
    message: /got 5/,
  });
  assert.equal(await jobCount(), jobsBefore);
  await assertLedgerInvariants(db.pool);
});

test('anything but a task made by defineTask is unknown_task, and adds no job', async () => {
  const jobsBefore = await jobCount();
  const notTasks: unknown[] = ['ledger.settle_transfer', { name: 'ledger.settle_transfer' }, settleTransfer.payload, undefined, null];
  for (const task of notTasks) {
    await assert.rejects(enqueue(db.pool, task as any, { transferKey: 'unknown-task:1' }), {
      code: 'unknown_task',
      message: /`task` to be a task made by defineTask/,
    });
  }
  assert.equal(await jobCount(), jobsBefore);
  await assertLedgerInvariants(db.pool);
});
