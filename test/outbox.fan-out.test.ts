import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import * as databases from '@databases/pg';
import { type ConnectionPool } from '@databases/pg';
import { object, size, string } from 'superstruct';
import { defineTask, fanOut, isLedgerboxError, limits, InvalidInputError, type DatabaseHandle, type ErrorCode } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';

// The @databases pool must be disposed before useTestDatabase drops the database; `after`
// hooks run in the order they are registered, so this one is registered first.
let databasesPool: ConnectionPool | undefined;
after(async () => databasesPool?.dispose());

const db = await useTestDatabase();
const createConnectionPool: typeof databases.default.default = (databases.default as any).default ?? databases.default;
databasesPool = createConnectionPool({ connectionString: db.connectionString, bigIntMode: 'bigint' });
const databasesHandle: ConnectionPool = databasesPool;

// A job row the database refuses: a job whose customer id starts with `poisoned:`.
await db.pool.query(`
  create function public.refuse_poisoned_job() returns trigger language plpgsql as $$
  begin
    raise exception 'refused poisoned job %', new.payload->>'customerId';
  end
  $$;
  create trigger refuse_poisoned_job before insert on graphile_worker._private_jobs
    for each row when (new.payload->>'customerId' like 'poisoned:%') execute function public.refuse_poisoned_job();`);

/** Each test fans out its own task, so its jobs are told apart by task name. */
const statementTask = (name: string) => defineTask(`fan_out.${name}`, object({ customerId: size(string(), 1, 200) }));
const customerIds = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}:${index}`);
const toStatement = (customerId: string) => ({ customerId });

interface JobRow {
  customerId: string;
  runAt_ms: number;
  queue: string | null;
  key: string | null;
  priority: number;
  maxAttempts: number;
}

/** graphile-worker's job rows for one task (graphile_worker.jobs hides the payload). */
async function jobsOf(taskName: string): Promise<JobRow[]> {
  const { rows } = await db.pool.query(
    `select j.payload->>'customerId' as customer_id, (extract(epoch from j.run_at) * 1000)::bigint::text as run_at_ms,
       q.queue_name, j.key, j.priority, j.max_attempts
     from graphile_worker._private_jobs j
     join graphile_worker._private_tasks t on t.id = j.task_id
     left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
     where t.identifier = $1
     order by j.run_at, j.id`,
    [taskName],
  );
  return rows.map((row) => ({
    customerId: row.customer_id,
    runAt_ms: Number(row.run_at_ms),
    queue: row.queue_name,
    key: row.key,
    priority: row.priority,
    maxAttempts: row.max_attempts,
  }));
}

/** Everything a refused fan-out might have written: jobs, and the task and queue rows add_jobs makes. */
async function jobTables(): Promise<Record<string, number>> {
  const { rows } = await db.pool.query(`
    select
      (select count(*)::int from graphile_worker._private_jobs) as jobs,
      (select count(*)::int from graphile_worker._private_tasks) as tasks,
      (select count(*)::int from graphile_worker._private_job_queues) as queues`);
  return rows[0];
}

// ---------------------------------------------------------------------------------------------
// What a fan-out writes.

test('a fan-out of 10,000 ids adds one job per id in one call, run times spread evenly over the window', async () => {
  const task = statementTask('spread');
  const ids = customerIds('spread', 10_000);
  const startAt = new Date('2031-03-01T08:00:00.000Z');
  const spreadOver_ms = 3_600_007; // not a multiple of 10,000: gaps of 360 and 361 ms

  const result = await fanOut(db.pool, task, ids, toStatement, { startAt, spreadOver_ms });

  const runAt_ms = (index: number) => startAt.getTime() + Math.floor((index * spreadOver_ms) / ids.length);
  assert.deepEqual(result, { jobs: 10_000, firstRunAt: startAt, lastRunAt: new Date(runAt_ms(9_999)) });
  const jobs = await jobsOf(task.name);
  assert.equal(jobs.length, 10_000);
  // One job per id, each carrying its id, at startAt + floor(i × window / n).
  assert.deepEqual(
    jobs.map((job) => [job.customerId, job.runAt_ms]),
    ids.map((id, index) => [id, runAt_ms(index)]),
  );
  assert.equal(jobs[0]!.runAt_ms, startAt.getTime());
  assert.ok(jobs.at(-1)!.runAt_ms < startAt.getTime() + spreadOver_ms);
  const gaps_ms = jobs.slice(1).map((job, index) => job.runAt_ms - jobs[index]!.runAt_ms);
  assert.ok(Math.max(...gaps_ms) - Math.min(...gaps_ms) <= 1, `even gaps: ${Math.min(...gaps_ms)} to ${Math.max(...gaps_ms)} ms`);
  assert.deepEqual(new Set(gaps_ms), new Set([360, 361]));
  assert.ok(jobs.every((job) => job.queue === null && job.key === null && job.priority === 0 && job.maxAttempts === 25));
});

test('without a window every job runs at startAt, by default now on this host’s clock', async () => {
  const task = statementTask('now');
  const before_ms = Date.now();
  const result = await fanOut(db.pool, task, customerIds('now', 50), toStatement);
  const after_ms = Date.now();

  assert.equal(result.jobs, 50);
  assert.equal(result.firstRunAt.getTime(), result.lastRunAt.getTime());
  assert.ok(before_ms <= result.firstRunAt.getTime() && result.firstRunAt.getTime() <= after_ms);
  const jobs = await jobsOf(task.name);
  assert.equal(jobs.length, 50);
  assert.ok(jobs.every((job) => job.runAt_ms === result.firstRunAt.getTime()));

  const fromString = await fanOut(db.pool, statementTask('now-string'), ['a', 'b'], toStatement, {
    startAt: '2031-03-01T09:00:00+01:00',
    spreadOver_ms: 1_000,
  });
  assert.deepEqual(fromString, { jobs: 2, firstRunAt: new Date('2031-03-01T08:00:00.000Z'), lastRunAt: new Date('2031-03-01T08:00:00.500Z') });
});

test('more ids than one statement takes go in batches of enqueue_batch_max, all in one transaction', async () => {
  const task = statementTask('batches');
  const ids = customerIds('batches', 2 * limits.enqueue_batch_max + 5_000);
  // Each INSERT into graphile-worker's job table records its transaction and how many rows it added.
  await db.pool.query(`
    create table public.job_statements (transaction_id text, jobs int);
    create function public.log_job_statement() returns trigger language plpgsql as $$
    begin
      insert into public.job_statements select pg_current_xact_id()::text, count(*) from inserted;
      return null;
    end
    $$;
    create trigger log_job_statement after insert on graphile_worker._private_jobs
      referencing new table as inserted for each statement execute function public.log_job_statement();`);
  try {
    const result = await fanOut(db.pool, task, ids, toStatement);
    assert.equal(result.jobs, ids.length);
  } finally {
    await db.pool.query(`drop trigger log_job_statement on graphile_worker._private_jobs`);
  }

  const { rows } = await db.pool.query(`select transaction_id, jobs from public.job_statements`);
  assert.deepEqual(
    rows.map((row) => row.jobs),
    [limits.enqueue_batch_max, limits.enqueue_batch_max, 5_000],
  );
  assert.equal(new Set(rows.map((row) => row.transaction_id)).size, 1, 'one transaction');
  assert.deepEqual(
    (await jobsOf(task.name)).map((job) => job.customerId).sort(),
    [...ids].sort(),
  );
});

test('queueConcurrency N puts the jobs round-robin into N named queues', async () => {
  const task = statementTask('queues');
  const ids = customerIds('queues', 1_000);
  await fanOut(db.pool, task, ids, toStatement, { queue: 'statements', queueConcurrency: 7, spreadOver_ms: 60_000, startAt: '2031-03-01T00:00:00Z' });

  const jobs = await jobsOf(task.name);
  const perQueue = Object.fromEntries(
    Array.from({ length: 7 }, (_, queue) => [`statements:${queue}`, jobs.filter((job) => job.queue === `statements:${queue}`).length]),
  );
  // 1,000 = 7 × 142 + 6
  assert.deepEqual(perQueue, {
    'statements:0': 143,
    'statements:1': 143,
    'statements:2': 143,
    'statements:3': 143,
    'statements:4': 143,
    'statements:5': 143,
    'statements:6': 142,
  });
  const queueOf = new Map(jobs.map((job) => [job.customerId, job.queue]));
  assert.ok(ids.every((id, index) => queueOf.get(id) === `statements:${index % 7}`), 'id i goes to queue i mod N');
});

test('queue alone puts every job in that named queue; priority and maxAttempts apply; the task’s defaults fill the gaps', async () => {
  const queued = statementTask('one-queue');
  await fanOut(db.pool, queued, customerIds('one-queue', 20), toStatement, { queue: 'statements.serial', priority: -3, maxAttempts: 4 });
  const jobs = await jobsOf(queued.name);
  assert.equal(jobs.length, 20);
  assert.ok(jobs.every((job) => job.queue === 'statements.serial' && job.priority === -3 && job.maxAttempts === 4));

  const withDefaults = defineTask('fan_out.defaults', object({ customerId: string() }), { queue: 'nightly', priority: 5, maxAttempts: 2 });
  await fanOut(db.pool, withDefaults, customerIds('defaults', 3), toStatement);
  await fanOut(db.pool, withDefaults, customerIds('defaults-overridden', 3), toStatement, { queue: 'nightly.fast', queueConcurrency: 2, priority: 1 });
  assert.deepEqual(
    (await jobsOf(withDefaults.name)).map(({ customerId, queue, priority, maxAttempts }) => ({ customerId, queue, priority, maxAttempts })).sort((a, b) => (a.customerId < b.customerId ? -1 : 1)),
    [
      { customerId: 'defaults-overridden:0', queue: 'nightly.fast:0', priority: 1, maxAttempts: 2 },
      { customerId: 'defaults-overridden:1', queue: 'nightly.fast:1', priority: 1, maxAttempts: 2 },
      { customerId: 'defaults-overridden:2', queue: 'nightly.fast:0', priority: 1, maxAttempts: 2 },
      { customerId: 'defaults:0', queue: 'nightly', priority: 5, maxAttempts: 2 },
      { customerId: 'defaults:1', queue: 'nightly', priority: 5, maxAttempts: 2 },
      { customerId: 'defaults:2', queue: 'nightly', priority: 5, maxAttempts: 2 },
    ],
  );
});

test('with jobKeyPrefix, running the same fan-out twice leaves 10,000 jobs, not 20,000, at the second run’s times', async () => {
  const task = statementTask('rerun');
  const ids = customerIds('rerun', 10_000);
  const first = await fanOut(db.pool, task, ids, toStatement, { jobKeyPrefix: 'rerun:', startAt: '2031-04-01T00:00:00Z', spreadOver_ms: 10_000 });
  const second = await fanOut(db.pool, task, ids, toStatement, { jobKeyPrefix: 'rerun:', startAt: '2031-04-02T00:00:00Z', spreadOver_ms: 10_000 });

  assert.equal(first.jobs, 10_000);
  assert.equal(second.jobs, 10_000);
  const jobs = await jobsOf(task.name);
  assert.equal(jobs.length, 10_000);
  assert.deepEqual(
    jobs.map((job) => [job.key, job.customerId, job.runAt_ms]),
    ids.map((id, index) => [`rerun:${id}`, id, Date.parse('2031-04-02T00:00:00Z') + index]),
  );

  // Without job keys a second run is a second set of jobs.
  const unkeyed = statementTask('rerun-unkeyed');
  await fanOut(db.pool, unkeyed, customerIds('rerun-unkeyed', 100), toStatement);
  await fanOut(db.pool, unkeyed, customerIds('rerun-unkeyed', 100), toStatement);
  assert.equal((await jobsOf(unkeyed.name)).length, 200);
});

// ---------------------------------------------------------------------------------------------
// All or none.

test('one payload failing the task’s contract adds no job at all: invalid_input naming the id', async () => {
  const task = statementTask('contract');
  const ids = customerIds('contract', 2 * limits.enqueue_batch_max + 1);
  const poisoned = ids[15_000]!;
  const before = await jobTables();

  const cases: { name: string; toPayload: (id: string) => unknown; path: string; shows: string }[] = [
    {
      name: 'a nested object (state, not an identifier)',
      toPayload: (id) => (id === poisoned ? { customerId: { id, balance: 100 } } : { customerId: id }),
      path: 'ids.15000.payload',
      shows: '"balance":100',
    },
    {
      name: 'a field of the wrong type',
      toPayload: (id) => (id === poisoned ? { customerId: 15_000 } : { customerId: id }),
      path: 'ids.15000.payload.customerId',
      shows: 'got 15000',
    },
    {
      name: 'a field the contract does not know',
      toPayload: (id) => (id === poisoned ? { customerId: id, amount: 5 } : { customerId: id }),
      path: 'ids.15000.payload.amount',
      shows: 'got 5',
    },
  ];
  for (const { name, toPayload, path, shows } of cases) {
    await assert.rejects(fanOut(db.pool, task, ids, toPayload as typeof toStatement), (error: unknown) => {
      assert.ok(error instanceof InvalidInputError, name);
      assert.equal(error.code, 'invalid_input', name);
      assert.equal(error.path.join('.'), path, `${name}: ${error.message}`);
      assert.ok(error.message.includes(`\`${path}\``), `${name}: ${error.message}`);
      assert.ok(error.message.includes(shows), `${name}: ${error.message} shows ${shows}`);
      assert.ok(error.message.includes(`for id "${poisoned}"`), `${name}: ${error.message} names the id`);
      return true;
    });
  }
  // toPayload's own failure is passed on as it is, and nothing is written either.
  await assert.rejects(
    fanOut(db.pool, task, ids, (id) => {
      if (id === poisoned) throw new Error(`no customer ${id}`);
      return { customerId: id };
    }),
    { message: `no customer ${poisoned}` },
  );
  assert.deepEqual(await jobTables(), before);
});

// Refused in the last batch: the batches before it are undone too.
test('a job refused by the database in the last batch undoes the whole fan-out', async () => {
  const task = statementTask('refused');
  const ids = [...customerIds('refused', limits.enqueue_batch_max + 500), 'poisoned:1'];
  const before = await jobTables();
  await assert.rejects(fanOut(db.pool, task, ids, toStatement), /refused poisoned job poisoned:1/);
  assert.deepEqual(await jobTables(), before);
  assert.deepEqual(await jobsOf(task.name), []);
});

test('inside a node-postgres host transaction: visible only inside it, gone when it rolls back, kept when it commits', async () => {
  const task = statementTask('host-pg');
  const ids = customerIds('host-pg', 5_000);
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await fanOut(client, task, ids, toStatement, { spreadOver_ms: 60_000 });
    const { rows } = await client.query(
      `select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where t.identifier = $1`,
      [task.name],
    );
    assert.equal(rows[0].n, 5_000, 'visible inside the host’s transaction');
    assert.deepEqual(await jobsOf(task.name), [], 'and nowhere else yet');
    await client.query('rollback');
    assert.deepEqual(await jobsOf(task.name), []);

    // A fan-out the database refuses is undone to its savepoint; the host's transaction carries on.
    await client.query('begin');
    await client.query(`create table public.host_runs (id text primary key)`);
    await assert.rejects(fanOut(client, task, [...ids, 'poisoned:2'], toStatement), /refused poisoned job/);
    await fanOut(client, task, ids.slice(0, 10), toStatement);
    await client.query(`insert into public.host_runs values ('nightly')`);
    await client.query('commit');
  } finally {
    client.release();
  }
  assert.deepEqual(
    (await jobsOf(task.name)).map((job) => job.customerId).sort(),
    ids.slice(0, 10).sort(),
  );
  assert.deepEqual((await db.pool.query(`select id from public.host_runs`)).rows, [{ id: 'nightly' }]);
});

test('inside an @databases/pg transaction that rolls back, no job remains', async () => {
  const task = statementTask('host-databases');
  class HostRollback extends Error {}
  await assert.rejects(
    databasesHandle.tx(async (db) => {
      const result = await fanOut(db, task, customerIds('host-databases', 2_000), toStatement, { queue: 'host', queueConcurrency: 3 });
      assert.equal(result.jobs, 2_000);
      throw new HostRollback();
    }),
    HostRollback,
  );
  assert.deepEqual(await jobsOf(task.name), []);
});

// ---------------------------------------------------------------------------------------------
// Invalid input: refused before the database is touched.

const refusedTask = statementTask('refused-input');

interface Refusal {
  name: string;
  call: () => Promise<unknown>;
  code: ErrorCode;
  path?: string;
  shows?: string;
}

const fanOutWith = (ids: unknown, options?: unknown, toPayload: unknown = toStatement) =>
  () => fanOut(db.pool, refusedTask, ids as string[], toPayload as typeof toStatement, options as any);
const two = ['customer:1', 'customer:2'];
const tooLong = 'x'.repeat(limits.key_length_max + 1);

const refusals: Refusal[] = [
  // ids
  { name: 'ids not an array', call: fanOutWith('customer:1'), code: 'invalid_input', path: 'ids', shows: '"customer:1"' },
  { name: 'ids null', call: fanOutWith(null), code: 'invalid_input', path: 'ids', shows: 'got null' },
  { name: 'no ids', call: fanOutWith([]), code: 'invalid_input', path: 'ids', shows: 'length of `0`' },
  {
    name: 'more ids than fan_out_ids_max (refused by count before any is looked at)',
    call: fanOutWith(Array.from({ length: limits.fan_out_ids_max + 1 }, (_, index) => index)),
    code: 'invalid_input',
    path: 'ids',
    shows: `length of \`${limits.fan_out_ids_max + 1}\``,
  },
  { name: 'an empty id', call: fanOutWith(['customer:1', '']), code: 'invalid_input', path: 'ids.1', shows: 'got "" (0 characters)' },
  { name: 'a number id', call: fanOutWith(['customer:1', 'customer:2', 42]), code: 'invalid_input', path: 'ids.2', shows: 'got 42' },
  { name: 'a null id', call: fanOutWith([null]), code: 'invalid_input', path: 'ids.0', shows: 'got null' },
  { name: 'an id too long', call: fanOutWith(['customer:1', tooLong]), code: 'invalid_input', path: 'ids.1', shows: 'xxxxxxxx' },
  {
    name: 'a duplicate id',
    call: fanOutWith(['customer:1', 'customer:2', 'customer:3', 'customer:2']),
    code: 'invalid_input',
    path: 'ids.3',
    shows: 'id "customer:2" appears more than once (also `ids.1`)',
  },
  // toPayload
  { name: 'toPayload not a function', call: fanOutWith(two, {}, { customerId: 'x' }), code: 'invalid_input', path: 'toPayload', shows: '{"customerId":"x"}' },
  // options
  { name: 'options null', call: fanOutWith(two, null), code: 'invalid_input', path: 'options', shows: 'got null' },
  { name: 'an unknown option', call: fanOutWith(two, { runAt: '2031-01-01T00:00:00Z' }), code: 'invalid_input', path: 'options.runAt', shows: '"2031-01-01T00:00:00Z"' },
  { name: 'a negative window', call: fanOutWith(two, { spreadOver_ms: -1 }), code: 'invalid_input', path: 'options.spreadOver_ms', shows: '`-1`' },
  { name: 'a fractional window', call: fanOutWith(two, { spreadOver_ms: 1.5 }), code: 'invalid_input', path: 'options.spreadOver_ms', shows: 'got 1.5' },
  { name: 'a window as a string', call: fanOutWith(two, { spreadOver_ms: '1000' }), code: 'invalid_input', path: 'options.spreadOver_ms', shows: '"1000"' },
  {
    name: 'a window over 7 days',
    call: fanOutWith(two, { spreadOver_ms: limits.fan_out_spread_ms_max + 1 }),
    code: 'invalid_input',
    path: 'options.spreadOver_ms',
    shows: `${limits.fan_out_spread_ms_max + 1}`,
  },
  { name: 'startAt not a time', call: fanOutWith(two, { startAt: 'tomorrow' }), code: 'invalid_input', path: 'options.startAt', shows: '"tomorrow"' },
  { name: 'startAt an Invalid Date', call: fanOutWith(two, { startAt: new Date('nope') }), code: 'invalid_input', path: 'options.startAt', shows: 'Invalid Date' },
  { name: 'startAt without a zone', call: fanOutWith(two, { startAt: '2031-01-01T10:00:00' }), code: 'invalid_input', path: 'options.startAt', shows: '"2031-01-01T10:00:00"' },
  {
    name: 'startAt so late the window runs past the last date',
    call: fanOutWith(two, { startAt: new Date(8.64e15), spreadOver_ms: 1_000 }),
    code: 'invalid_input',
    path: 'options.startAt',
    shows: 'past the last date',
  },
  { name: 'a queue name with spaces', call: fanOutWith(two, { queue: 'nightly statements' }), code: 'invalid_input', path: 'options.queue', shows: '"nightly statements"' },
  { name: 'an empty queue name', call: fanOutWith(two, { queue: '' }), code: 'invalid_input', path: 'options.queue', shows: 'length of `0`' },
  { name: 'queueConcurrency 0', call: fanOutWith(two, { queue: 'q', queueConcurrency: 0 }), code: 'invalid_input', path: 'options.queueConcurrency', shows: '`0`' },
  {
    name: 'queueConcurrency over fan_out_queues_max',
    call: fanOutWith(two, { queue: 'q', queueConcurrency: limits.fan_out_queues_max + 1 }),
    code: 'invalid_input',
    path: 'options.queueConcurrency',
    shows: `${limits.fan_out_queues_max + 1}`,
  },
  { name: 'fractional queueConcurrency', call: fanOutWith(two, { queue: 'q', queueConcurrency: 2.5 }), code: 'invalid_input', path: 'options.queueConcurrency', shows: '2.5' },
  {
    name: 'queueConcurrency without a queue',
    call: fanOutWith(two, { queueConcurrency: 4 }),
    code: 'invalid_input',
    path: 'options.queueConcurrency',
    shows: 'needs `options.queue`; got 4 without a queue',
  },
  {
    name: 'a queue name too long for its numbered queues',
    call: fanOutWith(two, { queue: 'q'.repeat(98), queueConcurrency: 11 }),
    code: 'invalid_input',
    path: 'options.queue',
    shows: 'would be 101 characters, at most 100',
  },
  { name: 'an empty jobKeyPrefix', call: fanOutWith(two, { jobKeyPrefix: '' }), code: 'invalid_input', path: 'options.jobKeyPrefix', shows: 'length of `0`' },
  {
    name: 'a job key (prefix + id) too long',
    call: fanOutWith(['customer:1', 'c'.repeat(limits.key_length_max - 5)], { jobKeyPrefix: 'nightly:' }),
    code: 'invalid_input',
    path: 'ids.1',
    shows: `would be ${limits.key_length_max + 3} characters`,
  },
  { name: 'a priority out of range', call: fanOutWith(two, { priority: 1e6 }), code: 'invalid_input', path: 'options.priority', shows: '1000000' },
  { name: 'maxAttempts 0', call: fanOutWith(two, { maxAttempts: 0 }), code: 'invalid_input', path: 'options.maxAttempts', shows: '`0`' },
  // the task and the handle
  {
    name: 'a task not made by defineTask',
    call: () => fanOut(db.pool, { name: 'fan_out.refused-input' } as any, two, toStatement),
    code: 'unknown_task',
    shows: '`task` to be a task made by defineTask',
  },
  {
    name: 'a handle ledgerbox does not know',
    call: () => fanOut({} as unknown as DatabaseHandle, refusedTask, two, toStatement),
    code: 'unsupported_database_handle',
  },
];

test('every kind of invalid input is refused with its code, naming the path and the value, and nothing is written', async () => {
  const before = await jobTables();
  for (const { name, call, code, path, shows } of refusals) {
    await assert.rejects(
      call,
      (error: unknown) => {
        assert.ok(isLedgerboxError(error), `${name}: expected a LedgerboxError, got ${String(error)}`);
        assert.equal(error.code, code, `${name}: ${error.message}`);
        if (path !== undefined) {
          assert.ok(error instanceof InvalidInputError, name);
          assert.equal(error.path.join('.'), path, `${name}: ${error.message}`);
          assert.ok(error.message.includes(`\`${path}\``), `${name}: the message names \`${path}\`: ${error.message}`);
        }
        if (shows !== undefined) assert.ok(error.message.includes(shows), `${name}: the message shows ${shows}: ${error.message}`);
        return true;
      },
      name,
    );
  }
  assert.deepEqual(await jobTables(), before);
});

test('exactly fan_out_ids_max ids pass the checks', async () => {
  // An unknown handle is refused only after every input was checked, so nothing is written.
  const ids = customerIds('at-bound', limits.fan_out_ids_max);
  await assert.rejects(fanOut({} as unknown as DatabaseHandle, refusedTask, ids, toStatement, { jobKeyPrefix: 'p:' }), { code: 'unsupported_database_handle' });
});
