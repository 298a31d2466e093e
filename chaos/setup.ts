// Before the faults: the schema, the host's own tables, the accounts and their opening balances,
// all through the public API except the host's tables (which are the host's business).
import type pg from 'pg';
import { cardPaymentsTable } from '../examples/card-capture-workflow.ts';
import { createAccount, migrate, postTransfers } from '../src/index.ts';
import { cardProcessorSchema } from './cards.ts';
import type { Plan } from './plan.ts';

/**
 * The host's tables: `requests` gets one row per request in the same transaction as its
 * ledgerbox call (a row without its ledger writes, or the reverse, is a broken transaction);
 * `notified` counts the deliveries of each exchangeSettled job. The card payments have the
 * example's own table, card_payments.
 */
const hostSchema = `
  create schema if not exists chaos_host;
  create table if not exists chaos_host.requests (
    op_id text primary key,
    client integer not null,
    kind text not null,
    created_at timestamptz not null default now()
  );
  create table if not exists chaos_host.notified (
    exchange_id uuid primary key,
    deliveries integer not null
  );
`;

export async function setUp(pool: pg.Pool, plan: Plan): Promise<void> {
  await migrate({ pgPool: pool });
  await pool.query(hostSchema);
  // the card workflow's host table (its payments), and the card processor's own tables
  await pool.query(cardPaymentsTable);
  await pool.query(cardProcessorSchema);
  for (const account of plan.accounts) await createAccount(pool, { key: account.key, currency: account.currency, allowNegative: account.allowNegative });
  const funding = plan.funding.map((leg, index) => ({
    key: `chaos:fund:${index}`,
    legs: [{ from: leg.from, to: leg.to, amount: { amount: leg.amount, currency: leg.currency } }],
    metadata: { purpose: 'opening balance' },
  }));
  for (let index = 0; index < funding.length; index += 500) await postTransfers(pool, funding.slice(index, index + 500));
}
