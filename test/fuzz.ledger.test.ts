// Property-based tests of the ledger's public functions: thousands of generated inputs, valid
// and invalid. Every invalid one is a LedgerboxError with its code and writes nothing; every
// valid one is stored exactly as given and keeps the ledger's invariants.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { dinero as numberDinero } from 'dinero.js';
import { USD as numberUSD } from 'dinero.js/currencies';
import { dinero } from 'dinero.js/bigint';
import {
  createAccount,
  createHold,
  defineCurrency,
  expireHolds,
  getAccount,
  getBalance,
  getTransfer,
  minorUnits,
  postHold,
  postTransfer,
  postTransfers,
  reverseTransfer,
  voidHold,
  type ErrorCode,
  type TransferInput,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import {
  anyText,
  assertRefused,
  databaseSnapshot,
  fuzzParameters,
  invalidKeyText,
  invalidMetadata,
  notAString,
  validKeyText,
  validMetadata,
} from './support/fuzz.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { eur, minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });
for (const name of ['ann', 'ben', 'cat', 'dan']) await createAccount(db.pool, { key: `${name}:USD`, currency: 'USD' });
await createAccount(db.pool, { key: 'eve:EUR', currency: 'EUR' });
await postTransfer(db.pool, { key: 'funding', legs: ['ann', 'ben', 'cat', 'dan'].map((name) => ({ from: 'world:USD', to: `${name}:USD`, amount: usd(1_000_00n) })) });
const taken = await postTransfer(db.pool, { key: 'taken', legs: [{ from: 'ann:USD', to: 'ben:USD', amount: usd(1_00n) }], metadata: { order: 1 } });
const heldOnce = await createHold(db.pool, { key: 'held-once', from: 'ann:USD', to: 'ben:USD', amount: usd(5_00n) });
await voidHold(db.pool, { key: 'held-once:void', holdId: heldOnce.id });
const openHold = await createHold(db.pool, { key: 'open-hold', from: 'cat:USD', to: 'dan:USD', amount: usd(3_00n) });
const reversed = await postTransfer(db.pool, { key: 'to-reverse', legs: [{ from: 'dan:USD', to: 'cat:USD', amount: usd(2_00n) }] });
await reverseTransfer(db.pool, { key: 'to-reverse:undo', transferId: reversed.id });

const customers = ['ann:USD', 'ben:USD', 'cat:USD', 'dan:USD'];
const int8_max = 2n ** 63n - 1n;
const unknownId = '7d444840-9dc0-11d1-b245-5ffdce74fad2';

type Case = { what: string; code: ErrorCode; attempt: () => Promise<unknown> | unknown };

/** Runs every generated refusal; the database must be exactly as it was after all of them. */
async function assertAllRefused(cases: fc.Arbitrary<Case>, numRuns: number): Promise<void> {
  const before = await databaseSnapshot(db.pool);
  await fc.assert(
    fc.asyncProperty(cases.map((found) => Object.assign(found, { [fc.toStringMethod]: () => `${found.what} (expects ${found.code})` })), async ({ what, code, attempt }) => {
      await assertRefused(attempt, code, what);
    }),
    fuzzParameters(numRuns),
  );
  assert.deepEqual(await databaseSnapshot(db.pool), before, 'refused calls wrote nothing');
}

const validLeg = fc.record({
  from: fc.constantFrom('world:USD', ...customers),
  to: fc.constantFrom(...customers),
  amount: fc.bigInt({ min: 1n, max: 500n }).map(usd),
}).filter((leg) => leg.from !== leg.to);

/** A valid transfer with one thing wrong in it, and the code that must name it. */
const badMoney: fc.Arbitrary<[string, unknown, ErrorCode]> = fc.oneof(
  fc.double().map((value): [string, unknown, ErrorCode] => ['a float amount', { amount: value, currency: 'USD' }, 'invalid_input']),
  fc.integer().map((value): [string, unknown, ErrorCode] => ['a number amount', { amount: value, currency: 'USD' }, 'invalid_input']),
  fc.bigInt({ max: 0n }).map((value): [string, unknown, ErrorCode] => ['a non-positive amount', { amount: value, currency: 'USD' }, 'invalid_input']),
  fc.bigInt({ min: int8_max + 1n, max: 2n ** 200n }).map((value): [string, unknown, ErrorCode] => ['a huge amount', { amount: value, currency: 'USD' }, 'invalid_input']),
  fc.bigInt({ min: 1n, max: 10n ** 6n }).map((value): [string, unknown, ErrorCode] => ['a numeric-string amount', { amount: String(value), currency: 'USD' }, 'invalid_input']),
  fc.oneof(anyText, notAString).filter((code) => typeof code !== 'string' || !/^[A-Z][A-Z0-9_]{1,15}$/.test(code)).map((code): [string, unknown, ErrorCode] => ['a malformed currency', { amount: 5n, currency: code }, 'invalid_input']),
  // four letters or more: never one of the ISO 4217 codes the ledger knows (QAR is one)
  fc.stringMatching(/^Q[A-Z]{3,6}$/).map((code): [string, unknown, ErrorCode] => ['an unknown currency', { amount: 5n, currency: code }, 'unknown_currency']),
  fc.bigInt({ min: 1n, max: 1000n }).map((value): [string, unknown, ErrorCode] => ['a mismatched currency', eur(value), 'currency_mismatch']),
  fc.integer({ min: 1, max: 1000 }).map((value): [string, unknown, ErrorCode] => ['a number-based dinero', numberDinero({ amount: value, currency: numberUSD }), 'invalid_input']),
  fc.bigInt({ min: 1n, max: 1000n }).map((value): [string, unknown, ErrorCode] => [
    'a dinero whose USD has exponent 3',
    dinero({ amount: value, currency: { code: 'USD', base: 10n, exponent: 3n } }),
    'currency_exponent_mismatch',
  ]),
  fc.bigInt({ min: 1n, max: 1000n }).map((value): [string, unknown, ErrorCode] => [
    'a dinero at a finer scale that loses minor units',
    dinero({ amount: value * 10n + 1n, currency: { code: 'USD', base: 10n, exponent: 2n }, scale: 3n }),
    'currency_exponent_mismatch',
  ]),
  fc.oneof(notAString, anyText).map((value): [string, unknown, ErrorCode] => ['not money at all', value, 'invalid_input']),
);

const badTransfer: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(fc.oneof(notAString, invalidKeyText), validLeg).map(([key, leg]) => ({
    what: `key ${fc.stringify(key)}`,
    code: 'invalid_input' as const,
    attempt: () => postTransfer(db.pool, { key, legs: [leg] } as unknown as TransferInput),
  })),
  fc.tuple(validKeyText, fc.oneof(notAString, invalidKeyText), fc.boolean(), validLeg).map(([key, account, asFrom, leg]) => ({
    what: `account key ${typeof account === 'string' ? fc.stringify(account) : typeof account}`,
    code: 'invalid_input' as const,
    attempt: () => postTransfer(db.pool, { key, legs: [asFrom ? { ...leg, from: account } : { ...leg, to: account }] } as unknown as TransferInput),
  })),
  fc.tuple(validKeyText, fc.oneof(fc.constant([]), fc.array(validLeg, { minLength: 101, maxLength: 130 }), notAString)).map(([key, legs]) => ({
    what: `legs ${Array.isArray(legs) ? `of length ${legs.length}` : typeof legs}`,
    code: 'invalid_input' as const,
    attempt: () => postTransfer(db.pool, { key, legs } as unknown as TransferInput),
  })),
  fc.tuple(validKeyText, fc.constantFrom(...customers)).map(([key, account]) => ({
    what: 'a leg from an account to itself',
    code: 'invalid_input' as const,
    attempt: () => postTransfer(db.pool, { key, legs: [{ from: account, to: account, amount: usd(1n) }] }),
  })),
  fc.tuple(validKeyText, badMoney, fc.array(validLeg, { maxLength: 3 })).map(([key, [what, amount, code], others]) => ({
    what,
    code,
    attempt: () => postTransfer(db.pool, { key: `bad-money:${key}`, legs: [...others, { from: 'ann:USD', to: 'ben:USD', amount }] } as unknown as TransferInput),
  })),
  fc.tuple(validKeyText, invalidMetadata).map(([key, metadata]) => ({
    what: 'invalid metadata',
    code: 'invalid_input' as const,
    attempt: () => postTransfer(db.pool, { key, legs: [{ from: 'ann:USD', to: 'ben:USD', amount: usd(1n) }], metadata } as unknown as TransferInput),
  })),
  fc.tuple(validKeyText, fc.oneof(anyText, fc.constant(new Date(Number.NaN)), fc.integer(), fc.constant('2026-02-30T10:00:00Z'), fc.constant('2026-11-21'))).map(([key, effectiveAt]) => ({
    what: `effectiveAt ${String(effectiveAt)}`,
    code: 'invalid_input' as const,
    attempt: () => postTransfer(db.pool, { key, legs: [{ from: 'ann:USD', to: 'ben:USD', amount: usd(1n) }], effectiveAt } as unknown as TransferInput),
  })),
  fc.tuple(validKeyText, validKeyText).filter(([, account]) => !account.endsWith(':USD') && !account.endsWith(':EUR')).map(([key, account]) => ({
    what: `unknown account ${JSON.stringify(account)}`,
    code: 'account_not_found' as const,
    attempt: () => postTransfer(db.pool, { key, legs: [{ from: 'ann:USD', to: account, amount: usd(1n) }] }),
  })),
  fc.tuple(validKeyText, fc.bigInt({ min: 10_000_00n, max: int8_max })).map(([key, amount]) => ({
    what: `an overdraft of ${amount}`,
    code: 'insufficient_funds' as const,
    attempt: () => postTransfer(db.pool, { key: `overdraft:${key}`, legs: [{ from: 'ben:USD', to: 'cat:USD', amount: usd(amount) }] }),
  })),
  fc.tuple(validKeyText, fc.bigInt({ min: int8_max - 1_000_00n, max: int8_max })).map(([key, amount]) => ({
    what: 'a balance past the bigint range',
    code: 'amount_out_of_range' as const,
    attempt: () => postTransfer(db.pool, { key: `overflow:${key}`, legs: [{ from: 'world:USD', to: 'ann:USD', amount: usd(amount) }] }),
  })),
  fc.oneof(
    fc.bigInt({ min: 2n, max: 1000n }).filter((amount) => amount !== 1_00n).map((amount) => ({ legs: [{ from: 'ann:USD', to: 'ben:USD', amount: usd(amount) }], metadata: { order: 1 } })),
    fc.constant({ legs: [{ from: 'ben:USD', to: 'ann:USD', amount: usd(1_00n) }], metadata: { order: 1 } }),
    validMetadata.filter((metadata) => JSON.stringify(metadata) !== '{"order":1}').map((metadata) => ({ legs: [{ from: 'ann:USD', to: 'ben:USD', amount: usd(1_00n) }], metadata })),
  ).map((request) => ({
    what: `the key \`taken\` with a different request: ${fc.stringify(request)}`,
    code: 'exists_with_different_request' as const,
    attempt: () => postTransfer(db.pool, { key: 'taken', ...request } as TransferInput),
  })),
);

test('postTransfer refuses every malformed, unknown, mismatched, overdrawn or conflicting transfer with its code, and writes nothing', async () => {
  await assertAllRefused(badTransfer, 1_500);
});

test('postTransfer stores every valid transfer exactly (hostile keys and metadata included), replays it by key, and the ledger stays balanced', async () => {
  const posted = new Set<string>();
  let sequence = 0;
  await fc.assert(
    fc.asyncProperty(validKeyText, fc.array(validLeg, { minLength: 1, maxLength: 4 }), validMetadata, async (keyText, legs, metadata) => {
      const key = `${sequence++}:${keyText}`.slice(0, 200);
      const expectedMetadata = JSON.parse(JSON.stringify(metadata));
      const transfer = await postTransfer(db.pool, { key, legs, metadata });
      assert.equal(transfer.key, key);
      assert.equal(transfer.replayed, false);
      assert.deepEqual(transfer.metadata, expectedMetadata);
      assert.deepEqual(transfer.legs.map((leg) => [leg.from, leg.to, minor(leg.amount)]), legs.map((leg) => [leg.from, leg.to, minor(leg.amount)]));
      const again = await postTransfer(db.pool, { key, legs, metadata });
      assert.equal(again.id, transfer.id);
      assert.equal(again.replayed, true);
      const read = await getTransfer(db.pool, { key });
      assert.equal(read.id, transfer.id);
      assert.deepEqual(read.metadata, expectedMetadata);
      posted.add(transfer.id);
    }),
    fuzzParameters(120),
  );
  assert.ok(posted.size >= 1);
  await assertLedgerInvariants(db.pool);
});

test('postTransfers is all or nothing: a batch with one bad transfer, or a key twice, writes none of it', async () => {
  const batch = fc.tuple(
    fc.array(fc.tuple(validKeyText, fc.array(validLeg, { minLength: 1, maxLength: 2 })), { minLength: 1, maxLength: 8 }),
    fc.nat(),
    fc.oneof(
      badMoney.map(([what, amount, code]) => ({ what, code, replace: (transfer: TransferInput) => ({ ...transfer, legs: [{ from: 'ann:USD', to: 'ben:USD', amount }] }) })),
      invalidMetadata.map((metadata) => ({ what: 'invalid metadata', code: 'invalid_input' as ErrorCode, replace: (transfer: TransferInput) => ({ ...transfer, metadata }) })),
      fc.constant({ what: 'an overdraft', code: 'insufficient_funds' as ErrorCode, replace: (transfer: TransferInput) => ({ ...transfer, legs: [{ from: 'ben:USD', to: 'ann:USD', amount: usd(int8_max / 2n) }] }) }),
      fc.constant({ what: 'a conflicting key', code: 'exists_with_different_request' as ErrorCode, replace: (transfer: TransferInput) => ({ ...transfer, key: 'taken' }) }),
      fc.constant({ what: 'a key twice', code: 'invalid_input' as ErrorCode, replace: (_transfer: TransferInput, first: TransferInput) => ({ ...first }) }),
    ),
  ).map(([items, position, bad]): Case => {
    const transfers: TransferInput[] = items.map(([key, legs], index) => ({ key: `batch:${index}:${key}`.slice(0, 200), legs }));
    const at = position % transfers.length;
    const replaced = (bad.replace as (transfer: TransferInput, first: TransferInput) => TransferInput)(transfers[at]!, transfers[0]!);
    if (bad.what === 'a key twice') transfers.push(replaced);
    else transfers[at] = replaced;
    return { what: `a batch with ${bad.what} at ${at}`, code: bad.code, attempt: () => postTransfers(db.pool, transfers) };
  });
  const malformed = fc.oneof(notAString, fc.constant([]), fc.constant(Array.from({ length: 1_001 }, (_, index) => ({ key: `x${index}`, legs: [{ from: 'ann:USD', to: 'ben:USD', amount: usd(1n) }] })))).map(
    (transfers): Case => ({ what: 'not a batch', code: 'invalid_input', attempt: () => postTransfers(db.pool, transfers as unknown as TransferInput[]) }),
  );
  await assertAllRefused(fc.oneof(batch, malformed), 300);
});

test('holds: malformed, unknown, exceeded, resolved and conflicting requests are refused with their codes and write nothing', async () => {
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc.tuple(validKeyText, badMoney).map(([key, [what, amount, code]]) => ({
      what: `createHold with ${what}`,
      code,
      attempt: () => createHold(db.pool, { key: `hold:${key}`, from: 'ann:USD', to: 'ben:USD', amount } as never),
    })),
    fc.tuple(fc.oneof(notAString, invalidKeyText), fc.oneof(notAString, invalidKeyText), invalidMetadata, fc.nat(2)).map(([key, account, metadata, which]) => ({
      what: 'createHold with a bad key, account or metadata',
      code: 'invalid_input' as const,
      attempt: () =>
        createHold(db.pool, {
          key: which === 0 ? key : 'hold-ok',
          from: which === 1 ? account : 'ann:USD',
          to: 'ben:USD',
          amount: usd(1n),
          ...(which === 2 ? { metadata } : {}),
        } as never),
    })),
    fc.tuple(validKeyText, fc.oneof(anyText, fc.constant(new Date(Number.NaN)))).map(([key, expiresAt]) => ({
      what: 'createHold with a bad expiry',
      code: 'invalid_input' as const,
      attempt: () => createHold(db.pool, { key, from: 'ann:USD', to: 'ben:USD', amount: usd(1n), expiresAt } as never),
    })),
    fc.tuple(validKeyText, fc.oneof(anyText.filter((text) => !/^[0-9a-f-]{36}$/i.test(text)), notAString)).map(([key, holdId]) => ({
      what: 'postHold with a malformed hold id',
      code: 'invalid_input' as const,
      attempt: () => postHold(db.pool, { key, holdId } as never),
    })),
    fc.tuple(validKeyText, fc.uuid()).map(([key, holdId]) => ({ what: 'voidHold of no hold', code: 'hold_not_found' as const, attempt: () => voidHold(db.pool, { key, holdId }) })),
    validKeyText.map((key) => ({ what: 'voidHold of a posted transfer', code: 'hold_not_found' as const, attempt: () => voidHold(db.pool, { key, holdId: taken.id }) })),
    validKeyText.map((key) => ({ what: 'postHold of a voided hold', code: 'hold_already_resolved' as const, attempt: () => postHold(db.pool, { key: `again:${key}`, holdId: heldOnce.id }) })),
    fc.tuple(validKeyText, fc.bigInt({ min: 3_01n, max: int8_max })).map(([key, amount]) => ({
      what: 'postHold of more than is held',
      code: 'post_exceeds_hold' as const,
      attempt: () => postHold(db.pool, { key: `exceed:${key}`, holdId: openHold.id, amount: usd(amount) }),
    })),
    fc.tuple(validKeyText, fc.bigInt({ min: 1n, max: 3_00n })).map(([key, amount]) => ({
      what: 'postHold in the wrong currency',
      code: 'currency_mismatch' as const,
      attempt: () => postHold(db.pool, { key: `wrong-currency:${key}`, holdId: openHold.id, amount: eur(amount) }),
    })),
    fc.tuple(validKeyText, fc.bigInt({ min: 100_000_000n, max: int8_max })).map(([key, amount]) => ({
      what: 'a hold larger than the available balance',
      code: 'insufficient_funds' as const,
      attempt: () => createHold(db.pool, { key: `too-big:${key}`, from: 'dan:USD', to: 'ann:USD', amount: usd(amount) }),
    })),
    fc.tuple(fc.oneof(anyText, notAString), fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 1_001 }), fc.double(), anyText)).map(([now, limit]) => ({
      what: 'expireHolds with a bad now or limit',
      code: 'invalid_input' as const,
      attempt: () => expireHolds(db.pool, { now, limit } as never),
    })),
  );
  await assertAllRefused(cases, 1_500);
});

test('holds: every valid sequence of create, partial post, void and expiry keeps the ledger balanced and releases exactly what was held', async () => {
  let sequence = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...customers),
      fc.constantFrom(...customers),
      fc.bigInt({ min: 1n, max: 200n }),
      fc.oneof(fc.constant('void' as const), fc.constant('post' as const), fc.bigInt({ min: 1n, max: 200n }), fc.constant('expire' as const)),
      validMetadata,
      async (from, to, amount, resolution, metadata) => {
        if (from === to) return;
        const key = `hold:${sequence++}`;
        const before = await getBalance(db.pool, from);
        const hold = await createHold(db.pool, {
          key,
          from,
          to,
          amount: usd(amount),
          metadata,
          ...(resolution === 'expire' ? { expiresAt: new Date(Date.now() + 1_000) } : {}),
        });
        assert.equal(minor((await getBalance(db.pool, from)).available), minor(before.available) - amount);
        if (resolution === 'void') await voidHold(db.pool, { key: `${key}:void`, holdId: hold.id });
        else if (resolution === 'post') await postHold(db.pool, { key: `${key}:post`, holdId: hold.id });
        else if (resolution === 'expire') {
          const voided = await expireHolds(db.pool, { now: new Date(Date.now() + 2_000) });
          assert.ok(voided.some((transfer) => transfer.holdId === hold.id));
        } else await postHold(db.pool, { key: `${key}:post`, holdId: hold.id, amount: usd(resolution > amount ? amount : resolution) });
        const moved = resolution === 'void' || resolution === 'expire' ? 0n : resolution === 'post' ? amount : resolution > amount ? amount : resolution;
        const after = await getBalance(db.pool, from);
        assert.equal(minor(after.available), minor(before.available) - moved);
        assert.equal(minor(after.pendingOutgoing), minor(before.pendingOutgoing));
      },
    ),
    fuzzParameters(150),
  );
  await assertLedgerInvariants(db.pool);
});

test('accounts, currencies, reversals and reads refuse every bad input with its code and write nothing', async () => {
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc.tuple(fc.oneof(notAString, invalidKeyText), fc.constantFrom('USD', 'EUR')).map(([key, currency]) => ({
      what: 'createAccount with a bad key',
      code: 'invalid_input' as const,
      attempt: () => createAccount(db.pool, { key, currency } as never),
    })),
    fc.tuple(validKeyText, fc.oneof(notAString, anyText.filter((text) => !/^[A-Z][A-Z0-9_]{1,15}$/.test(text)))).map(([key, currency]) => ({
      what: 'createAccount with a malformed currency',
      code: 'invalid_input' as const,
      attempt: () => createAccount(db.pool, { key: `new:${key}`.slice(0, 200), currency } as never),
    })),
    fc.tuple(validKeyText, fc.stringMatching(/^Q[A-Z]{3,6}$/)).map(([key, currency]) => ({
      what: 'createAccount in an unknown currency',
      code: 'unknown_currency' as const,
      attempt: () => createAccount(db.pool, { key: `new:${key}`.slice(0, 200), currency }),
    })),
    fc.oneof(
      fc.tuple(validKeyText, notAString.filter((value) => typeof value !== 'boolean'), fc.constant(true)),
      fc.tuple(validKeyText, invalidMetadata, fc.constant(false)),
    ).map(([key, value, flag]) => ({
      what: flag ? 'createAccount with a non-boolean allowNegative' : 'createAccount with bad metadata',
      code: 'invalid_input' as const,
      attempt: () => createAccount(db.pool, { key: `new:${key}`.slice(0, 200), currency: 'USD', ...(flag ? { allowNegative: value } : { metadata: value }) } as never),
    })),
    fc.tuple(fc.constantFrom(...customers, 'world:USD'), fc.constantFrom('EUR', 'JPY'), fc.boolean()).map(([key, currency, flag]) => ({
      what: 'createAccount again with a different request',
      code: 'account_exists_with_different_request' as const,
      attempt: () => createAccount(db.pool, flag ? { key, currency } : { key, currency: 'USD', allowNegative: key !== 'world:USD', metadata: { changed: true } }),
    })),
    fc.tuple(fc.oneof(notAString, anyText.filter((text) => !/^[A-Z][A-Z0-9_]{1,15}$/.test(text))), fc.oneof(fc.integer({ min: 19 }), fc.integer({ max: -1 }), fc.double(), anyText)).map(([code, exponent]) => ({
      what: 'defineCurrency with a bad code or exponent',
      code: 'invalid_input' as const,
      attempt: () => defineCurrency(db.pool, { code, exponent } as never),
    })),
    fc.integer({ min: 0, max: 18 }).filter((exponent) => exponent !== 2).map((exponent) => ({
      what: 'redefining USD with another exponent',
      code: 'currency_exists_with_different_exponent' as const,
      attempt: () => defineCurrency(db.pool, { code: 'USD', exponent }),
    })),
    fc.tuple(validKeyText, fc.oneof(notAString, anyText.filter((text) => !/^[0-9a-f-]{36}$/i.test(text)))).map(([key, transferId]) => ({
      what: 'reverseTransfer of a malformed id',
      code: 'invalid_input' as const,
      attempt: () => reverseTransfer(db.pool, { key, transferId } as never),
    })),
    fc.tuple(validKeyText, fc.uuid()).map(([key, transferId]) => ({ what: 'reverseTransfer of no transfer', code: 'transfer_not_found' as const, attempt: () => reverseTransfer(db.pool, { key, transferId }) })),
    validKeyText.map((key) => ({ what: 'reverseTransfer of a hold', code: 'transfer_not_reversible' as const, attempt: () => reverseTransfer(db.pool, { key: `undo:${key}`, transferId: openHold.id }) })),
    validKeyText.map((key) => ({ what: 'reversing twice', code: 'transfer_already_reversed' as const, attempt: () => reverseTransfer(db.pool, { key: `undo:${key}`, transferId: reversed.id }) })),
    fc.oneof(notAString, invalidKeyText).map((key) => ({ what: 'getBalance of a bad key', code: 'invalid_input' as const, attempt: () => getBalance(db.pool, key as never) })),
    fc.oneof(notAString, invalidKeyText).map((key) => ({ what: 'getAccount of a bad key', code: 'invalid_input' as const, attempt: () => getAccount(db.pool, key as never) })),
    validKeyText.filter((key) => !key.endsWith(':USD') && !key.endsWith(':EUR')).map((key) => ({ what: 'getBalance of no account', code: 'account_not_found' as const, attempt: () => getBalance(db.pool, key) })),
    fc.oneof(anyText, fc.integer(), fc.constant(new Date(Number.NaN))).map((asOf) => ({ what: 'getBalance as of a bad time', code: 'invalid_input' as const, attempt: () => getBalance(db.pool, 'ann:USD', { asOf } as never) })),
    fc.oneof(notAString, fc.constant({}), fc.constant({ id: unknownId, key: 'taken' }), fc.record({ key: invalidKeyText })).map((lookup) => ({
      what: 'getTransfer with a bad lookup',
      code: 'invalid_input' as const,
      attempt: () => getTransfer(db.pool, lookup as never),
    })),
    validKeyText.filter((key) => key !== 'taken' && key !== 'funding').map((key) => ({ what: 'getTransfer of no key', code: 'transfer_not_found' as const, attempt: () => getTransfer(db.pool, { key: `missing:${key}`.slice(0, 200) }) })),
    fc.oneof(notAString, anyText, fc.constant({ amount: 5n, currency: 'USD' })).map((money) => ({ what: 'minorUnits of not a dinero', code: 'invalid_input' as const, attempt: () => minorUnits(money as never) })),
  );
  await assertAllRefused(cases, 2_000);
});

test('valid accounts and balance reads round-trip hostile keys and metadata exactly', async () => {
  let sequence = 0;
  await fc.assert(
    fc.asyncProperty(validKeyText, validMetadata, fc.boolean(), fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), async (keyText, metadata, allowNegative, asOf) => {
      const key = `acct:${sequence++}:${keyText}`.slice(0, 200);
      const account = await createAccount(db.pool, { key, currency: 'EUR', allowNegative, metadata });
      assert.equal(account.key, key);
      assert.deepEqual(account.metadata, JSON.parse(JSON.stringify(metadata)));
      assert.equal((await createAccount(db.pool, { key, currency: 'EUR', allowNegative, metadata })).key, key);
      await postTransfer(db.pool, { key: `fund:${key}`.slice(0, 200), legs: [{ from: 'world:EUR', to: key, amount: eur(7n) }] });
      assert.equal(minor((await getBalance(db.pool, key)).posted), 7n);
      const past = await getBalance(db.pool, key, { asOf });
      assert.equal(minor(past.posted), asOf.getTime() >= Date.now() ? 7n : 0n);
      assert.equal((await getAccount(db.pool, key)).key, key);
    }),
    fuzzParameters(120),
  );
  await assertLedgerInvariants(db.pool);
});
