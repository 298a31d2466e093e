import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type pg from 'pg';
import { createAccount, createHold, postTransfer } from '../src/index.ts';
import { reconcile, reconcileNight } from '../src/reconcile/run.ts';
import type { ReconciliationReport } from '../src/reconcile/types.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'ann', currency: 'USD' });
await postTransfer(db.pool, { key: 'seed', legs: [{ from: 'world', to: 'ann', amount: usd(1_000n) }] });

const kinds = (report: ReconciliationReport) => report.findings.map((finding) => `${finding.severity} ${finding.kind} ${finding.account ?? ''}`.trim()).sort();

/** A superuser with the triggers switched off: the only way left to make the books wrong. */
async function asSuperuserWithoutTriggers(work: (client: pg.PoolClient) => Promise<unknown>): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await work(client);
  } finally {
    await client.query('reset session_replication_role');
    client.release();
  }
}

/** Puts the cache back to the truth, so the file's closing invariant check passes. */
async function repairCache(): Promise<void> {
  await asSuperuserWithoutTriggers((client) =>
    client.query(`update ledgerbox.accounts a set posted_balance = (select coalesce(sum(amount), 0) from ledgerbox.entries e where e.account_id = a.id and e.phase = 'posted')`),
  );
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ledgerbox.js', ...args], {
      env: { ...process.env, DATABASE_URL: db.connectionString, LEDGERBOX_REPORT_DIR: '.ledgerbox/test-reports' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('a clean ledger gives a clean run, exit 0, and the first run verifies every entry', async () => {
  const report = await reconcile(db.pool);
  assert.equal(report.status, 'clean');
  assert.deepEqual(report.findings, []);
  assert.equal(report.full, true);
  assert.equal(report.entriesChecked, 2);
  const run = await cli(['reconcile']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /clean/);
});

test('incremental runs check only what is new, and agree with a full re-verification', async () => {
  await postTransfer(db.pool, { key: 'new-1', legs: [{ from: 'world', to: 'ann', amount: usd(5n) }] });
  await postTransfer(db.pool, { key: 'new-2', legs: [{ from: 'ann', to: 'world', amount: usd(3n) }] });
  const incremental = await reconcile(db.pool);
  assert.equal(incremental.full, false);
  assert.equal(incremental.entriesChecked, 4);
  assert.deepEqual(incremental.movement, [{ currency: 'USD', moved: 8n, transfers: 2 }]);
  const full = await reconcile(db.pool, { full: true });
  assert.equal(full.entriesChecked, 6);
  assert.deepEqual(kinds(full), kinds(incremental));
  assert.equal((await reconcile(db.pool)).entriesChecked, 0, 'nothing new since');
});

test('drift made on purpose is critical, alerted once while it persists, exit 2, and resolved once repaired', async () => {
  await asSuperuserWithoutTriggers((client) => client.query(`update ledgerbox.accounts set posted_balance = posted_balance + 25 where key = 'ann'`));
  const first = await reconcile(db.pool);
  assert.equal(first.status, 'critical');
  const drift = first.findings.find((finding) => finding.kind === 'balance_drift')!;
  assert.deepEqual([drift.account, drift.expected, drift.actual, drift.difference], ['ann', 1_002n, 1_027n, 25n]);
  assert.deepEqual(first.moneyAtRisk, [{ currency: 'USD', amount: 25n }]);
  assert.deepEqual(first.comparison.new.map((finding) => finding.subject), ['balance_drift:ann']);

  const second = await reconcile(db.pool);
  assert.deepEqual(second.comparison.persisting.map((finding) => finding.subject), ['balance_drift:ann']);
  assert.deepEqual(second.comparison.new, []);
  const alerts = await db.pool.query(`select severity, kind from ledgerbox.alerts where dedupe_key = 'reconciliation:balance_drift:ann'`);
  assert.deepEqual(alerts.rows, [{ severity: 'critical', kind: 'reconciliation_balance_drift' }], 'one alert while the drift persists');
  const run = await cli(['reconcile', '--no-report']);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stdout, /balance_drift/);

  await repairCache();
  const repaired = await reconcile(db.pool);
  assert.equal(repaired.status, 'clean');
  assert.deepEqual(repaired.comparison.resolved.map((finding) => finding.subject), ['balance_drift:ann']);
});

test('an unbalanced transfer and a forbidden overdraft written around the triggers are critical', async () => {
  await asSuperuserWithoutTriggers(async (client) => {
    const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('forged', 'posted') returning id`);
    await client.query(
      `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
       select $1, 0, id, 'USD', -5000, 'posted', now() from ledgerbox.accounts where key = 'ann'`,
      [rows[0].id],
    );
  });
  const report = await reconcile(db.pool);
  // the cache (which a check constraint keeps non-negative) no longer matches the entries either
  assert.deepEqual(kinds(report), ['critical balance_drift ann', 'critical currency_not_zero', 'critical forbidden_overdraft ann', 'critical unbalanced_transfer']);
  const forged = report.findings.find((finding) => finding.kind === 'unbalanced_transfer')!;
  assert.equal(forged.difference, -5_000n);
  // undo the forgery's effect on the books (entries stay: they are append-only) with a balancing entry
  await asSuperuserWithoutTriggers(async (client) => {
    const { rows } = await client.query(`select id from ledgerbox.transfers where key = 'forged'`);
    await client.query(
      `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
       select $1, 1, id, 'USD', 5000, 'posted', now() from ledgerbox.accounts where key = 'ann'`,
      [rows[0].id],
    );
  });
  assert.equal((await reconcile(db.pool, { full: true })).status, 'clean');
});

test('two forged transfers that cancel each other out leave every balance right, and a full run still names both', async () => {
  // ann -7 in one transfer and +7 in another: the cache, the account's entries and the
  // currency's total all agree; only the per-transfer check (the full run's fingerprint, then
  // the exact query) can see it
  await asSuperuserWithoutTriggers(async (client) => {
    for (const [key, amount] of [['cancel-out:a', -7], ['cancel-out:b', 7]] as const) {
      const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ($1, 'posted') returning id`, [key]);
      await client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
         select $1, 0, id, 'USD', $2, 'posted', now() from ledgerbox.accounts where key = 'ann'`,
        [rows[0].id, amount],
      );
    }
  });
  for (const full of [true, false]) {
    const report = await reconcile(db.pool, { full });
    const forged = report.findings.filter((finding) => finding.kind === 'unbalanced_transfer');
    assert.deepEqual(
      forged.map((finding) => [finding.severity, finding.difference, finding.detail.split(' ')[1]]).sort(),
      full ? [['critical', -7n, 'cancel-out:a'], ['critical', 7n, 'cancel-out:b']] : [],
      `full: ${full}`,
    );
    assert.deepEqual(report.findings.filter((finding) => finding.kind !== 'unbalanced_transfer'), []);
  }
  // each forged transfer gets its opposite leg, so the books are whole again for what follows
  await asSuperuserWithoutTriggers(async (client) => {
    for (const [key, amount] of [['cancel-out:a', 7], ['cancel-out:b', -7]] as const) {
      await client.query(
        `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
         select t.id, 1, a.id, 'USD', $2, 'posted', now() from ledgerbox.transfers t, ledgerbox.accounts a where t.key = $1 and a.key = 'ann'`,
        [key, amount],
      );
    }
  });
  assert.equal((await reconcile(db.pool, { full: true })).status, 'clean');
});

test('a hold past its expiry is money in limbo (warning, exit 1); a clearing account not back at zero is a warning', async () => {
  await createAccount(db.pool, { key: 'payouts', currency: 'USD', clearing: true });
  await postTransfer(db.pool, { key: 'to-payouts', legs: [{ from: 'ann', to: 'payouts', amount: usd(10n) }] });
  const hold = await createHold(db.pool, { key: 'stale-hold', from: 'ann', to: 'world', amount: usd(7n), expiresAt: new Date(Date.now() - 1_000) });
  const report = await reconcile(db.pool);
  assert.equal(report.status, 'warnings');
  assert.deepEqual(kinds(report), ['warning clearing_not_zero payouts', 'warning money_in_limbo ann']);
  assert.equal(report.findings.find((finding) => finding.kind === 'money_in_limbo')!.subject, `money_in_limbo:${hold.id}`);
  assert.deepEqual(report.moneyAtRisk, [{ currency: 'USD', amount: 7n }]);
  const run = await cli(['reconcile', '--no-report']);
  assert.equal(run.code, 1, run.stdout + run.stderr);
});

test('a night is reconciled at most once, however often its job arrives', async () => {
  const first = await reconcileNight(db.pool, '2026-11-20');
  assert.notEqual(first, undefined);
  assert.equal(await reconcileNight(db.pool, '2026-11-20'), undefined);
  const runs = await db.pool.query(`select count(*)::int as n from ledgerbox.reconciliation_runs where night = '2026-11-20'`);
  assert.equal(runs.rows[0].n, 1);
});
