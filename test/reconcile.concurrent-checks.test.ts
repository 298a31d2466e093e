import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createAccount, createHold, importStatement, postTransfer } from '../src/index.ts';
import { reconcile } from '../src/reconcile/run.ts';
import type { ReconciliationReport } from '../src/reconcile/types.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

// A run reads the open things (holds, workflows, jobs, statements) on a second connection that
// imports the first one's snapshot, at the same time as the pass over the entries, when its pool
// has an idle connection; on a pool of one it reads them after the pass, on the same connection.
// Both ways must find every kind, and the same findings.

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'ann', currency: 'USD' });
await createAccount(db.pool, { key: 'payouts', currency: 'USD', clearing: true });
await postTransfer(db.pool, { key: 'seed', legs: [{ from: 'world', to: 'ann', amount: usd(1_000n) }] });
await postTransfer(db.pool, { key: 'to-payouts', legs: [{ from: 'ann', to: 'payouts', amount: usd(10n) }] });
const hold = await createHold(db.pool, { key: 'stale-hold', from: 'ann', to: 'world', amount: usd(7n), expiresAt: new Date(Date.now() - 1_000) });
await importStatement(db.pool, {
  source: 'bank:test',
  fileName: 'statement.csv',
  csv: 'account,currency,as_of,balance\nann,USD,2026-01-01T00:00:00Z,123.45\n',
});

/** A pool whose connections the test counts: the concurrent run takes one more than the sequential one. */
function countingPool(max: number): { pool: pg.Pool; connections: () => number } {
  const pool = new pg.Pool({ connectionString: db.connectionString, max });
  db.onClose(() => pool.end());
  let connections = 0;
  // pool.query connects with a callback, a transaction with the promise: both pass through
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) => {
    connections += 1;
    return connect(...args);
  };
  return { pool, connections: () => connections };
}

const summary = (report: ReconciliationReport) =>
  report.findings.map((finding) => `${finding.severity} ${finding.kind} ${finding.subject} ${finding.difference ?? ''}`);

test('every check runs whether the open things are read beside the pass or after it, with the same findings', async () => {
  // drift around the triggers, so the balance checks have something to find as well
  const client = await db.pool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await client.query(`update ledgerbox.accounts set posted_balance = posted_balance + 25 where key = 'world'`);
  } finally {
    await client.query('reset session_replication_role');
    client.release();
  }

  const sequential = countingPool(1);
  const concurrent = countingPool(4);
  // warm the second pool so it has idle connections, as a service's pool does
  await Promise.all([1, 2, 3].map(() => concurrent.pool.query('select 1')));

  const before = { sequential: sequential.connections(), concurrent: concurrent.connections() };
  const alone = await reconcile(sequential.pool, { full: true });
  const beside = await reconcile(concurrent.pool, { full: true });
  assert.equal(concurrent.connections() - before.concurrent, sequential.connections() - before.sequential + 1, 'the second run read on a second connection');

  for (const report of [alone, beside]) {
    assert.deepEqual(
      [...new Set(report.findings.map((finding) => finding.kind))].sort(),
      ['balance_drift', 'clearing_not_zero', 'money_in_limbo', 'statement_difference'],
    );
    assert.equal(report.findings.find((finding) => finding.kind === 'money_in_limbo')!.subject, `money_in_limbo:${hold.id}`);
    assert.equal(report.entriesChecked, 6);
  }
  // the movement since the previous run: everything for the first run, nothing new for the second
  assert.deepEqual(alone.movement, [{ currency: 'USD', moved: 1_010n, transfers: 2 }]);
  assert.deepEqual(beside.movement, []);
  // the balance findings first, then the others, in the same order both ways
  assert.deepEqual(summary(beside), summary(alone));
  assert.deepEqual(beside.workflows, alone.workflows);

  // put the cache back for the file's closing invariant check
  const repair = await db.pool.connect();
  try {
    await repair.query('set session_replication_role = replica');
    await repair.query(`update ledgerbox.accounts set posted_balance = posted_balance - 25 where key = 'world'`);
  } finally {
    await repair.query('reset session_replication_role');
    repair.release();
  }
});

test('the checks beside the pass read the pass’s snapshot: a hold made during a run is in both halves or in neither', async () => {
  const { pool } = countingPool(4);
  await Promise.all([1, 2, 3].map(() => pool.query('select 1')));
  const before = await reconcile(pool, { full: true });
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const [report] = await Promise.all([
      reconcile(pool, { full: true }),
      createHold(db.pool, { key: `late-hold-${attempt}`, from: 'ann', to: 'world', amount: usd(1n), expiresAt: new Date(Date.now() - 1_000) }),
    ]);
    const limbo = report.findings.filter((finding) => finding.kind === 'money_in_limbo').length;
    const priorLimbo = before.findings.filter((finding) => finding.kind === 'money_in_limbo').length;
    // each hold is two entries (read by the pass) and one hold in limbo (read beside it)
    assert.equal((report.entriesChecked - before.entriesChecked) / 2, limbo - priorLimbo, `attempt ${attempt}`);
    const books = ['balance_drift', 'pending_drift', 'unbalanced_transfer', 'currency_not_zero', 'forbidden_overdraft'];
    assert.deepEqual(report.findings.filter((finding) => books.includes(finding.kind)), [], 'the cache agrees with the entries the pass read');
  }
});
