// Effective dates keep causality (issue 13): a hold's post or void is never effective before the
// hold, a reversal never before the transfer it reverses, in the API (effective_before_original,
// nothing written) and in the database for every writer (migrations/0011_effective_causality.sql).
// And what a back-dated transfer may do to an account that forbids negative balances: the rule
// is on the account's balance over all its entries when the transfer is written, not on its
// balances as of past dates (README, "Concepts", "Effective date").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import {
  createAccount,
  createHold,
  expireHolds,
  getBalance,
  getTransfer,
  postHold,
  postTransfer,
  postTransfers,
  reverseTransfer,
  voidHold,
  type Transfer,
} from '../src/index.ts';
import { autocommitSession } from '../src/db/handle.ts';
import { insertTransfers } from '../src/ledger/ledger-queries.ts';
import { useTestDatabase } from './support/database.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'merchant', currency: 'USD' });

async function customer(key: string, amount: bigint, effectiveAt?: string): Promise<void> {
  await createAccount(db.pool, { key, currency: 'USD' });
  await postTransfer(db.pool, { key: `fund:${key}`, legs: [{ from: 'world', to: key, amount: usd(amount) }], ...(effectiveAt ? { effectiveAt } : {}) });
}

async function balances(key: string, asOf?: string | Date) {
  const balance = await getBalance(db.pool, key, asOf === undefined ? {} : { asOf });
  return { posted: minor(balance.posted), pendingOutgoing: minor(balance.pendingOutgoing), pendingIncoming: minor(balance.pendingIncoming), available: minor(balance.available) };
}

async function transferCount(key: string): Promise<number> {
  return (await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key = $1`, [key])).rows[0].n;
}

async function holdStatus(id: string): Promise<string> {
  return (await db.pool.query(`select status from ledgerbox.holds where id = $1`, [id])).rows[0].status;
}

async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>, role?: string): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    if (role !== undefined) await client.query(`set local role ${role}`);
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

async function accountId(key: string): Promise<string> {
  return (await db.pool.query(`select id::text from ledgerbox.accounts where key = $1`, [key])).rows[0].id;
}

const refusedByDatabase = { code: '23514', constraint: 'effective_not_before_original' };

// ---------------------------------------------------------------------------------------------
// The API

test('a post effective before its hold is refused with effective_before_original, showing both dates, and writes nothing', async () => {
  await customer('ada', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-ada', from: 'ada', to: 'merchant', amount: usd(300n), effectiveAt: '2025-05-10T12:00:00.000Z' });
  const before = await balances('ada');
  // in full (the one-statement path) and in part (the TypeScript path) alike
  for (const [key, amount] of [['post-ada-full', undefined], ['post-ada-part', usd(100n)]] as const) {
    await assert.rejects(
      postHold(db.pool, { key, holdId: hold.id, effectiveAt: '2025-05-10T11:59:59.999Z', ...(amount ? { amount } : {}) }),
      (error: any) => {
        assert.equal(error.code, 'effective_before_original');
        assert.match(error.message, /2025-05-10T11:59:59\.999Z/);
        assert.match(error.message, /2025-05-10T12:00:00\.000Z/);
        assert.deepEqual(error.details, { holdId: hold.id, effectiveAt: '2025-05-10T11:59:59.999Z', originalEffectiveAt: '2025-05-10T12:00:00.000Z' });
        return true;
      },
    );
    assert.equal(await transferCount(key), 0);
  }
  assert.deepEqual(await balances('ada'), before);
  assert.equal(await holdStatus(hold.id), 'pending');
  // the same instant as the hold is not before it
  const posted = await postHold(db.pool, { key: 'post-ada', holdId: hold.id, effectiveAt: '2025-05-10T12:00:00.000Z' });
  assert.equal(posted.effectiveAt.toISOString(), '2025-05-10T12:00:00.000Z');
  assert.equal(await holdStatus(hold.id), 'posted');
  await assertLedgerInvariants(db.pool);
});

test('a partial post effective at its hold\'s own date is accepted', async () => {
  await customer('bea', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-bea', from: 'bea', to: 'merchant', amount: usd(300n), effectiveAt: '2025-05-10T12:00:00.000Z' });
  const posted = await postHold(db.pool, { key: 'post-bea', holdId: hold.id, amount: usd(120n), effectiveAt: new Date('2025-05-10T12:00:00.000Z') });
  assert.equal(posted.effectiveAt.toISOString(), '2025-05-10T12:00:00.000Z');
  assert.deepEqual(await balances('bea'), { posted: 880n, pendingOutgoing: 0n, pendingIncoming: 0n, available: 880n });
});

test('a reversal effective before the transfer it reverses is refused with effective_before_original and writes nothing; at the same instant it is accepted', async () => {
  await customer('cal', 1_000n);
  const original = await postTransfer(db.pool, { key: 'pay-cal', legs: [{ from: 'cal', to: 'merchant', amount: usd(250n) }], effectiveAt: '2025-07-01T00:00:00Z' });
  await assert.rejects(reverseTransfer(db.pool, { key: 'refund-cal', transferId: original.id, effectiveAt: '2025-06-30T23:59:59Z' }), {
    code: 'effective_before_original',
    message: /2025-06-30T23:59:59\.000Z.*2025-07-01T00:00:00\.000Z/,
    details: { transferId: original.id, effectiveAt: '2025-06-30T23:59:59.000Z', originalEffectiveAt: '2025-07-01T00:00:00.000Z' },
  });
  assert.equal(await transferCount('refund-cal'), 0);
  assert.equal((await balances('cal')).posted, 750n);
  const reversal = await reverseTransfer(db.pool, { key: 'refund-cal', transferId: original.id, effectiveAt: '2025-07-01T00:00:00Z' });
  assert.equal(reversal.effectiveAt.toISOString(), '2025-07-01T00:00:00.000Z');
  assert.equal((await balances('cal')).posted, 1_000n);
  // a reversal of a post_hold follows the post, not only the hold
  const hold = await createHold(db.pool, { key: 'hold-cal', from: 'cal', to: 'merchant', amount: usd(10n), effectiveAt: '2025-08-01T00:00:00Z' });
  const post = await postHold(db.pool, { key: 'post-cal', holdId: hold.id, effectiveAt: '2025-08-05T00:00:00Z' });
  await assert.rejects(reverseTransfer(db.pool, { key: 'refund-cal-post', transferId: post.id, effectiveAt: '2025-08-03T00:00:00Z' }), {
    code: 'effective_before_original',
    details: { transferId: post.id, effectiveAt: '2025-08-03T00:00:00.000Z', originalEffectiveAt: '2025-08-05T00:00:00.000Z' },
  });
  await reverseTransfer(db.pool, { key: 'refund-cal-post', transferId: post.id, effectiveAt: '2025-08-05T00:00:00Z' });
  await assertLedgerInvariants(db.pool);
});

test('a replay is still a replay, and an already-resolved hold or reversed transfer says so before any date is judged', async () => {
  await customer('dan', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-dan', from: 'dan', to: 'merchant', amount: usd(10n), effectiveAt: '2025-09-01T00:00:00Z' });
  const post = await postHold(db.pool, { key: 'post-dan', holdId: hold.id, effectiveAt: '2025-09-02T00:00:00Z' });
  assert.equal((await postHold(db.pool, { key: 'post-dan', holdId: hold.id, effectiveAt: '2025-09-02T00:00:00Z' })).replayed, true);
  await assert.rejects(postHold(db.pool, { key: 'post-dan-again', holdId: hold.id, effectiveAt: '2025-08-01T00:00:00Z' }), { code: 'hold_already_resolved' });
  await reverseTransfer(db.pool, { key: 'refund-dan', transferId: post.id });
  await assert.rejects(reverseTransfer(db.pool, { key: 'refund-dan-again', transferId: post.id, effectiveAt: '2025-08-01T00:00:00Z' }), { code: 'transfer_already_reversed' });
});

test('a date left out is never refused: a hold or transfer dated in the future is posted, voided, expired or reversed at its own date', async () => {
  await customer('eve', 1_000n);
  const future = new Date(Date.now() + 7 * 24 * 3600_000);
  future.setUTCMilliseconds(0);
  const later = future.toISOString();
  const toPost = await createHold(db.pool, { key: 'hold-eve-post', from: 'eve', to: 'merchant', amount: usd(10n), effectiveAt: later });
  const toVoid = await createHold(db.pool, { key: 'hold-eve-void', from: 'eve', to: 'merchant', amount: usd(20n), effectiveAt: later });
  // already past its expiry, though it takes effect next week
  const toExpire = await createHold(db.pool, { key: 'hold-eve-expire', from: 'eve', to: 'merchant', amount: usd(30n), effectiveAt: later, expiresAt: new Date(Date.now() - 1_000) });
  const transfer = await postTransfer(db.pool, { key: 'pay-eve', legs: [{ from: 'eve', to: 'merchant', amount: usd(40n) }], effectiveAt: later });

  const posted = await postHold(db.pool, { key: 'post-eve', holdId: toPost.id });
  const partial = await createHold(db.pool, { key: 'hold-eve-part', from: 'eve', to: 'merchant', amount: usd(5n), effectiveAt: later });
  const postedInPart = await postHold(db.pool, { key: 'post-eve-part', holdId: partial.id, amount: usd(2n) });
  const voided = await voidHold(db.pool, { key: 'void-eve', holdId: toVoid.id });
  const expired = (await expireHolds(db.pool)).find((voided) => voided.holdId === toExpire.id);
  const reversal = await reverseTransfer(db.pool, { key: 'refund-eve', transferId: transfer.id });
  assert.ok(expired, 'expireHolds voided the hold');
  for (const resolution of [posted, postedInPart, voided, expired, reversal] as Transfer[]) assert.equal(resolution.effectiveAt.toISOString(), later, resolution.key);
  assert.equal(await holdStatus(toExpire.id), 'expired');

  // and a hold effective now is resolved now, not at the hold's date
  const now = await createHold(db.pool, { key: 'hold-eve-now', from: 'eve', to: 'merchant', amount: usd(1n) });
  const voidedNow = await voidHold(db.pool, { key: 'void-eve-now', holdId: now.id });
  assert.ok(voidedNow.effectiveAt >= now.effectiveAt && voidedNow.effectiveAt.getTime() <= Date.now() + 1_000);
  assert.ok(voidedNow.createdAt.getTime() - voidedNow.effectiveAt.getTime() < 1_000);
  await assertLedgerInvariants(db.pool);
});

test('expireHolds voids at or after the hold\'s effective date, never before it', async () => {
  await customer('fay', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-fay', from: 'fay', to: 'merchant', amount: usd(10n), effectiveAt: '2025-10-01T00:00:00Z', expiresAt: '2025-10-02T00:00:00Z' });
  const [voided] = (await expireHolds(db.pool, { now: '2025-10-03T00:00:00Z' })).filter((v) => v.holdId === hold.id);
  assert.ok(voided);
  assert.equal(voided.voidReason, 'expired');
  assert.ok(voided.effectiveAt >= hold.effectiveAt);
});

test('a hold made and posted in one transaction has the same effective date, which is accepted', async () => {
  await customer('gus', 1_000n);
  const [hold, post] = await inTransaction(async (client) => {
    const hold = await createHold(client, { key: 'hold-gus', from: 'gus', to: 'merchant', amount: usd(10n) });
    const post = await postHold(client, { key: 'post-gus', holdId: hold.id });
    return [hold, post];
  });
  assert.equal(post.effectiveAt.getTime(), hold.effectiveAt.getTime());
});

// ---------------------------------------------------------------------------------------------
// The database, for every writer

test('raw SQL: a post_hold, a void_hold or a reversal effective before its original is refused for a superuser and for ledgerbox_app', async () => {
  await customer('hal', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-hal', from: 'hal', to: 'merchant', amount: usd(100n), effectiveAt: '2025-03-01T00:00:00Z' });
  const original = await postTransfer(db.pool, { key: 'pay-hal', legs: [{ from: 'hal', to: 'merchant', amount: usd(50n) }], effectiveAt: '2025-03-01T00:00:00Z' });
  const [hal, merchant] = [await accountId('hal'), await accountId('merchant')];
  const early = '2025-02-28T23:59:59.999Z';
  const writes: [string, (client: pg.PoolClient) => Promise<unknown>][] = [
    ['void', (client) => client.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason, effective_at) values ('raw-void-hal', 'void_hold', $1, 'voided', $2)`, [hold.id, early])],
    ['expiry', (client) => client.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason, effective_at) values ('raw-expire-hal', 'void_hold', $1, 'expired', $2)`, [hold.id, early])],
    [
      'post',
      async (client) => {
        const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind, hold_id, effective_at) values ('raw-post-hal', 'post_hold', $1, $2) returning id`, [hold.id, early]);
        await client.query(`insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'USD', -100), ($1, 0, $3, 'USD', 100)`, [rows[0].id, hal, merchant]);
      },
    ],
    [
      'reversal',
      async (client) => {
        const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind, reverses_id, effective_at) values ('raw-refund-hal', 'reversal', $1, $2) returning id`, [original.id, early]);
        await client.query(`insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount) values ($1, 0, $2, 'USD', -50), ($1, 0, $3, 'USD', 50)`, [rows[0].id, merchant, hal]);
      },
    ],
  ];
  const before = await balances('hal');
  for (const role of [undefined, 'ledgerbox_app']) {
    for (const [what, write] of writes) {
      await assert.rejects(inTransaction(write, role), { ...refusedByDatabase, message: new RegExp(`is effective at ${early.replace(/\./g, '\\.')}, before the .* \\(effective at 2025-03-01T00:00:00\\.000Z\\)`) }, `${what} as ${role ?? 'superuser'}`);
    }
  }
  // the database's detail says both dates too, for any client
  await assert.rejects(inTransaction(writes[0]![1]), (error: any) => {
    assert.deepEqual(JSON.parse(error.detail), {
      key: 'raw-void-hal', kind: 'void_hold', originalId: hold.id, originalKind: 'hold', effectiveAt: early, originalEffectiveAt: '2025-03-01T00:00:00.000Z',
    });
    return true;
  });
  assert.deepEqual(await balances('hal'), before);
  assert.equal(await holdStatus(hold.id), 'pending');
  assert.equal((await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key like 'raw-%-hal'`)).rows[0].n, 0);

  // at the same instant, each is accepted (and the hold is resolved once)
  await inTransaction((client) => client.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason, effective_at) values ('raw-void-hal', 'void_hold', $1, 'voided', '2025-03-01T00:00:00Z')`, [hold.id]), 'ledgerbox_app');
  await inTransaction((client) =>
    client.query(
      `with t as (insert into ledgerbox.transfers (key, kind, reverses_id, effective_at) values ('raw-refund-hal', 'reversal', $1, '2025-03-01T00:00:00Z') returning id)
       insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
       select t.id, 0, e.account_id, 'USD', e.amount from t, (values ($2::bigint, -50::bigint), ($3::bigint, 50::bigint)) e(account_id, amount)`,
      [original.id, merchant, hal],
    ),
  );
  assert.equal(await holdStatus(hold.id), 'voided');
  assert.deepEqual(await balances('hal'), { posted: 1_000n, pendingOutgoing: 0n, pendingIncoming: 0n, available: 1_000n });
  await assertLedgerInvariants(db.pool);
});

test('raw SQL: the check is not deferred (SET CONSTRAINTS cannot postpone it), covers every row of a multi-row statement, and an original written by the same statement', async () => {
  await customer('ida', 1_000n);
  const a = await createHold(db.pool, { key: 'hold-ida-a', from: 'ida', to: 'merchant', amount: usd(1n), effectiveAt: '2025-04-01T00:00:00Z' });
  const b = await createHold(db.pool, { key: 'hold-ida-b', from: 'ida', to: 'merchant', amount: usd(1n), effectiveAt: '2025-04-01T00:00:00Z' });
  // deferred or immediate, the statement itself fails: nothing to wait for at commit
  for (const mode of ['deferred', 'immediate']) {
    await assert.rejects(
      inTransaction(async (client) => {
        await client.query(`set constraints all ${mode}`);
        await client.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason, effective_at) values ('raw-void-ida', 'void_hold', $1, 'voided', '2025-03-01T00:00:00Z')`, [a.id]);
        assert.fail('the insert should have been refused');
      }),
      refusedByDatabase,
    );
  }
  // a refused statement mid-transaction leaves the transaction failed, so nothing of it commits
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query('set constraints all deferred');
    await client.query('savepoint s');
    await assert.rejects(client.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason, effective_at) values ('raw-void-ida', 'void_hold', $1, 'voided', '2025-03-01T00:00:00Z')`, [a.id]), refusedByDatabase);
    await client.query('rollback to savepoint s');
    await client.query('set constraints all immediate');
    await client.query('commit');
  } finally {
    client.release();
  }
  // one early row among good ones refuses the whole statement
  await assert.rejects(
    db.pool.query(
      `insert into ledgerbox.transfers (key, kind, hold_id, void_reason, effective_at) values
        ('raw-void-ida-a', 'void_hold', $1, 'voided', '2025-04-02T00:00:00Z'),
        ('raw-void-ida-b', 'void_hold', $2, 'voided', '2025-03-31T00:00:00Z')`,
      [a.id, b.id],
    ),
    { ...refusedByDatabase, message: /raw-void-ida-b/ },
  );
  assert.equal(await holdStatus(a.id), 'pending');
  assert.equal(await holdStatus(b.id), 'pending');
  // a transfer and its reversal inserted by one statement: the reversal is still judged against it
  const [ida, merchant] = [await accountId('ida'), await accountId('merchant')];
  const originalId = (await db.pool.query(`select gen_random_uuid()::text as id`)).rows[0].id;
  const transferAndReversal = (reversalAt: string) =>
    inTransaction(
      (client) =>
        client.query(
          `with t as (
             insert into ledgerbox.transfers (id, key, kind, reverses_id, effective_at) values
               ($1, 'raw-pay-ida', 'posted', null, '2025-04-10T00:00:00Z'),
               (gen_random_uuid(), 'raw-refund-ida', 'reversal', $1, $2)
             returning id, kind
           )
           insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
           select t.id, 0, e.account_id, 'USD', case when t.kind = 'posted' then e.amount else -e.amount end
           from t, (values ($3::bigint, -3::bigint), ($4::bigint, 3::bigint)) e(account_id, amount)`,
          [originalId, reversalAt, ida, merchant],
        ),
      'ledgerbox_app',
    );
  await assert.rejects(transferAndReversal('2025-04-09T23:59:59.999Z'), { ...refusedByDatabase, message: /raw-refund-ida/ });
  assert.equal(await transferCount('raw-pay-ida'), 0);
  await transferAndReversal('2025-04-10T00:00:00Z');
  assert.equal((await getTransfer(db.pool, { key: 'raw-refund-ida' })).reversesId, originalId);
  await assertLedgerInvariants(db.pool);
});

test('the one-statement posting function is refused an early post too (it answers null), and the API then reports it by its code', async () => {
  await customer('jon', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-jon', from: 'jon', to: 'merchant', amount: usd(10n), effectiveAt: '2025-05-01T00:00:00Z' });
  const { rows } = await db.pool.query(`select ledgerbox.try_post_transfer($1::jsonb)::jsonb as answer`, [
    JSON.stringify({ key: 'raw-fast-post-jon', kind: 'post_hold', hold_id: hold.id, effective_at: '2025-04-30T00:00:00Z', legs: [] }),
  ]);
  // refused by the database's rule, undone, and left to the TypeScript path to explain
  assert.equal(rows[0].answer, null);
  assert.equal(await transferCount('raw-fast-post-jon'), 0);
  assert.equal(await holdStatus(hold.id), 'pending');
  // inside a host's transaction too: the refusal leaves it usable, and nothing of the call commits
  await inTransaction(async (client) => {
    await assert.rejects(postHold(client, { key: 'post-jon', holdId: hold.id, effectiveAt: '2025-04-30T00:00:00Z' }), { code: 'effective_before_original' });
    await postHold(client, { key: 'post-jon', holdId: hold.id, effectiveAt: '2025-05-01T00:00:00Z' });
  });
  assert.equal(await holdStatus(hold.id), 'posted');
});

test("a refusal raised by the database itself becomes the API's error, same code and both dates", async () => {
  await customer('kit', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-kit', from: 'kit', to: 'merchant', amount: usd(10n), effectiveAt: '2025-05-01T00:00:00Z' });
  // past the API's own check: the insert that writeTransfer makes, with an early date
  await assert.rejects(
    insertTransfers(autocommitSession(db.pool), [{ key: 'direct-void-kit', kind: 'void_hold', holdId: hold.id, voidReason: 'voided', metadata: {}, effectiveAt: new Date('2025-04-01T00:00:00Z') }], []),
    {
      code: 'effective_before_original',
      message: /direct-void-kit.*2025-04-01T00:00:00\.000Z.*2025-05-01T00:00:00\.000Z/,
      details: { holdId: hold.id, effectiveAt: '2025-04-01T00:00:00.000Z', originalEffectiveAt: '2025-05-01T00:00:00.000Z' },
    },
  );
  assert.equal(await holdStatus(hold.id), 'pending');
});

// ---------------------------------------------------------------------------------------------
// What a balance as of a date shows

test('a balance as of any date never shows money posted from a hold before the hold existed', async () => {
  await customer('lea', 1_000n, '2025-01-01T00:00:00Z');
  const holdAt = '2025-06-10T00:00:00.000Z';
  const postAt = '2025-06-20T00:00:00.000Z';
  const hold = await createHold(db.pool, { key: 'hold-lea', from: 'lea', to: 'merchant', amount: usd(400n), effectiveAt: holdAt });
  // the acceptance suite's case: a post dated before its hold
  await assert.rejects(postHold(db.pool, { key: 'post-lea', holdId: hold.id, effectiveAt: '2025-06-01T00:00:00Z' }), { code: 'effective_before_original' });
  await postHold(db.pool, { key: 'post-lea', holdId: hold.id, amount: usd(250n), effectiveAt: postAt });
  const merchantBefore = await balances('merchant', '2025-06-09T23:59:59.999Z');
  const expected: [string, { posted: bigint; pendingOutgoing: bigint }][] = [
    ['2025-06-01T00:00:00.000Z', { posted: 1_000n, pendingOutgoing: 0n }],
    ['2025-06-09T23:59:59.999Z', { posted: 1_000n, pendingOutgoing: 0n }],
    [holdAt, { posted: 1_000n, pendingOutgoing: 400n }],
    ['2025-06-19T23:59:59.999Z', { posted: 1_000n, pendingOutgoing: 400n }],
    [postAt, { posted: 750n, pendingOutgoing: 0n }],
    ['2026-01-01T00:00:00.000Z', { posted: 750n, pendingOutgoing: 0n }],
  ];
  for (const [asOf, want] of expected) {
    const got = await balances('lea', asOf);
    assert.deepEqual({ posted: got.posted, pendingOutgoing: got.pendingOutgoing }, want, asOf);
    assert.ok(got.available >= 0n, `lea is never below zero as of ${asOf}`);
  }
  // the merchant gains nothing from the hold before it, and the posted 250 only from the post on
  const merchantAt = async (asOf: string) => balances('merchant', asOf);
  assert.deepEqual(await merchantAt('2025-06-01T00:00:00Z'), merchantBefore);
  assert.equal((await merchantAt('2025-06-19T23:59:59.999Z')).posted, merchantBefore.posted);
  assert.equal((await merchantAt('2025-06-19T23:59:59.999Z')).pendingIncoming, merchantBefore.pendingIncoming + 400n);
  assert.equal((await merchantAt(postAt)).posted, merchantBefore.posted + 250n);
  // and across the whole ledger no resolution or reversal is effective before what it resolves
  const { rows } = await db.pool.query(`
    select count(*)::int as n from ledgerbox.transfers r
    join ledgerbox.transfers o on o.id = coalesce(r.hold_id, r.reverses_id)
    where r.effective_at < o.effective_at`);
  assert.equal(rows[0].n, 0);
});

// ---------------------------------------------------------------------------------------------
// Accounts that forbid negative balances: the rule is on the balance over all entries

test('no overdraft, back-dated: a debit the account can pay now is accepted, even though its balance as of an earlier date then reads below zero', async () => {
  // funded today; a card payment that settled last year is recorded late, dated when it happened
  await customer('max', 100n);
  const late = await postTransfer(db.pool, { key: 'late-max', legs: [{ from: 'max', to: 'merchant', amount: usd(60n) }], effectiveAt: '2025-01-15T00:00:00Z' });
  assert.equal(late.replayed, false);
  assert.deepEqual(await balances('max'), { posted: 40n, pendingOutgoing: 0n, pendingIncoming: 0n, available: 40n });
  // the history as written: before today's funding the account had paid out 60
  assert.equal((await balances('max', '2025-01-16T00:00:00Z')).posted, -60n);
  // a back-dated hold, and a batch, are judged the same way
  const hold = await createHold(db.pool, { key: 'late-hold-max', from: 'max', to: 'merchant', amount: usd(40n), effectiveAt: '2025-01-10T00:00:00Z' });
  assert.equal((await balances('max')).available, 0n);
  assert.equal((await balances('max', '2025-01-11T00:00:00Z')).available, -40n);
  await voidHold(db.pool, { key: 'late-void-max', holdId: hold.id });
  await postTransfers(db.pool, [{ key: 'late-batch-max', legs: [{ from: 'max', to: 'merchant', amount: usd(40n) }], effectiveAt: '2025-01-05T00:00:00Z' }]);
  assert.equal((await balances('max')).posted, 0n);
  assert.equal((await balances('max', '2025-01-31T00:00:00Z')).posted, -100n);
  await assertLedgerInvariants(db.pool);
});

test('no overdraft, back-dated: a debit the account cannot pay now is refused, even when its balance as of that date would have covered it', async () => {
  await customer('ned', 100n, '2025-01-01T00:00:00Z');
  await postTransfer(db.pool, { key: 'spend-ned', legs: [{ from: 'ned', to: 'merchant', amount: usd(100n) }], effectiveAt: '2025-03-01T00:00:00Z' });
  assert.equal((await balances('ned', '2025-02-01T00:00:00Z')).available, 100n);
  const refused = { code: 'insufficient_funds', details: { account: 'ned', currency: 'USD', available: '0', requested: '50' } };
  await assert.rejects(postTransfer(db.pool, { key: 'late-ned', legs: [{ from: 'ned', to: 'merchant', amount: usd(50n) }], effectiveAt: '2025-02-01T00:00:00Z' }), refused);
  await assert.rejects(createHold(db.pool, { key: 'late-hold-ned', from: 'ned', to: 'merchant', amount: usd(50n), effectiveAt: '2025-02-01T00:00:00Z' }), refused);
  await assert.rejects(postTransfers(db.pool, [{ key: 'late-batch-ned', legs: [{ from: 'ned', to: 'merchant', amount: usd(50n) }], effectiveAt: '2025-02-01T00:00:00Z' }]), {
    code: 'insufficient_funds',
  });
  for (const key of ['late-ned', 'late-hold-ned', 'late-batch-ned']) assert.equal(await transferCount(key), 0);
  // the database refuses it for raw SQL too: the account's check constraint
  const [ned, merchant] = [await accountId('ned'), await accountId('merchant')];
  await assert.rejects(
    inTransaction((client) =>
      client.query(
        `with t as (insert into ledgerbox.transfers (key, kind, effective_at) values ('raw-late-ned', 'posted', '2025-02-01T00:00:00Z') returning id)
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
         select t.id, 0, e.account_id, 'USD', e.amount from t, (values ($1::bigint, -50::bigint), ($2::bigint, 50::bigint)) e(account_id, amount)`,
        [ned, merchant],
      ),
    ),
    { code: '23514', constraint: 'account_available_not_negative' },
  );
  assert.deepEqual(await balances('ned'), { posted: 0n, pendingOutgoing: 0n, pendingIncoming: 0n, available: 0n });
  // an account that allows negative balances takes it
  await postTransfer(db.pool, { key: 'late-world', legs: [{ from: 'world', to: 'merchant', amount: usd(50n) }], effectiveAt: '2025-02-01T00:00:00Z' });
  assert.equal((await getTransfer(db.pool, { key: 'late-world' })).effectiveAt.toISOString(), '2025-02-01T00:00:00.000Z');
  await assertLedgerInvariants(db.pool);
});
