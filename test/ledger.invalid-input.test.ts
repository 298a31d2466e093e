import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { dinero as numberDinero } from 'dinero.js';
import { USD as numberUSD } from 'dinero.js/currencies';
import { dinero, USD } from 'dinero.js/bigint';
import { object, string } from 'superstruct';
import {
  InvalidInputError,
  createAccount,
  createHold,
  defineCurrency,
  defineTask,
  enqueue,
  enqueueMany,
  errorCodes,
  expireHolds,
  getAccount,
  getBalance,
  getTransfer,
  isLedgerboxError,
  limits,
  migrate,
  minorUnits,
  postHold,
  postTransfer,
  reverseTransfer,
  voidHold,
  type DatabaseHandle,
  type ErrorCode,
  type TransferInput,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { eur, minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'alice:USD', currency: 'USD' });
await createAccount(db.pool, { key: 'bob:USD', currency: 'USD' });
await createAccount(db.pool, { key: 'carol:EUR', currency: 'EUR' });
await defineCurrency(db.pool, { code: 'POINTS', exponent: 0 });
const funding = await postTransfer(db.pool, { key: 'funding:alice', legs: [{ from: 'world:USD', to: 'alice:USD', amount: usd(100_00n) }] });

const settleTransfer = defineTask('ledger.settle_transfer', object({ transferKey: string() }));
const unknownId = '7d444840-9dc0-11d1-b245-5ffdce74fad2';

/** Everything a refused call might have written, including cached balances. */
async function snapshot(): Promise<Record<string, unknown>> {
  const { rows } = await db.pool.query(`
    select
      (select count(*)::int from ledgerbox.transfers) as transfers,
      (select count(*)::int from ledgerbox.entries) as entries,
      (select count(*)::int from ledgerbox.accounts) as accounts,
      (select count(*)::int from ledgerbox.currencies) as currencies,
      (select count(*)::int from graphile_worker._private_jobs) as jobs,
      (select string_agg(format('%s=%s/%s/%s v%s', key, posted_balance, pending_incoming, pending_outgoing, version), ', ' order by key)
         from ledgerbox.accounts) as balances`);
  return rows[0];
}

/** The codes this file saw produced, for the coverage check at the end. */
const produced = new Set<ErrorCode>();

interface Refusal {
  code: ErrorCode;
  /** For invalid_input: the path of the bad field, which the message must name. */
  path?: string;
  /** What the message must show: the bad value, as the caller would recognize it. */
  shows?: string | RegExp;
}

/** The call is refused with `expected.code`, and every table is left as it was. */
async function refused(call: () => Promise<unknown>, expected: Refusal, label = expected.path ?? expected.code): Promise<void> {
  const before = await snapshot();
  await assert.rejects(
    call,
    (error: unknown) => {
      assert.ok(isLedgerboxError(error), `${label}: expected a LedgerboxError, got ${String(error)}`);
      assert.equal(error.code, expected.code, `${label}: ${error.message}`);
      if (expected.path !== undefined) {
        assert.ok(error instanceof InvalidInputError, label);
        assert.equal(error.path.join('.'), expected.path, `${label}: ${error.message}`);
        assert.equal(error.details.path, expected.path, label);
        assert.ok(error.message.includes(`\`${expected.path}\``), `${label}: the message names \`${expected.path}\`: ${error.message}`);
      }
      if (typeof expected.shows === 'string') {
        assert.ok(error.message.includes(expected.shows), `${label}: the message shows ${expected.shows}: ${error.message}`);
      } else if (expected.shows !== undefined) {
        assert.match(error.message, expected.shows, label);
      }
      return true;
    },
    label,
  );
  assert.deepEqual(await snapshot(), before, `${label}: nothing was written`);
  produced.add(expected.code);
}

type Case = Refusal & { input: unknown };

async function refuseEach(call: (input: any) => Promise<unknown>, cases: Case[]): Promise<void> {
  for (const { input, ...expected } of cases) await refused(() => call(input), expected);
}

const leg = (amount: unknown, from = 'alice:USD', to = 'bob:USD') => ({ from, to, amount });
/** Typed as valid so the calls compile; the point is what happens when it is not. */
const transfer = (...legs: unknown[]) => ({ key: 'refused:transfer', legs }) as TransferInput;
const oneCent = usd(1n);
const tooBigMetadata = { blob: 'x'.repeat(limits.metadata_bytes_max) };
const cyclicMetadata: Record<string, unknown> = {};
cyclicMetadata.self = cyclicMetadata;

/** Metadata that every function taking metadata refuses. */
function badMetadata(path: string): Case[] {
  return [
    { input: ['a', 'b'], code: 'invalid_input', path, shows: '["a","b"]' },
    { input: 'vip', code: 'invalid_input', path, shows: '"vip"' },
    { input: null, code: 'invalid_input', path, shows: 'got null' },
    { input: tooBigMetadata, code: 'invalid_input', path, shows: `at most ${limits.metadata_bytes_max} bytes, got ${limits.metadata_bytes_max + 11}` },
    { input: { amount: 1050n }, code: 'invalid_input', path, shows: '"1050n"' },
    { input: cyclicMetadata, code: 'invalid_input', path },
  ];
}

/** Dates and times that every function taking one refuses. */
function badTimestamps(path: string): Case[] {
  return [
    { input: 'yesterday', code: 'invalid_input', path, shows: '"yesterday"' },
    { input: new Date('not a date'), code: 'invalid_input', path, shows: 'Invalid Date' },
    { input: '2024-13-01T00:00:00Z', code: 'invalid_input', path, shows: '"2024-13-01T00:00:00Z"' },
    // Date would roll this over to 1 March: refused, not silently moved
    { input: '2024-02-30T00:00:00Z', code: 'invalid_input', path, shows: '"2024-02-30T00:00:00Z"' },
    { input: '2024-01-01', code: 'invalid_input', path, shows: '"2024-01-01"' }, // no time, no zone
    { input: '2024-01-01T10:00:00', code: 'invalid_input', path, shows: '"2024-01-01T10:00:00"' }, // no zone
    { input: 1_700_000_000_000, code: 'invalid_input', path, shows: 'got 1700000000000' },
  ];
}

/** Account keys (and idempotency keys) that are refused wherever a key is taken. */
function badKeys(path: string): Case[] {
  return [
    { input: '', code: 'invalid_input', path, shows: 'length of `0`' },
    { input: 'k'.repeat(limits.key_length_max + 1), code: 'invalid_input', path, shows: `length of \`${limits.key_length_max + 1}\`` },
    { input: ' alice:USD', code: 'invalid_input', path, shows: '" alice:USD"' },
    { input: 'alice:USD ', code: 'invalid_input', path, shows: '"alice:USD "' },
    { input: 'alice\n:USD', code: 'invalid_input', path, shows: '"alice\\n:USD"' },
    { input: 42, code: 'invalid_input', path, shows: 'got 42' },
    { input: undefined, code: 'invalid_input', path, shows: 'got undefined' },
  ];
}

const badUuids = (path: string): Case[] => [
  { input: 'not-a-uuid', code: 'invalid_input', path, shows: '"not-a-uuid"' },
  { input: `${unknownId}x`, code: 'invalid_input', path, shows: `"${unknownId}x"` },
  { input: '', code: 'invalid_input', path, shows: '""' },
  { input: 42, code: 'invalid_input', path, shows: 'got 42' },
];

const withInput = (cases: Case[], wrap: (input: unknown) => unknown): Case[] => cases.map((c) => ({ ...c, input: wrap(c.input) }));

// ---------------------------------------------------------------------------------------------
// Accounts and currencies

test('createAccount refuses a bad key, currency, limit or metadata with invalid_input', async () => {
  const account = { key: 'refused:account', currency: 'USD' };
  await refuseEach((input) => createAccount(db.pool, input), [
    ...withInput(badKeys('account.key'), (key) => ({ ...account, key })),
    { input: { ...account, currency: 'usd' }, code: 'invalid_input', path: 'account.currency', shows: '"usd"' },
    { input: { ...account, currency: 'U' }, code: 'invalid_input', path: 'account.currency', shows: '"U"' },
    { input: { ...account, currency: 'US DOLLAR' }, code: 'invalid_input', path: 'account.currency', shows: '"US DOLLAR"' },
    { input: { ...account, currency: 'A'.repeat(17) }, code: 'invalid_input', path: 'account.currency', shows: `"${'A'.repeat(17)}"` },
    { input: { ...account, currency: 840 }, code: 'invalid_input', path: 'account.currency', shows: 'got 840' },
    { input: { ...account, allowNegative: 'yes' }, code: 'invalid_input', path: 'account.allowNegative', shows: '"yes"' },
    ...withInput(badMetadata('account.metadata'), (metadata) => ({ ...account, metadata })),
    { input: { ...account, overdraftLimit: 100 }, code: 'invalid_input', path: 'account.overdraftLimit', shows: 'got 100' },
    { input: null, code: 'invalid_input', path: 'account', shows: 'got null' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('createAccount in an undefined currency is unknown_currency', async () => {
  await refused(() => createAccount(db.pool, { key: 'refused:account', currency: 'XTS9' }), { code: 'unknown_currency', shows: '"XTS9"' });
  await assertLedgerInvariants(db.pool);
});

test('createAccount with an existing key and a different currency, limit or metadata is account_exists_with_different_request', async () => {
  await refused(() => createAccount(db.pool, { key: 'alice:USD', currency: 'EUR' }), {
    code: 'account_exists_with_different_request',
    shows: /"alice:USD".*`currency`/,
  });
  await refused(() => createAccount(db.pool, { key: 'alice:USD', currency: 'USD', allowNegative: true }), {
    code: 'account_exists_with_different_request',
    shows: '`allowNegative`',
  });
  await refused(() => createAccount(db.pool, { key: 'alice:USD', currency: 'USD', metadata: { tier: 'gold' } }), {
    code: 'account_exists_with_different_request',
    shows: '`metadata`',
  });
  // The same request again is not an error: it returns the account as it is.
  const again = await createAccount(db.pool, { key: 'alice:USD', currency: 'USD' });
  assert.equal(again.currency, 'USD');
  assert.equal(minor((await getBalance(db.pool, 'alice:USD')).posted), 100_00n);
  await assertLedgerInvariants(db.pool);
});

test('getAccount refuses a bad key with invalid_input, and an unknown one with account_not_found', async () => {
  await refuseEach((key) => getAccount(db.pool, key), [
    ...badKeys('key'),
    { input: 'nobody:USD', code: 'account_not_found', shows: '"nobody:USD"' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('defineCurrency refuses a bad code, exponent or base with invalid_input', async () => {
  const currency = { code: 'GEMS', exponent: 0 };
  await refuseEach((input) => defineCurrency(db.pool, input), [
    { input: { ...currency, code: 'gems' }, code: 'invalid_input', path: 'currency.code', shows: '"gems"' },
    { input: { ...currency, code: '' }, code: 'invalid_input', path: 'currency.code', shows: '""' },
    { input: { ...currency, code: 'GEMS!' }, code: 'invalid_input', path: 'currency.code', shows: '"GEMS!"' },
    { input: { ...currency, code: 7 }, code: 'invalid_input', path: 'currency.code', shows: 'got 7' },
    { input: { ...currency, exponent: -1 }, code: 'invalid_input', path: 'currency.exponent', shows: '`-1`' },
    { input: { ...currency, exponent: 19 }, code: 'invalid_input', path: 'currency.exponent', shows: '`19`' },
    { input: { ...currency, exponent: 2.5 }, code: 'invalid_input', path: 'currency.exponent', shows: 'got 2.5' },
    { input: { ...currency, exponent: '2' }, code: 'invalid_input', path: 'currency.exponent', shows: 'got "2"' },
    { input: { code: 'GEMS' }, code: 'invalid_input', path: 'currency.exponent', shows: 'got undefined' },
    { input: { ...currency, base: 1 }, code: 'invalid_input', path: 'currency.base', shows: '`1`' },
    { input: { ...currency, base: 101 }, code: 'invalid_input', path: 'currency.base', shows: '`101`' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('defineCurrency with a known code and a different exponent or base is currency_exists_with_different_exponent', async () => {
  await refuseEach((input) => defineCurrency(db.pool, input), [
    { input: { code: 'USD', exponent: 3 }, code: 'currency_exists_with_different_exponent', shows: /USD exists with exponent 2.*not exponent 3/ },
    { input: { code: 'USD', exponent: 2, base: 16 }, code: 'currency_exists_with_different_exponent', shows: /base 10.*base 16/ },
    { input: { code: 'POINTS', exponent: 2 }, code: 'currency_exists_with_different_exponent', shows: /POINTS exists with exponent 0/ },
  ]);
  await assertLedgerInvariants(db.pool);
});

// ---------------------------------------------------------------------------------------------
// Money: never a float, always positive, always in the ledger's own exponent

test('postTransfer refuses money that is a float, a number, not positive, or not money at all', async () => {
  const path = 'transfer.legs.0.amount';
  await refuseEach((amount) => postTransfer(db.pool, transfer(leg(amount))), [
    { input: numberDinero({ amount: 1050, currency: numberUSD }), code: 'invalid_input', path, shows: '"amount":1050,' },
    { input: { amount: 10.5, currency: 'USD' }, code: 'invalid_input', path, shows: '"amount":10.5' },
    { input: { amount: 1050, currency: 'USD' }, code: 'invalid_input', path, shows: '"amount":1050,' },
    { input: { amount: '1050', currency: 'USD' }, code: 'invalid_input', path, shows: '"amount":"1050"' },
    { input: 10.5, code: 'invalid_input', path, shows: 'got 10.5' },
    { input: 1050n, code: 'invalid_input', path, shows: 'got 1050n' },
    { input: { amount: 1050n }, code: 'invalid_input', path, shows: '"amount":"1050n"' },
    { input: { amount: 1050n, currency: 840 }, code: 'invalid_input', path, shows: '"currency":840' },
    { input: { amount: 0n, currency: 'USD' }, code: 'invalid_input', path, shows: 'must be positive, got 0n USD' },
    { input: { amount: -500n, currency: 'USD' }, code: 'invalid_input', path, shows: 'must be positive, got -500n USD' },
    { input: usd(0n), code: 'invalid_input', path, shows: 'must be positive, got 0n USD' },
    { input: usd(-500n), code: 'invalid_input', path, shows: 'must be positive, got -500n USD' },
    // more than a bigint column holds
    { input: { amount: 2n ** 63n, currency: 'USD' }, code: 'invalid_input', path, shows: `got ${2n ** 63n}n` },
    { input: undefined, code: 'invalid_input', path, shows: 'got undefined' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('postTransfer refuses an amount in an unknown currency, or finer than the ledger’s exponent for it', async () => {
  await refuseEach((amount) => postTransfer(db.pool, transfer(leg(amount))), [
    { input: { amount: 100n, currency: 'XTS9' }, code: 'unknown_currency', shows: /"XTS9" at `transfer\.legs\.0\.amount`/ },
    // Not a currency code at all: no currency is named like that either.
    { input: { amount: 100n, currency: 'usd' }, code: 'invalid_input', path: 'transfer.legs.0.amount', shows: '"usd"' },
    // 10.505 USD: half a cent cannot be stored.
    {
      input: dinero({ amount: 10_505n, currency: USD, scale: 3n }),
      code: 'currency_exponent_mismatch',
      shows: /`transfer\.legs\.0\.amount`.*10505 at scale 3/,
    },
    // The caller's idea of JPY (two decimals) is not the ledger's (none).
    {
      input: dinero({ amount: 1_000n, currency: { code: 'JPY', base: 10n, exponent: 2n } }),
      code: 'currency_exponent_mismatch',
      shows: /JPY has exponent 0 in the ledger, but the amount's currency says 2/,
    },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('postTransfer refuses a leg whose currency differs from an account’s with currency_mismatch', async () => {
  await refused(() => postTransfer(db.pool, transfer(leg(eur(100n)))), { code: 'currency_mismatch', shows: /EUR.*"alice:USD" holds USD/ });
  await refused(() => postTransfer(db.pool, transfer(leg(usd(100n), 'alice:USD', 'carol:EUR'))), {
    code: 'currency_mismatch',
    shows: /USD.*"carol:EUR" holds EUR/,
  });
  // One good leg does not get written when another leg is refused.
  await refused(() => postTransfer(db.pool, transfer(leg(usd(100n)), leg(usd(100n), 'alice:USD', 'carol:EUR'))), {
    code: 'currency_mismatch',
    shows: /Leg 1/,
  });
  await assertLedgerInvariants(db.pool);
});

test('postTransfer to or from an unknown account is account_not_found, and no leg is written', async () => {
  await refused(() => postTransfer(db.pool, transfer(leg(oneCent, 'alice:USD', 'nobody:USD'))), { code: 'account_not_found', shows: '"nobody:USD"' });
  await refused(() => postTransfer(db.pool, transfer(leg(oneCent), leg(oneCent, 'nobody:USD', 'bob:USD'))), {
    code: 'account_not_found',
    shows: '"nobody:USD"',
  });
  await assertLedgerInvariants(db.pool);
});

// ---------------------------------------------------------------------------------------------
// Transfers: shape, legs, metadata, dates

test('postTransfer refuses a bad key, legs, metadata or effective date with invalid_input', async () => {
  const good = transfer(leg(oneCent));
  const legs = (count: number) => Array.from({ length: count }, () => leg(oneCent));
  await refuseEach((input) => postTransfer(db.pool, input), [
    ...withInput(badKeys('transfer.key'), (key) => ({ ...good, key })),
    { input: { ...good, legs: [] }, code: 'invalid_input', path: 'transfer.legs', shows: 'length of `0`' },
    {
      input: { ...good, legs: legs(limits.transfer_legs_max + 1) },
      code: 'invalid_input',
      path: 'transfer.legs',
      shows: `length of \`${limits.transfer_legs_max + 1}\``,
    },
    { input: { ...good, legs: leg(oneCent) }, code: 'invalid_input', path: 'transfer.legs', shows: '"from":"alice:USD"' },
    { input: { key: 'refused:transfer' }, code: 'invalid_input', path: 'transfer.legs', shows: 'got undefined' },
    { input: transfer(leg(oneCent, 'alice:USD', 'alice:USD')), code: 'invalid_input', path: 'transfer.legs.0', shows: '"alice:USD" twice' },
    { input: transfer(leg(oneCent), leg(oneCent, 'bob:USD', 'bob:USD')), code: 'invalid_input', path: 'transfer.legs.1', shows: '"bob:USD" twice' },
    ...withInput(badKeys('transfer.legs.0.from'), (from) => transfer({ from, to: 'bob:USD', amount: oneCent })),
    { input: transfer(leg(oneCent), leg(oneCent, 'bob:USD', ' alice:USD')), code: 'invalid_input', path: 'transfer.legs.1.to', shows: '" alice:USD"' },
    { input: transfer(leg(oneCent), 'alice:USD'), code: 'invalid_input', path: 'transfer.legs.1', shows: 'got "alice:USD"' },
    ...withInput(badMetadata('transfer.metadata'), (metadata) => ({ ...good, metadata })),
    ...withInput(badTimestamps('transfer.effectiveAt'), (effectiveAt) => ({ ...good, effectiveAt })),
    { input: { ...good, currency: 'USD' }, code: 'invalid_input', path: 'transfer.currency', shows: 'got "USD"' },
    { input: null, code: 'invalid_input', path: 'transfer', shows: 'got null' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('reverseTransfer refuses a bad key, transfer id, metadata or date; an unknown id is transfer_not_found', async () => {
  const good = { key: 'refused:reversal', transferId: funding.id };
  await refuseEach((input) => reverseTransfer(db.pool, input), [
    ...withInput(badKeys('reversal.key'), (key) => ({ ...good, key })),
    ...withInput(badUuids('reversal.transferId'), (transferId) => ({ ...good, transferId })),
    ...withInput(badMetadata('reversal.metadata'), (metadata) => ({ ...good, metadata })),
    ...withInput(badTimestamps('reversal.effectiveAt'), (effectiveAt) => ({ ...good, effectiveAt })),
    { input: { ...good, transferId: unknownId }, code: 'transfer_not_found', shows: `"${unknownId}"` },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('getTransfer takes exactly one of id and key; a bad one is invalid_input, an unknown one transfer_not_found', async () => {
  await refuseEach((lookup) => getTransfer(db.pool, lookup), [
    { input: { id: funding.id, key: 'funding:alice' }, code: 'invalid_input', path: 'lookup', shows: '"key":"funding:alice"' },
    { input: {}, code: 'invalid_input', path: 'lookup', shows: 'got {}' },
    { input: { id: undefined, key: undefined }, code: 'invalid_input', path: 'lookup', shows: 'got {}' },
    ...withInput(badUuids('lookup.id'), (id) => ({ id })),
    ...withInput(badKeys('lookup.key').filter((c) => c.input !== undefined), (key) => ({ key })),
    { input: { id: unknownId }, code: 'transfer_not_found', shows: `id "${unknownId}"` },
    { input: { key: 'no-such-key' }, code: 'transfer_not_found', shows: 'key "no-such-key"' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('getBalance refuses a bad account key or as-of date; an unknown account is account_not_found', async () => {
  for (const { input, ...expected } of badKeys('balance.account')) {
    await refused(() => getBalance(db.pool, input as string), expected);
  }
  for (const { input, ...expected } of badTimestamps('balance.asOf')) {
    await refused(() => getBalance(db.pool, 'alice:USD', { asOf: input as string }), expected);
  }
  await refused(() => getBalance(db.pool, 'nobody:USD'), { code: 'account_not_found', shows: '"nobody:USD"' });
  await assertLedgerInvariants(db.pool);
});

// ---------------------------------------------------------------------------------------------
// Holds

test('createHold refuses a bad key, accounts, amount, expiry, metadata or date', async () => {
  const good = { key: 'refused:hold', from: 'alice:USD', to: 'bob:USD', amount: usd(1_00n) };
  await refuseEach((input) => createHold(db.pool, input), [
    ...withInput(badKeys('hold.key'), (key) => ({ ...good, key })),
    ...withInput(badKeys('hold.from'), (from) => ({ ...good, from })),
    ...withInput(badKeys('hold.to'), (to) => ({ ...good, to })),
    { input: { ...good, to: 'alice:USD' }, code: 'invalid_input', path: 'hold', shows: '"alice:USD" twice' },
    { input: { ...good, amount: usd(0n) }, code: 'invalid_input', path: 'hold.amount', shows: 'must be positive, got 0n USD' },
    { input: { ...good, amount: { amount: 1.5, currency: 'USD' } }, code: 'invalid_input', path: 'hold.amount', shows: '"amount":1.5' },
    ...withInput(badTimestamps('hold.expiresAt'), (expiresAt) => ({ ...good, expiresAt })),
    ...withInput(badTimestamps('hold.effectiveAt'), (effectiveAt) => ({ ...good, effectiveAt })),
    ...withInput(badMetadata('hold.metadata'), (metadata) => ({ ...good, metadata })),
    { input: { ...good, to: 'nobody:USD' }, code: 'account_not_found', shows: '"nobody:USD"' },
    { input: { ...good, to: 'carol:EUR' }, code: 'currency_mismatch', shows: '"carol:EUR" holds EUR' },
    { input: { ...good, amount: { amount: 1n, currency: 'XTS9' } }, code: 'unknown_currency', shows: /"XTS9" at `hold\.amount`/ },
    { input: { ...good, amount: dinero({ amount: 1_001n, currency: USD, scale: 3n }) }, code: 'currency_exponent_mismatch', shows: '1001 at scale 3' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('postHold and voidHold refuse a bad key, hold id, amount, metadata or date', async () => {
  const good = { key: 'refused:post', holdId: unknownId };
  await refuseEach((input) => postHold(db.pool, input), [
    ...withInput(badKeys('post.key'), (key) => ({ ...good, key })),
    ...withInput(badUuids('post.holdId'), (holdId) => ({ ...good, holdId })),
    { input: { ...good, amount: usd(-1n) }, code: 'invalid_input', path: 'post.amount', shows: 'must be positive, got -1n USD' },
    { input: { ...good, amount: { amount: 100, currency: 'USD' } }, code: 'invalid_input', path: 'post.amount', shows: '"amount":100' },
    ...withInput(badMetadata('post.metadata'), (metadata) => ({ ...good, metadata })),
    ...withInput(badTimestamps('post.effectiveAt'), (effectiveAt) => ({ ...good, effectiveAt })),
  ]);
  await refuseEach((input) => voidHold(db.pool, input), [
    ...withInput(badKeys('void.key'), (key) => ({ ...good, key })),
    ...withInput(badUuids('void.holdId'), (holdId) => ({ ...good, holdId })),
    ...withInput(badMetadata('void.metadata'), (metadata) => ({ ...good, metadata })),
    { input: { ...good, effectiveAt: new Date() }, code: 'invalid_input', path: 'void.effectiveAt' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('expireHolds refuses a bad limit or clock', async () => {
  await refuseEach((input) => expireHolds(db.pool, input), [
    { input: { limit: 0 }, code: 'invalid_input', path: 'expire.limit', shows: '`0`' },
    { input: { limit: limits.expire_holds_batch_max + 1 }, code: 'invalid_input', path: 'expire.limit', shows: `\`${limits.expire_holds_batch_max + 1}\`` },
    { input: { limit: 1.5 }, code: 'invalid_input', path: 'expire.limit', shows: 'got 1.5' },
    { input: { limit: '10' }, code: 'invalid_input', path: 'expire.limit', shows: 'got "10"' },
    ...withInput(badTimestamps('expire.now'), (now) => ({ now })),
    { input: { before: new Date() }, code: 'invalid_input', path: 'expire.before' },
  ]);
  await assertLedgerInvariants(db.pool);
});

// ---------------------------------------------------------------------------------------------
// The outbox's options and batches (payload contracts: test/outbox.test.ts)

test('enqueue refuses bad job options with invalid_input', async () => {
  const payload = { transferKey: 'refused:job' };
  const path = (field: string) => `options.${field}`;
  await refuseEach((options) => enqueue(db.pool, settleTransfer, payload, options), [
    { input: { priority: 1.5 }, code: 'invalid_input', path: path('priority'), shows: 'got 1.5' },
    { input: { priority: 40_000 }, code: 'invalid_input', path: path('priority'), shows: '`40000`' },
    { input: { maxAttempts: 0 }, code: 'invalid_input', path: path('maxAttempts'), shows: '`0`' },
    { input: { maxAttempts: '3' }, code: 'invalid_input', path: path('maxAttempts'), shows: 'got "3"' },
    { input: { queue: 'has space' }, code: 'invalid_input', path: path('queue'), shows: '"has space"' },
    { input: { queue: '' }, code: 'invalid_input', path: path('queue'), shows: 'length of `0`' },
    { input: { jobKey: '' }, code: 'invalid_input', path: path('jobKey'), shows: 'length of `0`' },
    { input: { jobKey: 'k'.repeat(limits.key_length_max + 1) }, code: 'invalid_input', path: path('jobKey'), shows: `length of \`${limits.key_length_max + 1}\`` },
    { input: { jobKeyMode: 'unsafe_dedupe' }, code: 'invalid_input', path: path('jobKeyMode'), shows: '"unsafe_dedupe"' },
    ...withInput(badTimestamps(path('runAt')), (runAt) => ({ runAt })),
    { input: { delay_ms: 1_000 }, code: 'invalid_input', path: path('delay_ms'), shows: 'got 1000' },
    { input: 'urgent', code: 'invalid_input', path: 'options', shows: 'got "urgent"' },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('enqueueMany refuses an empty, oversized or mixed batch', async () => {
  const job = { task: settleTransfer, payload: { transferKey: 'refused:job' } };
  await refuseEach((jobs) => enqueueMany(db.pool, jobs), [
    { input: [], code: 'invalid_input', path: 'jobs', shows: 'length of `0`' },
    {
      input: Array.from({ length: limits.enqueue_batch_max + 1 }, () => job),
      code: 'invalid_input',
      path: 'jobs',
      shows: `length of \`${limits.enqueue_batch_max + 1}\``,
    },
    { input: job, code: 'invalid_input', path: 'jobs', shows: '"payload":{"transferKey":"refused:job"}' },
    {
      input: [job, { ...job, options: { jobKey: 'a', jobKeyMode: 'preserve_run_at' } }],
      code: 'invalid_input',
      path: 'jobs.options.jobKeyMode',
      shows: 'replace and preserve_run_at',
    },
    { input: [job, { ...job, task: 'ledger.settle_transfer' }], code: 'unknown_task', shows: /`jobs\.1\.task`.*"ledger\.settle_transfer"/ },
    // a look-alike object is not a task: only defineTask's checks make one
    { input: [{ ...job, task: { name: 'ledger.settle_transfer', payload: settleTransfer.payload, defaults: {} } }], code: 'unknown_task', shows: /`jobs\.0\.task`/ },
    // graphile-worker cannot replace one job key twice in a statement: refused up front
    {
      input: [{ ...job, options: { jobKey: 'same' } }, { ...job, options: { jobKey: 'same' } }],
      code: 'invalid_input',
      path: 'jobs.1.options.jobKey',
      shows: '"same" appears more than once',
    },
  ]);
  await assertLedgerInvariants(db.pool);
});

test('defineTask refuses a task name that is not lower-case dotted words, naming the value', () => {
  for (const name of ['', 'Ledger.Settle', 'settle transfer', '1settle', 'x'.repeat(101)]) {
    assert.throws(() => defineTask(name, object({})), (error: Error) => {
      assert.ok(isLedgerboxError(error, 'invalid_input'), String(error));
      assert.match(error.message, /`name`/);
      assert.ok(error.message.includes(JSON.stringify(name).slice(0, 100)), error.message);
      return true;
    });
  }
});

test('defineTask refuses defaults graphile-worker would refuse later, and a payload that is not a struct', () => {
  const cases: [unknown, string][] = [
    [{ maxAttempts: 0 }, 'defaults.maxAttempts'],
    [{ priority: 1.5 }, 'defaults.priority'],
    [{ queue: 'q'.repeat(101) }, 'defaults.queue'],
    [{ retries: 3 }, 'defaults.retries'],
  ];
  for (const [defaults, path] of cases) {
    assert.throws(() => defineTask('ledger.defaults', object({}), defaults as any), (error: Error) => {
      assert.ok(isLedgerboxError(error, 'invalid_input'), String(error));
      assert.ok(error.message.includes(`\`${path}\``), error.message);
      return true;
    });
  }
  assert.throws(() => defineTask('ledger.no_struct', { transferId: 'string' } as any), { code: 'invalid_input', message: /`payload`/ });
});

test('minorUnits refuses anything but a dinero.js/bigint object', () => {
  assert.throws(() => minorUnits(numberDinero({ amount: 1050, currency: numberUSD }) as any), { code: 'invalid_input', message: /dinero\.js\/bigint/ });
  assert.throws(() => minorUnits({} as any), { code: 'invalid_input', message: /got \{\}/ });
  assert.equal(minorUnits(usd(1050n)), 1050n);
});

// ---------------------------------------------------------------------------------------------
// Handles, configuration and rows

test('every function that takes a database handle refuses one it does not know with unsupported_database_handle', async () => {
  const unknownHandle = {} as DatabaseHandle;
  const calls: [string, () => Promise<unknown>][] = [
    ['defineCurrency', () => defineCurrency(unknownHandle, { code: 'GEMS', exponent: 0 })],
    ['createAccount', () => createAccount(unknownHandle, { key: 'refused:account', currency: 'USD' })],
    ['getAccount', () => getAccount(unknownHandle, 'alice:USD')],
    ['postTransfer', () => postTransfer(unknownHandle, transfer(leg(oneCent)))],
    ['reverseTransfer', () => reverseTransfer(unknownHandle, { key: 'refused:reversal', transferId: funding.id })],
    ['getTransfer', () => getTransfer(unknownHandle, { id: funding.id })],
    ['createHold', () => createHold(unknownHandle, { key: 'refused:hold', from: 'alice:USD', to: 'bob:USD', amount: oneCent })],
    ['postHold', () => postHold(unknownHandle, { key: 'refused:post', holdId: unknownId })],
    ['voidHold', () => voidHold(unknownHandle, { key: 'refused:void', holdId: unknownId })],
    ['expireHolds', () => expireHolds(unknownHandle)],
    ['getBalance', () => getBalance(unknownHandle, 'alice:USD')],
    ['enqueue', () => enqueue(unknownHandle, settleTransfer, { transferKey: 'refused:job' })],
    ['enqueueMany', () => enqueueMany(unknownHandle, [{ task: settleTransfer, payload: { transferKey: 'refused:job' } }])],
  ];
  for (const [name, call] of calls) {
    await refused(call, { code: 'unsupported_database_handle', shows: 'got Object' }, name);
  }
  // not even an object: a connection string, null, undefined
  for (const handle of ['postgres://somewhere/db', null, undefined]) {
    await refused(() => getAccount(handle as any, 'alice:USD'), { code: 'unsupported_database_handle', shows: `got ${handle}` }, String(handle));
    await refused(() => enqueue(handle as any, settleTransfer, { transferKey: 'refused:job' }), { code: 'unsupported_database_handle' }, String(handle));
  }
  await assertLedgerInvariants(db.pool);
});

test('migrate without a database is database_not_configured', async () => {
  await refused(() => migrate({}), { code: 'database_not_configured', shows: '`connectionString` or `pgPool`' });
});

test('a row that breaks its read contract (schema drift) is unexpected_row, not a crash or invalid_input', async () => {
  await createAccount(db.pool, { key: 'drift:USD', currency: 'USD' });
  await db.pool.query(`alter table ledgerbox.accounts drop constraint account_metadata_is_object`);
  try {
    await db.pool.query(`update ledgerbox.accounts set metadata = '["not", "an", "object"]' where key = 'drift:USD'`);
    await refused(() => getAccount(db.pool, 'drift:USD'), { code: 'unexpected_row', shows: /account row .*`metadata`.*ledgerbox migrate/ });
  } finally {
    await db.pool.query(`update ledgerbox.accounts set metadata = '{}' where key = 'drift:USD'`);
    await db.pool.query(`alter table ledgerbox.accounts add constraint account_metadata_is_object check (jsonb_typeof(metadata) = 'object')`);
  }
  assert.equal((await getAccount(db.pool, 'drift:USD')).key, 'drift:USD');
  await assertLedgerInvariants(db.pool);
});

test('inputs at the bounds are accepted', async () => {
  const longKey = `edge:${'k'.repeat(limits.key_length_max - 5)}`;
  await createAccount(db.pool, { key: longKey, currency: 'USD', metadata: { note: 'n'.repeat(limits.metadata_bytes_max - 11) } });
  const legs = Array.from({ length: limits.transfer_legs_max }, () => ({ from: 'world:USD', to: longKey, amount: usd(1n) }));
  await postTransfer(db.pool, { key: 'k'.repeat(limits.key_length_max), legs });
  // 10.500 USD at scale 3 loses nothing: it is 1050 cents.
  await postTransfer(db.pool, { key: 'edge:scale', legs: [{ from: 'world:USD', to: longKey, amount: dinero({ amount: 10_500n, currency: USD, scale: 3n }) }] });
  assert.equal(minor((await getBalance(db.pool, longKey)).posted), BigInt(limits.transfer_legs_max) + 1_050n);
  await assertLedgerInvariants(db.pool);
});

// ---------------------------------------------------------------------------------------------

/**
 * Codes other test files assert, found by reading them; the rest must have been produced above.
 * A new code in errorCodes fails this test until some test produces it (here, by an assertion
 * on `code`, or by test/db.errors.test.ts's everyPathRefuses, which asserts it on every path).
 */
const notYetProduced: Partial<Record<ErrorCode, string>> = {
};

test('every error code is produced by this file or asserted by another test file', () => {
  const otherFiles = readdirSync('test')
    .filter((file) => file.endsWith('.test.ts') && file !== 'ledger.invalid-input.test.ts')
    .map((file) => readFileSync(`test/${file}`, 'utf8'))
    .join('\n');
  const uncovered = errorCodes.filter(
    (code) => !produced.has(code) && !new RegExp(`(code[:,]\\s*|everyPathRefuses\\([^\\n]*?)'${code}'`).test(otherFiles) && notYetProduced[code] === undefined,
  );
  assert.deepEqual(uncovered, []);
});
