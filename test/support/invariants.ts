import assert from 'node:assert/strict';
import type pg from 'pg';

/**
 * The ledger's invariants, re-checked from raw rows after a test: every cached balance equals
 * the sum of its entries, every transfer balances per currency, no forbidden overdraft.
 */
export async function assertLedgerInvariants(pool: pg.Pool): Promise<void> {
  const drift = await pool.query(`
    select a.key, a.posted_balance::text as cached_posted, a.pending_incoming::text as cached_in, a.pending_outgoing::text as cached_out,
      coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0)::text as posted,
      coalesce(sum(e.amount) filter (where e.phase = 'pending' and e.amount > 0 and r.id is null), 0)::text as pending_in,
      coalesce(-sum(e.amount) filter (where e.phase = 'pending' and e.amount < 0 and r.id is null), 0)::text as pending_out
    from ledgerbox.accounts a
    left join ledgerbox.entries e on e.account_id = a.id
    left join ledgerbox.transfers r on r.hold_id = e.transfer_id
    group by a.id
    having a.posted_balance <> coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0)
      or a.pending_incoming <> coalesce(sum(e.amount) filter (where e.phase = 'pending' and e.amount > 0 and r.id is null), 0)
      or a.pending_outgoing <> coalesce(-sum(e.amount) filter (where e.phase = 'pending' and e.amount < 0 and r.id is null), 0)`);
  assert.deepEqual(drift.rows, [], 'cached balances equal the sum of entries');

  const unbalanced = await pool.query(`
    select transfer_id, currency, sum(amount)::text as total from ledgerbox.entries
    group by transfer_id, currency having sum(amount) <> 0`);
  assert.deepEqual(unbalanced.rows, [], 'every transfer balances per currency');

  const overdrawn = await pool.query(`
    select key, posted_balance::text, pending_outgoing::text from ledgerbox.accounts
    where not allow_negative and posted_balance - pending_outgoing < 0`);
  assert.deepEqual(overdrawn.rows, [], 'no account that forbids it is below zero');
}
