import { sql } from '@databases/pg';
import { array, nullable, number, object, string, type Infer } from 'superstruct';
import type { Session } from '../../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../../db/rows.js';

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

export const ExchangeRow = object({
  workflow_id: string(),
  key: string(),
  status: string(),
  source_account: string(),
  target_account: string(),
  source_currency: string(),
  target_currency: string(),
  source_amount: Int8Text,
  hold_id: string(),
  quote_id: nullable(string()),
  rate_amount: nullable(Int8Text),
  rate_scale: nullable(number()),
  quote_expires_at: nullable(TimestampText),
  target_amount: nullable(Int8Text),
  settlement_id: nullable(string()),
  // the two currencies' definitions, so a step needs no lookup of its own
  source_base: number(),
  source_exponent: number(),
  target_base: number(),
  target_exponent: number(),
});
export type ExchangeRow = Infer<typeof ExchangeRow>;

const exchangeColumns = sql`
  x.workflow_id::text as workflow_id, w.key, w.status, x.source_account, x.target_account, x.source_currency, x.target_currency,
  x.source_amount::text as source_amount, x.hold_id::text as hold_id, x.quote_id, x.rate_amount::text as rate_amount,
  x.rate_scale::int as rate_scale, ${iso('x.quote_expires_at')} as quote_expires_at, x.target_amount::text as target_amount,
  x.settlement_id::text as settlement_id, sc.base::int as source_base, sc.exponent::int as source_exponent,
  tc.base::int as target_base, tc.exponent::int as target_exponent`;

export async function selectExchange(db: Session, workflowId: string): Promise<ExchangeRow | undefined> {
  const [row] = await db.query(sql`
    select ${exchangeColumns} from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id
    join ledgerbox.currencies sc on sc.code = x.source_currency join ledgerbox.currencies tc on tc.code = x.target_currency
    where x.workflow_id = ${workflowId}::uuid`);
  return row === undefined ? undefined : readRow(ExchangeRow, row, 'exchange');
}

/** The quote is stored once: a second store (a redelivered step) changes nothing. */
export async function storeQuote(
  db: Session,
  workflowId: string,
  quote: { quoteId: string; rateAmount: bigint; rateScale: number; expiresAt: Date },
): Promise<void> {
  await db.query(sql`
    update ledgerbox.exchanges set quote_id = ${quote.quoteId}, rate_amount = ${quote.rateAmount.toString()}::bigint,
      rate_scale = ${quote.rateScale}, quote_expires_at = ${quote.expiresAt.toISOString()}::timestamptz
    where workflow_id = ${workflowId}::uuid and quote_id is null`);
}

export async function storeSettlement(db: Session, workflowId: string, settlement: { transferId: string; targetAmount: bigint }): Promise<void> {
  await db.query(sql`
    update ledgerbox.exchanges set settlement_id = ${settlement.transferId}::uuid, target_amount = ${settlement.targetAmount.toString()}::bigint
    where workflow_id = ${workflowId}::uuid and settlement_id is null`);
}


const StartRow = object({
  currency: nullable(object({ code: string(), base: number(), exponent: number() })),
  earlier: nullable(string()),
  accounts: array(object({ key: string(), currency: string() })),
  clearing: array(string()),
});
export type ExchangeStartRow = Infer<typeof StartRow>;

/**
 * What startExchange checks before it writes, in one round trip: the amount's currency, a
 * workflow already started under the key, the two accounts, and which FX clearing accounts of
 * their currencies exist.
 */
export async function selectExchangeStart(
  db: Session,
  start: { currency: string; key: string; from: string; to: string; clearingPrefix: string; clearingSuffix: string },
): Promise<ExchangeStartRow> {
  const [row] = await db.query(sql`
    with named as (
      select a.key, a.currency from ledgerbox.accounts a where a.key in (${start.from}, ${start.to})
    )
    select
      (select json_build_object('code', c.code, 'base', c.base, 'exponent', c.exponent) from ledgerbox.currencies c where c.code = ${start.currency}) as currency,
      (select w.id::text from ledgerbox.workflows w where w.key = ${start.key}) as earlier,
      (select coalesce(json_agg(json_build_object('key', n.key, 'currency', n.currency)), '[]') from named n) as accounts,
      (select coalesce(json_agg(a.key), '[]') from ledgerbox.accounts a
        where a.key in (select ${start.clearingPrefix} || n.currency || ${start.clearingSuffix} from named n)) as clearing`);
  return readRow(StartRow, row, 'exchange start');
}

/**
 * The workflow, its exchange and its first step's job (ledgerbox.add_jobs, as enqueueStep adds
 * it) in one statement. False when the key was taken meanwhile: nothing was written.
 */
/**
 * Makes the transfers this transaction posts from now on the workflow's (transfers.workflow_id,
 * migration 0009), as a step's transaction does: for the hold startExchange places.
 */
export async function tagTransfersWith(db: Session, workflowId: string): Promise<void> {
  await db.query(sql`select set_config('ledgerbox.workflow_id', ${workflowId}, true)`);
}

/** The exchange's own row; and the host's later transfers in this transaction are no longer tagged as the exchange's. */
export async function insertExchange(
  db: Session,
  exchange: { workflowId: string; sourceAccount: string; targetAccount: string; sourceCurrency: string; targetCurrency: string; sourceAmount: bigint; holdId: string },
): Promise<void> {
  await db.query(sql`
    with exchange as (
      insert into ledgerbox.exchanges (workflow_id, source_account, target_account, source_currency, target_currency, source_amount, hold_id)
      values (${exchange.workflowId}::uuid, ${exchange.sourceAccount}, ${exchange.targetAccount}, ${exchange.sourceCurrency},
        ${exchange.targetCurrency}, ${exchange.sourceAmount.toString()}::bigint, ${exchange.holdId}::uuid)
      returning 1
    )
    select set_config('ledgerbox.workflow_id', '', true) from exchange`);
}
