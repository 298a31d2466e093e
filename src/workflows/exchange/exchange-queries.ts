import { sql } from '@databases/pg';
import { nullable, number, object, string, type Infer } from 'superstruct';
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
});
export type ExchangeRow = Infer<typeof ExchangeRow>;

const exchangeColumns = sql`
  x.workflow_id::text as workflow_id, w.key, w.status, x.source_account, x.target_account, x.source_currency, x.target_currency,
  x.source_amount::text as source_amount, x.hold_id::text as hold_id, x.quote_id, x.rate_amount::text as rate_amount,
  x.rate_scale::int as rate_scale, ${iso('x.quote_expires_at')} as quote_expires_at, x.target_amount::text as target_amount,
  x.settlement_id::text as settlement_id`;

export async function insertExchange(
  db: Session,
  exchange: { workflowId: string; sourceAccount: string; targetAccount: string; sourceCurrency: string; targetCurrency: string; sourceAmount: bigint; holdId: string },
): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.exchanges (workflow_id, source_account, target_account, source_currency, target_currency, source_amount, hold_id)
    values (${exchange.workflowId}::uuid, ${exchange.sourceAccount}, ${exchange.targetAccount}, ${exchange.sourceCurrency},
      ${exchange.targetCurrency}, ${exchange.sourceAmount.toString()}::bigint, ${exchange.holdId}::uuid)`);
}

export async function selectExchange(db: Session, workflowId: string): Promise<ExchangeRow | undefined> {
  const [row] = await db.query(sql`
    select ${exchangeColumns} from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id
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

