// The host's own packages: an @databases/pg that is the host's own copy (another version beside
// ledgerbox's, as npm installs when ranges differ), and a dinero.js/bigint object built with a
// Number scale. Both are refused with a typed error instead of a bare driver or TypeError.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { dinero, USD } from 'dinero.js/bigint';
import {
  createAccount,
  createHold,
  getAccount,
  isLedgerboxError,
  minorUnits,
  postHold,
  postTransfer,
  postTransfers,
  startExchange,
  type DatabaseHandle,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();
await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'alice:USD', currency: 'USD' });

const ours = path.resolve('node_modules');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ledgerbox-host-packages-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A host's node_modules at `root`: everything ledgerbox's own, by symlink, except the
 * @databases packages named in `ownCopies`, which are copies (so other modules, other classes).
 */
function hostModules(root: string, ownCopies: string[]): NodeRequire {
  mkdirSync(path.join(root, 'node_modules', '@databases'), { recursive: true });
  for (const entry of readdirSync(ours)) {
    if (entry === '@databases' || entry.startsWith('.')) continue;
    symlinkSync(path.join(ours, entry), path.join(root, 'node_modules', entry));
  }
  for (const entry of readdirSync(path.join(ours, '@databases'))) {
    const from = path.join(ours, '@databases', entry);
    const to = path.join(root, 'node_modules', '@databases', entry);
    if (ownCopies.includes(entry)) cpSync(from, to, { recursive: true });
    else symlinkSync(from, to);
  }
  return createRequire(path.join(root, 'host.js'));
}

type HostPg = { default: (options: object) => HostPool; sql: (strings: TemplateStringsArray) => unknown };
type HostPool = { query(query: unknown): Promise<unknown[]>; task<T>(fn: (connection: HostPool) => Promise<T>): Promise<T>; tx<T>(fn: (transaction: HostPool) => Promise<T>): Promise<T>; dispose(): Promise<void> };

async function refusedEverywhere(hostPg: HostPg): Promise<void> {
  const pool = hostPg.default({ connectionString: db.connectionString, bigIntMode: 'bigint', poolSize: 2 });
  try {
    // the host's own queries work on it: only ledgerbox's are another copy's
    assert.deepEqual(await pool.query(hostPg.sql`select 1 as one`), [{ one: 1 }]);
    const handles: [string, (call: (handle: DatabaseHandle) => Promise<unknown>) => Promise<unknown>][] = [
      ['ConnectionPool', (call) => call(pool as unknown as DatabaseHandle)],
      ['Connection', (call) => pool.task((connection) => call(connection as unknown as DatabaseHandle))],
      ['Transaction', (call) => pool.tx((transaction) => call(transaction as unknown as DatabaseHandle))],
    ];
    for (const [kind, on] of handles) {
      for (const [name, call] of [
        ['getAccount', (handle: DatabaseHandle) => getAccount(handle, 'alice:USD')],
        ['createAccount', (handle: DatabaseHandle) => createAccount(handle, { key: 'bob:USD', currency: 'USD' })],
        ['postTransfer', (handle: DatabaseHandle) => postTransfer(handle, { key: 'host-copy', legs: [{ from: 'world:USD', to: 'alice:USD', amount: dinero({ amount: 1n, currency: USD }) }] })],
      ] as const) {
        await assert.rejects(on(call), (error: unknown) => {
          assert.ok(isLedgerboxError(error, 'unsupported_database_handle'), `${name} on the host's ${kind}: got ${String(error)}`);
          assert.match(error.message, new RegExp(`@databases/pg ${kind} comes from another copy`));
          assert.match(error.message, /npm dedupe/);
          return true;
        });
      }
    }
  } finally {
    await pool.dispose();
  }
  // nothing was written through it
  await assert.rejects(getAccount(db.pool, 'bob:USD'), (error: unknown) => isLedgerboxError(error, 'account_not_found'));
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = 'host-copy'`);
  assert.equal(rows[0].n, 0);
}

test("a host's own copy of @databases/pg (and of its @databases/sql and @databases/shared) is refused as unsupported_database_handle", async () => {
  const hostRequire = hostModules(path.join(scratch, 'whole'), ['pg', 'sql', 'shared']);
  const hostPg = hostRequire('@databases/pg') as HostPg;
  assert.notEqual(hostRequire.resolve('@databases/pg'), createRequire(import.meta.url).resolve('@databases/pg'), 'the host has a copy of its own');
  await refusedEverywhere(hostPg);
});

test("a host's copy of @databases/pg alone, sharing ledgerbox's @databases/sql and @databases/shared, works: its queries are ledgerbox's kind", async () => {
  const hostPg = hostModules(path.join(scratch, 'pg-only'), ['pg'])('@databases/pg') as HostPg;
  const pool = hostPg.default({ connectionString: db.connectionString, bigIntMode: 'bigint', poolSize: 2 });
  try {
    const handle = pool as unknown as DatabaseHandle;
    await createAccount(handle, { key: 'carol:USD', currency: 'USD' });
    await pool.tx((transaction) =>
      postTransfer(transaction as unknown as DatabaseHandle, { key: 'pg-only', legs: [{ from: 'world:USD', to: 'carol:USD', amount: dinero({ amount: 5n, currency: USD }) }] }),
    );
    assert.equal((await getAccount(handle, 'carol:USD')).key, 'carol:USD');
  } finally {
    await pool.dispose();
  }
});

test('a dinero.js/bigint amount with a Number scale is invalid_input naming `scale` and its value, in every call that takes money', async () => {
  const amount = dinero({ amount: 1005n, currency: USD, scale: 3 as unknown as bigint });
  const hold = await createHold(db.pool, { key: 'scale-hold', from: 'world:USD', to: 'alice:USD', amount: dinero({ amount: 100n, currency: USD }) });
  const calls: [string, () => Promise<unknown>][] = [
    ['postTransfer', () => postTransfer(db.pool, { key: 'scale-1', legs: [{ from: 'world:USD', to: 'alice:USD', amount }] })],
    ['postTransfers', () => postTransfers(db.pool, [{ key: 'scale-2', legs: [{ from: 'world:USD', to: 'alice:USD', amount }] }])],
    ['createHold', () => createHold(db.pool, { key: 'scale-3', from: 'world:USD', to: 'alice:USD', amount })],
    ['postHold', () => postHold(db.pool, { key: 'scale-4', holdId: hold.id, amount })],
    ['startExchange', () => startExchange(db.pool, { key: 'scale-5', from: 'alice:USD', to: 'world:USD', amount })],
    ['minorUnits', async () => minorUnits(amount)],
  ];
  for (const [name, call] of calls) {
    await assert.rejects(call(), (error: unknown) => {
      assert.ok(isLedgerboxError(error, 'invalid_input'), `${name}: got ${String(error)}`);
      assert.match(error.message, /`scale` must be a bigint with dinero\.js\/bigint \(3n, not 3\), got 3/, name);
      return true;
    });
  }
  // a currency from the Number-based list, with bigint amounts: its exponent is named
  const numberCurrency = dinero({ amount: 100n, currency: { code: 'USD', base: 10, exponent: 2 } as never });
  await assert.rejects(postTransfer(db.pool, { key: 'scale-6', legs: [{ from: 'world:USD', to: 'alice:USD', amount: numberCurrency }] }), (error: unknown) => {
    assert.ok(isLedgerboxError(error, 'invalid_input'));
    assert.match(error.message, /must be a bigint with dinero\.js\/bigint \(2n, not 2\), got 2/);
    return true;
  });
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key like 'scale-%' and key <> 'scale-hold'`);
  assert.equal(rows[0].n, 0);
});
