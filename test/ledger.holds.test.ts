import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAccount, createHold, expireHolds, getBalance, postHold, postTransfer, voidHold } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { eur, minor, usd } from './support/money.ts';

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'merchant', currency: 'USD' });

async function customer(key: string, amount: bigint) {
  await createAccount(db.pool, { key, currency: 'USD' });
  await postTransfer(db.pool, { key: `fund:${key}`, legs: [{ from: 'world', to: key, amount: usd(amount) }] });
}

async function balances(key: string) {
  const balance = await getBalance(db.pool, key);
  return {
    posted: minor(balance.posted),
    pendingIncoming: minor(balance.pendingIncoming),
    pendingOutgoing: minor(balance.pendingOutgoing),
    available: minor(balance.available),
  };
}

async function holdStatus(id: string): Promise<{ status: string; posted_amount: string }> {
  return (await db.pool.query(`select status, posted_amount::text from ledgerbox.holds where id = $1`, [id])).rows[0];
}

test('a hold reserves funds: they stop being available but stay posted', async () => {
  await customer('ana', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-ana', from: 'ana', to: 'merchant', amount: usd(600n) });
  assert.equal(hold.kind, 'hold');
  assert.deepEqual(await balances('ana'), { posted: 1_000n, pendingIncoming: 0n, pendingOutgoing: 600n, available: 400n });
  assert.equal((await balances('merchant')).pendingIncoming, 600n);
  assert.deepEqual(await holdStatus(hold.id), { status: 'pending', posted_amount: '0' });
  // the reservation counts against what can still be spent, by transfers and other holds alike
  await assert.rejects(postTransfer(db.pool, { key: 'ana-spend', legs: [{ from: 'ana', to: 'merchant', amount: usd(401n) }] }), {
    code: 'insufficient_funds',
  });
  await assert.rejects(createHold(db.pool, { key: 'hold-ana-2', from: 'ana', to: 'merchant', amount: usd(401n) }), {
    code: 'insufficient_funds',
  });
});

test('posting a hold in full moves the money and releases the reservation', async () => {
  await customer('ben', 1_000n);
  const merchantBefore = await balances('merchant');
  const hold = await createHold(db.pool, { key: 'hold-ben', from: 'ben', to: 'merchant', amount: usd(250n) });
  const post = await postHold(db.pool, { key: 'post-ben', holdId: hold.id });
  assert.equal(post.kind, 'post_hold');
  assert.equal(post.holdId, hold.id);
  assert.equal(minor(post.legs[0]!.amount), 250n);
  assert.deepEqual(await balances('ben'), { posted: 750n, pendingIncoming: 0n, pendingOutgoing: 0n, available: 750n });
  assert.equal((await balances('merchant')).posted, merchantBefore.posted + 250n);
  assert.equal((await balances('merchant')).pendingIncoming, merchantBefore.pendingIncoming);
  assert.deepEqual(await holdStatus(hold.id), { status: 'posted', posted_amount: '250' });
});

test('posting part of a hold moves that part and releases the rest', async () => {
  await customer('cid', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-cid', from: 'cid', to: 'merchant', amount: usd(500n) });
  await assert.rejects(postHold(db.pool, { key: 'post-cid-too-much', holdId: hold.id, amount: usd(501n) }), { code: 'post_exceeds_hold' });
  await assert.rejects(postHold(db.pool, { key: 'post-cid-eur', holdId: hold.id, amount: eur(100n) }), { code: 'currency_mismatch' });
  await postHold(db.pool, { key: 'post-cid', holdId: hold.id, amount: usd(320n) });
  assert.deepEqual(await balances('cid'), { posted: 680n, pendingIncoming: 0n, pendingOutgoing: 0n, available: 680n });
  assert.deepEqual(await holdStatus(hold.id), { status: 'posted', posted_amount: '320' });
});

test('voiding a hold releases the reservation and moves nothing', async () => {
  await customer('dee', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-dee', from: 'dee', to: 'merchant', amount: usd(900n) });
  const voided = await voidHold(db.pool, { key: 'void-dee', holdId: hold.id });
  assert.equal(voided.kind, 'void_hold');
  assert.equal(voided.voidReason, 'voided');
  assert.deepEqual(voided.legs, []);
  assert.deepEqual(await balances('dee'), { posted: 1_000n, pendingIncoming: 0n, pendingOutgoing: 0n, available: 1_000n });
  assert.deepEqual(await holdStatus(hold.id), { status: 'voided', posted_amount: '0' });
});

test('a hold is resolved exactly once: post after void, void after post, post twice are refused', async () => {
  await customer('eve', 1_000n);
  const voidedHold = await createHold(db.pool, { key: 'hold-eve-1', from: 'eve', to: 'merchant', amount: usd(100n) });
  await voidHold(db.pool, { key: 'void-eve-1', holdId: voidedHold.id });
  await assert.rejects(postHold(db.pool, { key: 'post-eve-1', holdId: voidedHold.id }), { code: 'hold_already_resolved', message: /voided/ });

  const postedHold = await createHold(db.pool, { key: 'hold-eve-2', from: 'eve', to: 'merchant', amount: usd(100n) });
  await postHold(db.pool, { key: 'post-eve-2', holdId: postedHold.id });
  await assert.rejects(voidHold(db.pool, { key: 'void-eve-2', holdId: postedHold.id }), { code: 'hold_already_resolved', message: /posted/ });
  await assert.rejects(postHold(db.pool, { key: 'post-eve-2-again', holdId: postedHold.id }), { code: 'hold_already_resolved' });
  // the same key again is a replay, not a second resolution
  assert.equal((await postHold(db.pool, { key: 'post-eve-2', holdId: postedHold.id })).replayed, true);
  assert.deepEqual(await balances('eve'), { posted: 900n, pendingIncoming: 0n, pendingOutgoing: 0n, available: 900n });
});

test('10 concurrent posts and voids of one hold: exactly one wins', async () => {
  await customer('fay', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-fay', from: 'fay', to: 'merchant', amount: usd(700n) });
  const outcomes = await Promise.allSettled(
    Array.from({ length: 10 }, (_, index) =>
      index % 2 === 0
        ? postHold(db.pool, { key: `post-fay-${index}`, holdId: hold.id })
        : voidHold(db.pool, { key: `void-fay-${index}`, holdId: hold.id }),
    ),
  );
  assert.equal(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1);
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') assert.equal((outcome.reason as { code: string }).code, 'hold_already_resolved');
  }
  const resolutions = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where hold_id = $1`, [hold.id]);
  assert.equal(resolutions.rows[0].n, 1);
  const fay = await balances('fay');
  assert.equal(fay.pendingOutgoing, 0n);
  assert.ok(fay.posted === 300n || fay.posted === 1_000n);
});

test('the database refuses a second resolution even when written with raw SQL', async () => {
  await customer('gus', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-gus', from: 'gus', to: 'merchant', amount: usd(10n) });
  await voidHold(db.pool, { key: 'void-gus', holdId: hold.id });
  await assert.rejects(
    db.pool.query(`insert into ledgerbox.transfers (key, kind, hold_id, void_reason) values ('raw-void', 'void_hold', $1, 'voided')`, [hold.id]),
    { code: '23505', constraint: 'hold_resolved_once' },
  );
});

test('expired holds are voided by expireHolds, and cannot be posted', async () => {
  await customer('hal', 1_000n);
  const soon = new Date(Date.now() + 60_000);
  const expiring = await createHold(db.pool, { key: 'hold-hal-1', from: 'hal', to: 'merchant', amount: usd(200n), expiresAt: soon });
  const later = await createHold(db.pool, { key: 'hold-hal-2', from: 'hal', to: 'merchant', amount: usd(300n), expiresAt: new Date(Date.now() + 3_600_000) });
  const past = await createHold(db.pool, { key: 'hold-hal-3', from: 'hal', to: 'merchant', amount: usd(100n), expiresAt: new Date(Date.now() - 1_000) });
  assert.equal((await balances('hal')).available, 400n);

  await assert.rejects(postHold(db.pool, { key: 'post-hal-3', holdId: past.id }), { code: 'hold_expired' });

  const expired = await expireHolds(db.pool, { now: new Date(soon.getTime() + 1) });
  assert.deepEqual(expired.map((transfer) => transfer.holdId).sort(), [expiring.id, past.id].sort());
  assert.ok(expired.every((transfer) => transfer.voidReason === 'expired'));
  assert.equal((await holdStatus(expiring.id)).status, 'expired');
  assert.equal((await holdStatus(later.id)).status, 'pending');
  assert.deepEqual(await balances('hal'), { posted: 1_000n, pendingIncoming: 0n, pendingOutgoing: 300n, available: 700n });

  // running it again (a second worker, a retried job) changes nothing
  assert.deepEqual(await expireHolds(db.pool, { now: new Date(soon.getTime() + 1) }), []);
  await assert.rejects(postHold(db.pool, { key: 'post-hal-1', holdId: expiring.id }), { code: 'hold_already_resolved', message: /expired/ });
});

test('unknown holds are hold_not_found, including transfers that are not holds', async () => {
  await customer('ida', 100n);
  const plain = await postTransfer(db.pool, { key: 'plain-ida', legs: [{ from: 'ida', to: 'merchant', amount: usd(1n) }] });
  await assert.rejects(postHold(db.pool, { key: 'post-x', holdId: '00000000-0000-4000-8000-000000000000' }), { code: 'hold_not_found' });
  await assert.rejects(voidHold(db.pool, { key: 'void-x', holdId: plain.id }), { code: 'hold_not_found', message: /posted/ });
});

test('pending balances as of a past date count holds not yet resolved then', async () => {
  await customer('jo', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-jo', from: 'jo', to: 'merchant', amount: usd(100n), effectiveAt: '2025-05-01T00:00:00Z' });
  await postHold(db.pool, { key: 'post-jo', holdId: hold.id, effectiveAt: '2025-05-03T00:00:00Z' });
  const at = async (asOf: string) => {
    const balance = await getBalance(db.pool, 'jo', { asOf });
    return [minor(balance.posted), minor(balance.pendingOutgoing)];
  };
  // the funding transfer is effective now, so only the hold and its post show up in May 2025
  assert.deepEqual(await at('2025-04-30T00:00:00Z'), [0n, 0n]);
  assert.deepEqual(await at('2025-05-02T00:00:00Z'), [0n, 100n]);
  assert.deepEqual(await at('2025-05-04T00:00:00Z'), [-100n, 0n]);
});

test('a hold resolved exactly at the as-of time is no longer pending then', async () => {
  await customer('kim', 1_000n);
  const hold = await createHold(db.pool, { key: 'hold-kim', from: 'kim', to: 'merchant', amount: usd(40n), effectiveAt: '2025-06-01T00:00:00.000Z' });
  const voided = await voidHold(db.pool, { key: 'void-kim', holdId: hold.id });
  const at = await getBalance(db.pool, 'kim', { asOf: voided.effectiveAt });
  assert.equal(minor(at.pendingOutgoing), 0n);
  const before = await getBalance(db.pool, 'kim', { asOf: new Date(voided.effectiveAt.getTime() - 1) });
  assert.equal(minor(before.pendingOutgoing), 40n);
});

test('only unresolved holds are tracked (for expireHolds and money in limbo), so their cost follows what is open', async () => {
  await customer('lou', 1_000n);
  const open = async () => (await db.pool.query(`select count(*)::int as n, count(expires_at)::int as expiring from ledgerbox.open_hold_expiries`)).rows[0] as { n: number; expiring: number };
  const before = await open();
  const a = await createHold(db.pool, { key: 'hold-lou-1', from: 'lou', to: 'merchant', amount: usd(1n), expiresAt: new Date(Date.now() + 60_000) });
  const b = await createHold(db.pool, { key: 'hold-lou-2', from: 'lou', to: 'merchant', amount: usd(1n), expiresAt: new Date(Date.now() + 60_000) });
  const c = await createHold(db.pool, { key: 'hold-lou-3', from: 'lou', to: 'merchant', amount: usd(1n) }); // no expiry: tracked, never expired
  assert.deepEqual(await open(), { n: before.n + 3, expiring: before.expiring + 2 });
  await postHold(db.pool, { key: 'post-lou-1', holdId: a.id });
  await voidHold(db.pool, { key: 'void-lou-2', holdId: b.id });
  await voidHold(db.pool, { key: 'void-lou-3', holdId: c.id });
  assert.deepEqual(await open(), before);
});
