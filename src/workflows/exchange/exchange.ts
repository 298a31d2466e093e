import { createHash } from 'node:crypto';
import { convert, dinero, halfEven, toSnapshot, transformScale, type Dinero } from 'dinero.js/bigint';
import { defaulted, enums, integer, object, optional, pattern, refine, size, string } from 'superstruct';
import { AccountKey, IdempotencyKey, Metadata, Uuid, validate } from '../../contracts.js';
import { autocommitSession, inTransaction, type DatabaseHandle, type Session } from '../../db/handle.js';
import { IdempotencyConflictError, LedgerboxError, describeValue } from '../../errors.js';
import { holdInSession, postHoldInSession, voidOne } from '../../ledger/holds.js';
import { insertAccount, selectTransferReferencing } from '../../ledger/ledger-queries.js';
import { reverseInSession } from '../../ledger/transfers.js';
import { limits } from '../../limits.js';
import { PositiveMoney, readMoney, toDinero, toLedgerMinorUnits, type MoneyInput } from '../../money/money.js';
import { defineTask } from '../../jobs/tasks.js';
import { defineWorkflow, type StepDatabase, type Workflow } from '../define.js';
import { startInSession } from '../start.js';
import { selectWorkflowByKey } from '../workflow-queries.js';
import { insertExchange, selectExchange, selectExchangeStart, storeQuote, storeSettlement, tagTransfersWith, type ExchangeRow } from './exchange-queries.js';
import type { ExchangeProviders, FxQuote } from './providers.js';

/**
 * FX clearing accounts per currency. Every exchange's hold and settlement update an FX clearing
 * account's cached balance, which locks its row until commit; with one account per currency,
 * every exchange in the system queued on the same three rows. Spread over this many, they
 * rarely meet.
 */
export const fxClearingShards = 8;

/**
 * The FX clearing account an exchange's money passes through in `currency`: one of
 * `fxClearingShards` per currency (`ledgerbox:fx:USD:0` … `ledgerbox:fx:USD:7`), picked by the
 * exchange's key, so a replay or a retry always finds the same one. The FX position in a currency
 * is the sum over its shards.
 */
export function fxClearingAccount(currency: string, exchangeKey: string): string {
  return `${fxClearingPrefix}${currency}${fxShardSuffix(exchangeKey)}`;
}

const fxClearingPrefix = 'ledgerbox:fx:';

function fxShardSuffix(exchangeKey: string): string {
  return `:${createHash('sha256').update(exchangeKey).digest()[0]! % fxClearingShards}`;
}

/**
 * Enqueued when an exchange has settled; register a handler for it to tell the customer.
 * Its payload is the exchange id only: read the rest with getExchange.
 */
export const exchangeSettled = defineTask('ledgerbox:exchange_settled', object({ exchangeId: Uuid }));

const ExchangeInput = refine(
  object({
    key: IdempotencyKey,
    from: AccountKey,
    to: AccountKey,
    amount: PositiveMoney,
    metadata: defaulted(Metadata, () => ({})),
    holdFor_ms: defaulted(size(integer(), 1_000, limits.exchange_hold_ms_max), limits.exchange_hold_ms),
  }),
  'distinct accounts',
  (input) => (input.from !== input.to ? true : `an exchange moves money between two accounts, got ${describeValue(input.from)} twice`),
);

export interface StartedExchange {
  exchangeId: string;
  holdId: string;
  /** True when this key had already started this exchange; nothing new was written. */
  replayed: boolean;
}

/**
 * Starts a currency exchange inside the caller's transaction: checks the source account can
 * pay, places a hold on the source amount, records the exchange and enqueues its first step.
 * Roll the caller's transaction back and nothing of it remains. The steps that follow (lock the
 * rate, compliance, settle, notify) run on the worker, each exactly once.
 */
export async function startExchange(
  db: DatabaseHandle,
  input: {
    key: string;
    from: string;
    to: string;
    amount: MoneyInput;
    metadata?: Record<string, unknown>;
    /** How long the source amount stays reserved if the exchange never settles. Default one day. */
    holdFor_ms?: number;
  },
): Promise<StartedExchange> {
  const request = validate(ExchangeInput, input, 'exchange');
  const money = readMoney(request.amount)!;
  return inTransaction(db, async (db) => {
    // every check's input in one round trip; the checks themselves in the same order as ever
    const start = await selectExchangeStart(db, { currency: money.currency, key: request.key, from: request.from, to: request.to, clearingPrefix: fxClearingPrefix, clearingSuffix: fxShardSuffix(request.key) });
    const currency = start.currency;
    if (currency === null) throw new LedgerboxError('unknown_currency', `Unknown currency ${describeValue(money.currency)} at \`exchange.amount\``);
    const sourceAmount = toLedgerMinorUnits(money, currency);
    if (typeof sourceAmount === 'string') throw new LedgerboxError('currency_exponent_mismatch', `Invalid \`exchange.amount\`: ${sourceAmount}`);

    if (start.earlier !== null) return replay(db, start.earlier, request.key, { ...request, sourceAmount, sourceCurrency: money.currency });

    const accounts = start.accounts;
    const source = accounts.find((account) => account.key === request.from);
    const target = accounts.find((account) => account.key === request.to);
    const missing = [request.from, request.to].filter((key) => !accounts.some((account) => account.key === key));
    if (source === undefined || target === undefined) {
      throw new LedgerboxError('account_not_found', `No account with key ${missing.map((key) => describeValue(key)).join(', ')}`, { details: { accounts: missing } });
    }
    if (source.currency !== money.currency) {
      throw new LedgerboxError('currency_mismatch', `Account ${describeValue(source.key)} holds ${source.currency}, the amount is ${money.currency}`, {
        details: { account: source.key, accountCurrency: source.currency, amountCurrency: money.currency },
      });
    }
    if (target.currency === source.currency) {
      throw new LedgerboxError('currency_mismatch', `An exchange converts between two currencies; ${describeValue(source.key)} and ${describeValue(target.key)} both hold ${source.currency}`, {
        details: { from: source.key, to: target.key, currency: source.currency },
      });
    }
    for (const code of [source.currency, target.currency]) {
      // opened once per currency and shard, by the first exchange that needs it
      const clearing = fxClearingAccount(code, request.key);
      if (start.clearing.includes(clearing)) continue;
      await insertAccount(db, { key: clearing, currency: code, allowNegative: true, metadata: { purpose: 'fx clearing' } });
    }
    // the workflow first (its first step's job commits with everything else), then the hold,
    // made as the workflow's (transfers.workflow_id), then the exchange's own row
    const started = await startInSession(db, exchangeWorkflow, { key: request.key, input: { from: source.key, to: target.key }, subject: null, jobs: null, firstStep: 'lock_rate' });
    if (started.replayed) throw new LedgerboxError('transaction_conflict', `Exchange ${request.key} was started concurrently; retry to get it`, { retryable: true });
    const workflowId = started.workflowId;
    await tagTransfersWith(db, workflowId);
    const hold = await holdInSession(db, {
      key: `${request.key}:hold`,
      from: source.key,
      to: fxClearingAccount(source.currency, request.key),
      amount: { amount: sourceAmount, currency: source.currency },
      // a hold that cannot outlive a stuck exchange: the scheduler voids it at expiry
      expiresAt: new Date(Date.now() + request.holdFor_ms),
      metadata: { exchange: request.key, ...request.metadata },
    });
    // the exchange's row, and the host's later transfers in this transaction no longer tagged
    await insertExchange(db, {
      workflowId,
      sourceAccount: source.key,
      targetAccount: target.key,
      sourceCurrency: source.currency,
      targetCurrency: target.currency,
      sourceAmount,
      holdId: hold.id,
    });
    return { exchangeId: workflowId, holdId: hold.id, replayed: false };
  });
}

async function replay(
  db: Session,
  workflowId: string,
  key: string,
  request: { from: string; to: string; sourceAmount: bigint; sourceCurrency: string },
): Promise<StartedExchange> {
  const exchange = await selectExchange(db, workflowId);
  if (exchange === undefined) throw new LedgerboxError('exists_with_different_request', `Key ${describeValue(key)} belongs to another kind of workflow`);
  const fields: [string, unknown, unknown][] = [
    ['from', exchange.source_account, request.from],
    ['to', exchange.target_account, request.to],
    ['amount', `${exchange.source_amount} ${exchange.source_currency}`, `${request.sourceAmount} ${request.sourceCurrency}`],
  ];
  for (const [field, existing, requested] of fields) {
    if (existing !== requested) throw new IdempotencyConflictError(key, field, existing, requested);
  }
  return { exchangeId: workflowId, holdId: exchange.hold_id, replayed: true };
}

async function exchangeOf(db: Session, workflowId: string): Promise<ExchangeRow> {
  const exchange = await selectExchange(db, workflowId);
  if (exchange === undefined) throw new LedgerboxError('workflow_not_found', `Workflow ${workflowId} has no exchange`);
  return exchange;
}

const StoredQuote = object({
  quoteId: string(),
  rate: object({ amount: pattern(string(), /^[1-9]\d{0,18}$/), scale: size(integer(), 0, 18) }),
  expiresAt: string(),
});

const StoredDecision = object({ decision: enums(['approved', 'declined']), reference: string(), reason: optional(string()) });

/**
 * The converted amount: source × rate, rounded half-to-even (banker's rounding) to the target
 * currency's minor unit. The source amount is debited whole, so each currency balances on its
 * own to the minor unit; the FX clearing accounts carry the position.
 */
export function convertAmount(
  source: { amount: bigint; currency: { code: string; base: number; exponent: number } },
  target: { code: string; base: number; exponent: number },
  rate: { amount: bigint; scale: number },
): bigint {
  const asCurrency = (currency: { code: string; base: number; exponent: number }) => ({
    code: currency.code,
    base: BigInt(currency.base),
    exponent: BigInt(currency.exponent),
  });
  const converted = convert(dinero({ amount: source.amount, currency: asCurrency(source.currency) }), asCurrency(target), {
    [target.code]: { amount: rate.amount, scale: BigInt(rate.scale) },
  });
  return toSnapshot(transformScale(converted, BigInt(target.exponent), halfEven)).amount;
}

/** Converts at the stored quote and posts the hold with the target leg: the money moves here. */
async function settle(db: Session, workflow: { id: string; key: string }) {
    const exchange = await exchangeOf(db, workflow.id);
    if (exchange.quote_expires_at === null || exchange.rate_amount === null || exchange.rate_scale === null) {
      throw new LedgerboxError('workflow_not_found', `Exchange ${workflow.key} has no stored quote`);
    }
    // Policy: a quote that expired before settlement is not re-quoted behind the customer's
    // back; the exchange fails and its hold is voided.
    if (exchange.quote_expires_at.getTime() <= Date.now()) {
      return { result: { quoteExpiredAt: exchange.quote_expires_at.toISOString() }, fail: `quote ${exchange.quote_id} expired at ${exchange.quote_expires_at.toISOString()}` };
    }
    const sourceCurrency = { code: exchange.source_currency, base: exchange.source_base, exponent: exchange.source_exponent };
    const targetCurrency = { code: exchange.target_currency, base: exchange.target_base, exponent: exchange.target_exponent };
    const targetAmount = convertAmount({ amount: exchange.source_amount, currency: sourceCurrency }, targetCurrency, {
      amount: exchange.rate_amount,
      scale: exchange.rate_scale,
    });
    if (targetAmount <= 0n) {
      return { result: { targetAmount: targetAmount.toString() }, fail: `${exchange.source_amount} ${exchange.source_currency} converts to nothing at this rate` };
    }
    let settlement;
    try {
      settlement = await postHoldInSession(
        db,
        { key: `${workflow.key}:settle`, holdId: exchange.hold_id, metadata: { exchange: workflow.key, quote: exchange.quote_id } },
        [{ from: fxClearingAccount(exchange.target_currency, workflow.key), to: exchange.target_account, currency: exchange.target_currency, amount: targetAmount }],
      );
    } catch (error) {
      // the reservation ran out (expired, voided by an operator): no retry can settle it
      if (error instanceof LedgerboxError && (error.code === 'hold_expired' || error.code === 'hold_already_resolved')) {
        return { result: { hold: error.code }, fail: error.message };
      }
      throw error;
    }
    await storeSettlement(db, workflow.id, { transferId: settlement.id, targetAmount });
    return { result: { settlementId: settlement.id, targetAmount: targetAmount.toString() }, next: 'notify' } as const;
}

/** Puts the money back: voids the hold if it was never settled, reverses the settlement if it was. */
async function compensate(db: Session, workflow: { id: string; key: string }) {
    const exchange = await exchangeOf(db, workflow.id);
    if (exchange.settlement_id !== null) {
      const reversal = await reverseInSession(db, { key: `${workflow.key}:reverse`, transferId: exchange.settlement_id, metadata: { exchange: workflow.key } });
      return { result: { reversedBy: reversal.id }, complete: true } as const;
    }
    const resolution = await selectTransferReferencing(db, { holdId: exchange.hold_id });
    if (resolution !== undefined) return { result: { holdAlready: resolution.kind, by: resolution.id }, complete: true } as const;
    const voided = await voidOne(db, `${workflow.key}:void`, exchange.hold_id, 'voided', { exchange: workflow.key });
    return { result: { voidedBy: voided.id }, complete: true } as const;
}

const ExchangeWorkflowInput = object({ from: AccountKey, to: AccountKey });

/** The quote as recorded: JSON, so the rate's bigint is a string. */
function quoteAnswer(quote: FxQuote) {
  return { quoteId: quote.quoteId, rate: { amount: quote.rate.amount.toString(), scale: quote.rate.scale }, expiresAt: quote.expiresAt.toISOString() };
}

const session = (db: StepDatabase | DatabaseHandle): Session => autocommitSession(db);

/**
 * The currency exchange as a workflow on the public API, calling these providers: lock the
 * rate (FX provider, once, stored), compliance (decided on the recorded answer, no
 * transaction), settle (the money moves), notify (the host's exchange_settled job). Each worker
 * that runs exchanges makes its own with its providers (startWorker({ providers }) does).
 * @internal
 */
export function exchangeWorkflowFor(providers: ExchangeProviders): Workflow<{ from: string; to: string }> {
  return defineWorkflow({
    kind: 'exchange',
    version: 1,
    input: ExchangeWorkflowInput,
    maxAttempts: 5,
    steps: {
      lock_rate: {
        type: 'external',
        provider: 'fx',
        async call({ db, workflowId, idempotencyKey }) {
          const exchange = await exchangeOf(session(db), workflowId);
          return quoteAnswer(await providers.fx.quote({ from: exchange.source_currency, to: exchange.target_currency, idempotencyKey }));
        },
        async lookup({ idempotencyKey }) {
          const quote = await providers.fx.lookup(idempotencyKey);
          return quote === undefined ? undefined : quoteAnswer(quote);
        },
        // the quote is fetched once and stored; every later step and retry reads the stored one
        async record(db, { workflowId, answer }) {
          const quote = validate(StoredQuote, answer, 'quote');
          await storeQuote(session(db), workflowId, { quoteId: quote.quoteId, rateAmount: BigInt(quote.rate.amount), rateScale: quote.rate.scale, expiresAt: new Date(quote.expiresAt) });
          return { result: quote, next: 'compliance' };
        },
      },
      compliance: {
        type: 'external',
        provider: 'compliance',
        async call({ db, workflowId, idempotencyKey }) {
          const exchange = await exchangeOf(session(db), workflowId);
          return providers.compliance.check({ account: exchange.source_account, amount: exchange.source_amount, currency: exchange.source_currency, idempotencyKey });
        },
        lookup: ({ idempotencyKey }) => providers.compliance.lookup(idempotencyKey),
        decide({ answer }) {
          const decision = validate(StoredDecision, answer, 'decision');
          if (decision.decision === 'declined') {
            return { result: decision, fail: `compliance declined (${decision.reference}${decision.reason ? `: ${decision.reason}` : ''})` };
          }
          return { result: decision, next: 'settle' };
        },
      },
      settle: { type: 'database', run: (db, { workflowId, key }) => settle(session(db), { id: workflowId, key }) },
      notify: {
        type: 'database',
        // the money has moved: a notification that cannot be queued is for an operator, not a reversal
        compensateWhenExhausted: false,
        async run(_db, { workflowId }) {
          return {
            result: { notified: exchangeSettled.name },
            complete: true,
            jobs: [{ task: exchangeSettled, payload: { exchangeId: workflowId }, options: { jobKey: `ledgerbox:exchange_settled:${workflowId}` } }],
          };
        },
      },
    },
    compensate: { type: 'database', run: (db, { workflowId, key }) => compensate(session(db), { id: workflowId, key }) },
  });
}

/** What startExchange starts: the exchange's kind, version and first step (a worker runs its own, with providers). */
const exchangeWorkflow = exchangeWorkflowFor({
  fx: { quote: () => Promise.reject(new Error('no FX provider here')), lookup: async () => undefined },
  compliance: { check: () => Promise.reject(new Error('no compliance provider here')), lookup: async () => undefined },
} as ExchangeProviders);

export interface Exchange {
  id: string;
  key: string;
  /** running, completed, failed (compensation under way), compensated, compensation_failed */
  status: string;
  from: string;
  to: string;
  sourceAmount: Dinero<bigint>;
  /** Set once settled. */
  targetAmount: Dinero<bigint> | null;
  /** The stored quote, once the rate is locked. */
  quote: { quoteId: string; rate: { amount: bigint; scale: number }; expiresAt: Date } | null;
  holdId: string;
  settlementId: string | null;
  failureReason: string | null;
}

/** Reads an exchange and where its workflow stands; `workflow_not_found` for an unknown id. */
export async function getExchange(db: DatabaseHandle, exchangeId: string): Promise<Exchange> {
  const id = validate(Uuid, exchangeId, 'exchangeId');
  const session = autocommitSession(db);
  const exchange = await selectExchange(session, id);
  if (exchange === undefined) throw new LedgerboxError('workflow_not_found', `No exchange ${describeValue(id)}`, { details: { exchangeId: id } });
  const workflow = (await selectWorkflowByKey(session, exchange.key))!;
  const source = { code: exchange.source_currency, base: exchange.source_base, exponent: exchange.source_exponent };
  const target = { code: exchange.target_currency, base: exchange.target_base, exponent: exchange.target_exponent };
  return {
    id: exchange.workflow_id,
    key: exchange.key,
    status: exchange.status,
    from: exchange.source_account,
    to: exchange.target_account,
    sourceAmount: toDinero(exchange.source_amount, source),
    targetAmount: exchange.target_amount === null ? null : toDinero(exchange.target_amount, target),
    quote:
      exchange.quote_id === null || exchange.rate_amount === null || exchange.rate_scale === null || exchange.quote_expires_at === null
        ? null
        : { quoteId: exchange.quote_id, rate: { amount: exchange.rate_amount, scale: exchange.rate_scale }, expiresAt: exchange.quote_expires_at },
    holdId: exchange.hold_id,
    settlementId: exchange.settlement_id,
    failureReason: workflow.failure_reason,
  };
}
