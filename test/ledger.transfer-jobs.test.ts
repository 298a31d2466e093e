// Issue 12: a retried request must not double its follow-up jobs. postTransfer's and
// postTransfers' `jobs` are added in the transfer's own transaction by the call that writes the
// transfer, and by no replay; they are checked as enqueue checks them before anything is
// written; a job that cannot be added undoes its transfer. Every assertion reads the rows
// (ledgerbox.transfers, graphile-worker's jobs), never whether some code ran.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { object, string } from 'superstruct';
import {
  InvalidInputError,
  createAccount,
  defineTask,
  getTransfer,
  isLedgerboxError,
  postTransfer,
  postTransfers,
  reverseTransfer,
  type TransferInput,
} from '../src/index.ts';
import { inTransaction } from '../src/db/handle.ts';
import { writeTransfer } from '../src/ledger/posting.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'cash', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'customer:42', currency: 'USD' });
await createAccount(db.pool, { key: 'customer:43', currency: 'USD' });

const sendReceipt = defineTask('payments.send_receipt', object({ transferKey: string() }));
const notifyLedger = defineTask('payments.notify_ledger', object({ transferKey: string() }), { queue: 'ledger-notices', maxAttempts: 3 });

interface JobRow {
  task: string;
  payload: Record<string, unknown>;
  key: string | null;
  queue: string | null;
  priority: number;
  max_attempts: number;
  run_at: Date;
}

/** graphile-worker's job rows whose payload names `transferKey` (every job here does), in the order added. */
async function jobsFor(transferKey: string): Promise<JobRow[]> {
  const { rows } = await db.pool.query<JobRow>(
    `select t.identifier as task, j.payload, j.key, q.queue_name as queue, j.priority::int as priority, j.max_attempts::int as max_attempts, j.run_at
     from graphile_worker._private_jobs j
     join graphile_worker._private_tasks t on t.id = j.task_id
     left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
     where j.payload->>'transferKey' = $1
     order by j.id`,
    [transferKey],
  );
  return rows;
}

async function transfersWithKey(key: string): Promise<number> {
  return (await db.pool.query<{ n: number }>(`select count(*)::int as n from ledgerbox.transfers where key = $1`, [key])).rows[0]!.n;
}

async function totals(): Promise<{ transfers: number; entries: number; jobs: number }> {
  const { rows } = await db.pool.query<{ transfers: number; entries: number; jobs: number }>(
    `select (select count(*)::int from ledgerbox.transfers) as transfers, (select count(*)::int from ledgerbox.entries) as entries,
       (select count(*)::int from graphile_worker._private_jobs) as jobs`,
  );
  return rows[0]!;
}

function receiptFor(key: string): TransferInput {
  return { key, legs: [{ from: 'cash', to: 'customer:42', amount: usd(25_00n) }], metadata: { order: key }, jobs: [{ task: sendReceipt, payload: { transferKey: key } }] };
}

/** The README's quick start: the transfer and its receipt inside the service's own transaction. */
async function inHostTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
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

test('the same request twice with jobs adds exactly one job: on a pool, and inside a host transaction as the quick start does', async () => {
  const first = await postTransfer(db.pool, receiptFor('retry:pool'));
  const again = await postTransfer(db.pool, receiptFor('retry:pool'));
  assert.equal(first.replayed, false);
  assert.equal(again.replayed, true);
  assert.equal(again.id, first.id);
  assert.equal(await transfersWithKey('retry:pool'), 1);
  assert.deepEqual(
    (await jobsFor('retry:pool')).map((job) => ({ task: job.task, payload: job.payload })),
    [{ task: 'payments.send_receipt', payload: { transferKey: 'retry:pool' } }],
  );

  // the retried request of the issue: the whole host transaction runs again
  const firstInHost = await inHostTransaction((client) => postTransfer(client, receiptFor('retry:host')));
  const againInHost = await inHostTransaction((client) => postTransfer(client, receiptFor('retry:host')));
  assert.deepEqual([firstInHost.replayed, againInHost.replayed], [false, true]);
  assert.equal(await transfersWithKey('retry:host'), 1);
  assert.equal((await jobsFor('retry:host')).length, 1);

  // a retry with other jobs, or none, is still the same transfer: it adds nothing
  await postTransfer(db.pool, { ...receiptFor('retry:pool'), jobs: [{ task: notifyLedger, payload: { transferKey: 'retry:pool' } }] });
  await postTransfer(db.pool, { ...receiptFor('retry:pool'), jobs: [] });
  assert.equal((await jobsFor('retry:pool')).length, 1);
  // and a different request under the key is refused, adding nothing either
  await assert.rejects(postTransfer(db.pool, { ...receiptFor('retry:pool'), legs: [{ from: 'cash', to: 'customer:42', amount: usd(26_00n) }] }), {
    code: 'exists_with_different_request',
  });
  assert.equal((await jobsFor('retry:pool')).length, 1);
});

test("a job's options are enqueue's, and reach the job row; the task's defaults apply where the call gives none", async () => {
  const runAt = new Date('2031-01-02T03:04:05.000Z');
  await postTransfer(db.pool, {
    ...receiptFor('options:1'),
    jobs: [
      { task: sendReceipt, payload: { transferKey: 'options:1' }, options: { jobKey: 'receipt:options:1', queue: 'receipts', runAt, maxAttempts: 7, priority: 5 } },
      { task: notifyLedger, payload: { transferKey: 'options:1' } },
    ],
  });
  // graphile-worker adds a call's jobs grouped by task, so by task here
  const jobs = (await jobsFor('options:1')).sort((a, b) => a.task.localeCompare(b.task));
  assert.deepEqual(
    jobs.map(({ task, key, queue, priority, max_attempts }) => ({ task, key, queue, priority, max_attempts })),
    [
      { task: 'payments.notify_ledger', key: null, queue: 'ledger-notices', priority: 0, max_attempts: 3 },
      { task: 'payments.send_receipt', key: 'receipt:options:1', queue: 'receipts', priority: 5, max_attempts: 7 },
    ],
  );
  assert.equal(jobs[1]!.run_at.toISOString(), runAt.toISOString());
});

test('a rolled-back host transaction leaves neither the transfer nor its job; a commit afterwards writes both', async () => {
  const before = await totals();
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const transfer = await postTransfer(client, receiptFor('rolled-back:1'));
    assert.equal(transfer.replayed, false);
    // inside the transaction both are there, for this transaction only
    const { rows } = await client.query(`select count(*)::int as n from graphile_worker._private_jobs where payload->>'transferKey' = 'rolled-back:1'`);
    assert.equal(rows[0].n, 1);
    await client.query('rollback');
  } finally {
    client.release();
  }
  assert.deepEqual(await totals(), before);
  assert.equal(await transfersWithKey('rolled-back:1'), 0);
  assert.deepEqual(await jobsFor('rolled-back:1'), []);

  const retried = await inHostTransaction((client) => postTransfer(client, receiptFor('rolled-back:1')));
  assert.equal(retried.replayed, false, 'nothing of the rolled-back attempt was kept');
  assert.equal((await jobsFor('rolled-back:1')).length, 1);
});

test('invalid jobs are refused before anything is written: a task not made by defineTask, a bad payload, an unknown option', async () => {
  const misspeltTask = { name: 'payments.send_receipt', payload: object({ transferKey: string() }), defaults: {} };
  const cases: { name: string; jobs: unknown[]; code: string; path?: string }[] = [
    { name: 'a task not made by defineTask', jobs: [{ task: misspeltTask, payload: { transferKey: 'invalid:1' } }], code: 'unknown_task' },
    { name: "a payload against the task's contract", jobs: [{ task: sendReceipt, payload: { transferKey: 42 } }], code: 'invalid_input', path: 'transfer.jobs.0.payload.transferKey' },
    { name: 'a payload that is not identifiers only', jobs: [{ task: sendReceipt, payload: { transferKey: 'invalid:1', amount: 25.5 } }], code: 'invalid_input', path: 'transfer.jobs.0.payload' },
    { name: 'an unknown option', jobs: [{ task: sendReceipt, payload: { transferKey: 'invalid:1' }, options: { jobkey: 'receipt:1' } }], code: 'invalid_input', path: 'transfer.jobs.0.options.jobkey' },
    { name: 'an option out of range', jobs: [{ task: sendReceipt, payload: { transferKey: 'invalid:1' }, options: { maxAttempts: 0 } }], code: 'invalid_input', path: 'transfer.jobs.0.options.maxAttempts' },
    { name: 'options misspelt', jobs: [{ task: sendReceipt, payload: { transferKey: 'invalid:1' }, option: { jobKey: 'receipt:1' } }], code: 'invalid_input', path: 'transfer.jobs.0.option' },
    {
      name: 'the second job of two, so the first is not added alone',
      jobs: [{ task: sendReceipt, payload: { transferKey: 'invalid:1' } }, { task: sendReceipt, payload: { transferKey: 42n } }],
      code: 'invalid_input',
      path: 'transfer.jobs.1.payload',
    },
    {
      name: 'a job key twice',
      jobs: [
        { task: sendReceipt, payload: { transferKey: 'invalid:1' }, options: { jobKey: 'receipt:twice' } },
        { task: notifyLedger, payload: { transferKey: 'invalid:1' }, options: { jobKey: 'receipt:twice' } },
      ],
      code: 'invalid_input',
      path: 'transfer.jobs.1.options.jobKey',
    },
    {
      name: 'two job key modes in one call',
      jobs: [
        { task: sendReceipt, payload: { transferKey: 'invalid:1' }, options: { jobKey: 'receipt:mode:1', jobKeyMode: 'preserve_run_at' } },
        { task: notifyLedger, payload: { transferKey: 'invalid:1' }, options: { jobKey: 'receipt:mode:2' } },
      ],
      code: 'invalid_input',
      path: 'transfer.jobs.1.options.jobKeyMode',
    },
    { name: 'jobs that are not a list', jobs: { task: sendReceipt, payload: { transferKey: 'invalid:1' } } as never, code: 'invalid_input', path: 'transfer.jobs' },
  ];
  const before = await totals();
  for (const { name, jobs, code, path } of cases) {
    for (const handle of ['pool', 'host transaction'] as const) {
      const call = (db: pg.Pool | pg.PoolClient) => postTransfer(db, { ...receiptFor('invalid:1'), jobs: jobs as never });
      const attempt =
        handle === 'pool'
          ? call(db.pool)
          : inHostTransaction(async (client) => {
              const refused = await call(client).then(
                () => undefined,
                (error: unknown) => error,
              );
              // the caller's transaction is still usable after the refusal
              await client.query('select 1');
              if (refused !== undefined) throw refused;
            });
      const error = await attempt.then(
        () => assert.fail(`${name} (${handle}): accepted`),
        (error: unknown) => error,
      );
      assert.ok(isLedgerboxError(error, code as never), `${name} (${handle}): expected ${code}, got ${String(error)}`);
      if (path !== undefined) {
        assert.ok(error instanceof InvalidInputError, `${name}: ${String(error)}`);
        assert.equal(error.path.join('.'), path, `${name}: ${error.message}`);
        assert.ok(error.message.includes(`\`${path}\``), `${name}: the message names \`${path}\`: ${error.message}`);
      }
      assert.deepEqual(await totals(), before, `${name} (${handle}): no transfer, no entry, no job`);
    }
  }

  // and in a batch: no transfer of it is written, not even the valid ones before the bad job
  const batch: TransferInput[] = [receiptFor('invalid:batch:0'), { ...receiptFor('invalid:batch:1'), jobs: [{ task: sendReceipt, payload: { transferKey: 'invalid:batch:1' }, options: { priorty: 1 } as never }] }];
  await assert.rejects(postTransfers(db.pool, batch), (error: unknown) => {
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.equal(error.path.join('.'), 'transfers.1.jobs.0.options.priorty');
    return true;
  });
  await assert.rejects(postTransfers(db.pool, [receiptFor('invalid:batch:0'), { ...receiptFor('invalid:batch:1'), jobs: [{ task: {} as never, payload: {} }] }]), { code: 'unknown_task' });
  assert.deepEqual(await totals(), before, 'the refused batches wrote nothing');
});

test('a job that cannot be added undoes its transfer, and the host transaction stays usable', async () => {
  // a host's own rule on graphile-worker's jobs, as a real refusal from the database
  await db.pool.query(`
    create function public.refuse_marked_jobs() returns trigger language plpgsql as $$
    begin
      if new.payload->>'transferKey' like 'refused:%' then
        raise exception 'jobs for % are refused here', new.payload->>'transferKey' using errcode = 'P0001';
      end if;
      return new;
    end $$;
    create trigger refuse_marked_jobs before insert on graphile_worker._private_jobs for each row execute function public.refuse_marked_jobs();`);
  try {
    const before = await totals();
    await assert.rejects(postTransfer(db.pool, receiptFor('refused:pool')), /jobs for refused:pool are refused here/);
    assert.deepEqual(await totals(), before, 'the fast path wrote nothing');

    await inHostTransaction(async (client) => {
      await assert.rejects(postTransfer(client, receiptFor('refused:host')), /jobs for refused:host are refused here/);
      // still usable: the refusal undid only ledgerbox's own writes, and the host goes on
      const ok = await postTransfer(client, receiptFor('refused-not:host'));
      assert.equal(ok.replayed, false);
    });
    assert.equal(await transfersWithKey('refused:host'), 0);
    assert.equal(await transfersWithKey('refused-not:host'), 1);
    assert.equal((await jobsFor('refused-not:host')).length, 1);

    // a batch: the refused job undoes every transfer of it
    const batchBefore = await totals();
    await assert.rejects(postTransfers(db.pool, [receiptFor('refused-not:batch'), receiptFor('refused:batch')]), /jobs for refused:batch are refused here/);
    assert.deepEqual(await totals(), batchBefore, 'the batch wrote nothing');
    assert.equal(await transfersWithKey('refused-not:batch'), 0);
  } finally {
    await db.pool.query(`drop trigger refuse_marked_jobs on graphile_worker._private_jobs; drop function public.refuse_marked_jobs()`);
  }
  // without the rule the same requests go through, with their jobs
  await postTransfer(db.pool, receiptFor('refused:pool'));
  assert.equal((await jobsFor('refused:pool')).length, 1);
});

test("postTransfers adds the jobs of the transfers it writes and none of a replay's", async () => {
  await postTransfers(db.pool, [receiptFor('batch:a'), receiptFor('batch:b')]);
  const transfers = await postTransfers(db.pool, [
    receiptFor('batch:a'),
    receiptFor('batch:c'),
    {
      ...receiptFor('batch:b'),
      jobs: [{ task: notifyLedger, payload: { transferKey: 'batch:b' } }],
    },
    { ...receiptFor('batch:d'), jobs: [{ task: sendReceipt, payload: { transferKey: 'batch:d' } }, { task: notifyLedger, payload: { transferKey: 'batch:d' } }] },
    { key: 'batch:e', legs: [{ from: 'cash', to: 'customer:43', amount: usd(1_00n) }] },
  ]);
  assert.deepEqual(
    transfers.map((transfer) => [transfer.key, transfer.replayed]),
    [
      ['batch:a', true],
      ['batch:c', false],
      ['batch:b', true],
      ['batch:d', false],
      ['batch:e', false],
    ],
  );
  assert.equal((await jobsFor('batch:a')).length, 1, 'the first batch added a, the second did not');
  assert.deepEqual((await jobsFor('batch:b')).map((job) => job.task), ['payments.send_receipt'], "b's replay added neither its receipt again nor the new notice");
  assert.equal((await jobsFor('batch:c')).length, 1);
  assert.deepEqual((await jobsFor('batch:d')).map((job) => job.task).sort(), ['payments.notify_ledger', 'payments.send_receipt']);
  assert.deepEqual(await jobsFor('batch:e'), []);

  // the whole batch again: all replays, no job
  const before = await totals();
  const replayed = await postTransfers(db.pool, [receiptFor('batch:a'), receiptFor('batch:c')]);
  assert.deepEqual(
    replayed.map((transfer) => transfer.replayed),
    [true, true],
  );
  assert.deepEqual(await totals(), before);

  // one job key across two transfers of a batch is one statement's key twice: refused up front
  await assert.rejects(
    postTransfers(db.pool, [
      { ...receiptFor('batch:f'), jobs: [{ task: sendReceipt, payload: { transferKey: 'batch:f' }, options: { jobKey: 'receipt:shared' } }] },
      { ...receiptFor('batch:g'), jobs: [{ task: sendReceipt, payload: { transferKey: 'batch:g' }, options: { jobKey: 'receipt:shared' } }] },
    ]),
    (error: unknown) => {
      assert.ok(error instanceof InvalidInputError, String(error));
      assert.equal(error.path.join('.'), 'transfers.1.jobs.0.options.jobKey');
      assert.match(error.message, /`transfers\.0\.jobs\.0`/);
      return true;
    },
  );
  assert.deepEqual(await totals(), before);
});

test('two concurrent postTransfer calls with the same key and jobs: one transfer, one job', async () => {
  // deterministic: the first holds its transaction open while the second is already waiting
  const first = await db.pool.connect();
  try {
    await first.query('begin');
    const written = await postTransfer(first, receiptFor('concurrent:held'));
    const second = postTransfer(db.pool, receiptFor('concurrent:held'));
    // the second is blocked on the accounts the first locked, not finished
    const settled = await Promise.race([second.then(() => 'finished'), new Promise((resolve) => setTimeout(resolve, 200, 'waiting'))]);
    assert.equal(settled, 'waiting');
    await first.query('commit');
    const replay = await second;
    assert.equal(written.replayed, false);
    assert.equal(replay.replayed, true);
    assert.equal(replay.id, written.id);
  } finally {
    first.release();
  }
  assert.equal(await transfersWithKey('concurrent:held'), 1);
  assert.equal((await jobsFor('concurrent:held')).length, 1);

  // and racing freely, on a pool and in host transactions, many keys at once
  const keys = Array.from({ length: 20 }, (_, index) => `concurrent:${index}`);
  const results = await Promise.all(
    keys.flatMap((key) => [
      postTransfer(db.pool, receiptFor(key)),
      inHostTransaction((client) => postTransfer(client, receiptFor(key))),
      postTransfers(db.pool, [receiptFor(key)]).then(([transfer]) => transfer!),
    ]),
  );
  for (const key of keys) {
    const forKey = results.filter((transfer) => transfer.key === key);
    assert.deepEqual(
      forKey.map((transfer) => transfer.replayed).sort(),
      [false, true, true],
      `${key}: exactly one call wrote it`,
    );
    assert.equal(await transfersWithKey(key), 1);
    assert.equal((await jobsFor(key)).length, 1, `${key}: one job`);
  }
});

test('as the application role (ledgerbox_app), which reaches graphile-worker only through ledgerbox, the jobs go with the transfer', async () => {
  const asApp = <T>(work: (client: pg.PoolClient) => Promise<T>) =>
    inHostTransaction(async (client) => {
      await client.query('set local role ledgerbox_app');
      return work(client);
    });
  const written = await asApp((client) => postTransfer(client, receiptFor('app-role:1')));
  const replayed = await asApp((client) => postTransfer(client, receiptFor('app-role:1')));
  const batch = await asApp((client) => postTransfers(client, [receiptFor('app-role:1'), receiptFor('app-role:2')]));
  assert.deepEqual([written.replayed, replayed.replayed, ...batch.map((transfer) => transfer.replayed)], [false, true, true, false]);
  assert.equal((await jobsFor('app-role:1')).length, 1);
  assert.equal((await jobsFor('app-role:2')).length, 1);
});

test("the TypeScript posting path (a replay's, an unusual posting's) adds the jobs when it is the one that writes the transfer", async () => {
  const specs = [{ task: sendReceipt.name, payload: { transferKey: 'typescript:1' }, queue: null, runAt: null, maxAttempts: null, jobKey: null, priority: null }];
  const request = {
    transfer: { key: 'typescript:1', kind: 'posted' as const, metadata: {} },
    legs: [{ from: 'cash', to: 'customer:42', currency: 'USD', amount: 5_00n }],
    phase: 'posted' as const,
    jobs: { specs, jobKeyMode: 'replace' as const },
  };
  const written = await inTransaction(db.pool, (session) => writeTransfer(session, request));
  const replayed = await inTransaction(db.pool, (session) => writeTransfer(session, request));
  assert.deepEqual([written.replayed, replayed.replayed], [false, true]);
  assert.equal((await jobsFor('typescript:1')).length, 1);
  assert.equal((await getTransfer(db.pool, { key: 'typescript:1' })).id, written.id);
});

test('postTransfer, postTransfers, reverseTransfer and getTransfer refuse an option they do not know, naming it, and write nothing', async () => {
  const original = await postTransfer(db.pool, { key: 'options:original', legs: [{ from: 'cash', to: 'customer:43', amount: usd(3_00n) }] });
  const cases: { name: string; call: () => Promise<unknown>; path: string }[] = [
    { name: 'postTransfer', call: () => postTransfer(db.pool, { ...receiptFor('unknown:1'), metdata: { order: 1 } } as never), path: 'transfer.metdata' },
    { name: 'postTransfer, `job` for `jobs`', call: () => postTransfer(db.pool, { key: 'unknown:2', legs: receiptFor('unknown:2').legs, job: receiptFor('unknown:2').jobs } as never), path: 'transfer.job' },
    { name: 'postTransfer, a leg', call: () => postTransfer(db.pool, { key: 'unknown:3', legs: [{ from: 'cash', to: 'customer:42', amount: usd(1_00n), memo: 'x' }] } as never), path: 'transfer.legs.0.memo' },
    { name: 'postTransfers', call: () => postTransfers(db.pool, [receiptFor('unknown:4'), { ...receiptFor('unknown:5'), effectiveDate: '2026-01-01T00:00:00Z' } as never]), path: 'transfers.1.effectiveDate' },
    { name: 'reverseTransfer', call: () => reverseTransfer(db.pool, { key: 'unknown:6', transferId: original.id, reason: 'refund' } as never), path: 'reversal.reason' },
    { name: 'getTransfer', call: () => getTransfer(db.pool, { key: 'options:original', kind: 'posted' } as never), path: 'lookup.kind' },
  ];
  const before = await totals();
  for (const { name, call, path } of cases) {
    const error = await call().then(
      () => assert.fail(`${name}: accepted the unknown option \`${path}\``),
      (error: unknown) => error,
    );
    assert.ok(error instanceof InvalidInputError, `${name}: ${String(error)}`);
    assert.equal(error.code, 'invalid_input');
    assert.equal(error.path.join('.'), path, `${name}: ${error.message}`);
    assert.equal(error.details.path, path, name);
    assert.ok(error.message.includes(`\`${path}\``), `${name}: the message names \`${path}\`: ${error.message}`);
    assert.ok(error.message.includes('unknown option'), `${name}: the message says it is an unknown option: ${error.message}`);
  }
  assert.deepEqual(await totals(), before, 'nothing was written');
});
