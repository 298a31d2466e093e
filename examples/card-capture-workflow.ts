// A card payment as a host workflow: authorize → capture → wait for the processor's
// "captured" webhook (with a deadline) → post → sleep until settlement → settle.
//
//   authorize        external: the processor authorizes the card; on yes, a hold reserves the amount
//   capture          external: ask the processor to capture
//   await_capture    signal:   the processor's webhook says captured (or capture_failed); a deadline
//   post             database: the hold is posted: the money has moved (no undoing it from here)
//   await_settlement sleep:    until the settlement cut-off
//   settle           database: the merchant's pending money becomes available
//   void             external: on decline or a missed deadline, the authorization is voided, then
//                              the hold; the workflow fails as a business outcome, and its
//                              compensation (void the hold if still pending) finds nothing left to do
//
// Used by examples/card-capture.ts, the chaos run and the tests: one definition, three drivers.
import { object, string } from 'superstruct';
import { dinero, type DineroCurrency } from 'dinero.js/bigint';
import type pg from 'pg';
import {
  createHold,
  defineWorkflow,
  getTransfer,
  postHold,
  postTransfer,
  startWorkflow,
  voidHold,
  type CardAuthorization,
  type CardCapture,
  type CardProcessor,
  type CardVoid,
  type StepDatabase,
} from 'ledgerbox';

/** The host's own table: what was asked. The workflow's input carries only its key. */
export const cardPaymentsTable = `
  create table if not exists card_payments (
    key text primary key,
    card text not null,
    payer_account text not null,
    merchant text not null,
    amount bigint not null check (amount > 0),
    currency text not null,
    created_at timestamptz not null default now()
  )`;

interface PaymentRow {
  key: string;
  card: string;
  payer_account: string;
  merchant: string;
  amount: bigint;
  currency: string;
}

async function paymentOf(db: pg.Pool | StepDatabase, key: string): Promise<PaymentRow> {
  const { rows } = await db.query<{ key: string; card: string; payer_account: string; merchant: string; amount: string; currency: string }>(
    'select key, card, payer_account, merchant, amount::text as amount, currency from card_payments where key = $1',
    [key],
  );
  const row = rows[0];
  if (row === undefined) throw new Error(`no card payment ${key}`);
  return { ...row, amount: BigInt(row.amount) };
}

/** The merchant's accounts in a currency: money captured but not yet settled, and money settled. */
export const merchantPending = (merchant: string, currency: string) => `merchant:${merchant}:pending:${currency}`;
export const merchantAvailable = (merchant: string, currency: string) => `merchant:${merchant}:${currency}`;

export interface CardCaptureOptions {
  processor: CardProcessor;
  /** How long to wait for the processor's capture webhook before voiding. */
  captureDeadline_ms: number;
  /** How long after posting the merchant's money settles (a bank cut-off). */
  settleAfter_ms: number;
  currencies: Readonly<Record<string, DineroCurrency<bigint>>>;
}

const isAuthorization = (answer: unknown): answer is CardAuthorization => typeof (answer as CardAuthorization)?.authorizationId === 'string';

export function cardCaptureWorkflow(options: CardCaptureOptions) {
  const { processor } = options;
  const money = (amount: bigint, currency: string) => dinero({ amount, currency: options.currencies[currency]! });
  const authorizationOf = (results: Readonly<Record<string, unknown>>) => (results.authorize as { authorizationId: string; holdId: string }) ?? null;

  return defineWorkflow({
    kind: 'card_capture',
    version: 1,
    input: object({ payment: string() }),
    maxAttempts: 6,
    steps: {
      authorize: {
        type: 'external',
        provider: 'card',
        async call({ db, input, idempotencyKey }) {
          const payment = await paymentOf(db as pg.Pool, input.payment);
          return processor.authorize({ card: payment.card, amount: payment.amount, currency: payment.currency, idempotencyKey });
        },
        lookup: ({ idempotencyKey }) => processor.lookup(idempotencyKey) as Promise<CardAuthorization | undefined>,
        async record(db, { input, answer, key }) {
          if (!isAuthorization(answer)) throw new Error(`not an authorization: ${JSON.stringify(answer)}`);
          if (answer.status === 'declined') return { result: answer, fail: `card declined: ${answer.reason ?? 'no reason given'}` };
          const payment = await paymentOf(db, input.payment);
          // the hold is the workflow's (made in its step): money in limbo names this payment
          const hold = await createHold(db, {
            key: `${key}:hold`,
            from: payment.payer_account,
            to: merchantPending(payment.merchant, payment.currency),
            amount: money(payment.amount, payment.currency),
            metadata: { payment: payment.key, authorization: answer.authorizationId },
          });
          return { result: { authorizationId: answer.authorizationId, holdId: hold.id }, next: 'capture' };
        },
      },
      capture: {
        type: 'external',
        provider: 'card',
        async call({ db, input, results, idempotencyKey }) {
          const payment = await paymentOf(db as pg.Pool, input.payment);
          return processor.capture({ authorizationId: authorizationOf(results).authorizationId, amount: payment.amount, idempotencyKey });
        },
        lookup: ({ idempotencyKey }) => processor.lookup(idempotencyKey) as Promise<CardCapture | undefined>,
        decide({ answer }) {
          const capture = answer as CardCapture;
          // asked, and refused outright: void now rather than wait for a webhook that won't come
          if (capture.status === 'failed') return { result: capture, next: 'void' };
          return { result: { captureId: capture.captureId }, next: 'await_capture' };
        },
      },
      await_capture: {
        type: 'signal',
        signals: ['captured', 'capture_failed'],
        deadline: { after_ms: options.captureDeadline_ms },
        async onSignal(_db, { signal }) {
          if (signal.name === 'capture_failed') return { result: { signal: signal.name, payload: signal.payload }, next: 'void' };
          return { result: { captured: signal.payload }, next: 'post' };
        },
        async onDeadline() {
          return { result: { missedDeadline: true }, next: 'void' };
        },
      },
      post: {
        type: 'database',
        // the processor has the money: failing here is for an operator (critical alert), never a void
        compensateWhenExhausted: false,
        async run(db, { key, results }) {
          const posted = await postHold(db, { key: `${key}:post`, holdId: authorizationOf(results).holdId });
          return { result: { postedBy: posted.id }, next: 'await_settlement' };
        },
      },
      await_settlement: {
        type: 'sleep',
        until: () => new Date(Date.now() + options.settleAfter_ms),
        next: 'settle',
      },
      settle: {
        type: 'database',
        compensateWhenExhausted: false,
        async run(db, { key, input }) {
          const payment = await paymentOf(db, input.payment);
          const settled = await postTransfer(db, {
            key: `${key}:settle`,
            legs: [{ from: merchantPending(payment.merchant, payment.currency), to: merchantAvailable(payment.merchant, payment.currency), amount: money(payment.amount, payment.currency) }],
            metadata: { payment: payment.key },
          });
          return { result: { settledBy: settled.id }, complete: true };
        },
      },
      void: {
        type: 'external',
        provider: 'card',
        call: ({ results, idempotencyKey }) => processor.void({ authorizationId: authorizationOf(results).authorizationId, idempotencyKey }),
        lookup: ({ idempotencyKey }) => processor.lookup(idempotencyKey) as Promise<CardVoid | undefined>,
        async record(db, { key, results, answer }) {
          const voided = await voidHold(db, { key: `${key}:void`, holdId: authorizationOf(results).holdId });
          const why = results.await_capture !== undefined && (results.await_capture as { missedDeadline?: boolean }).missedDeadline ? 'no capture webhook before the deadline' : 'capture failed';
          return { result: { voidId: (answer as CardVoid).voidId, voidedBy: voided.id }, fail: `voided: ${why}` };
        },
      },
    },
    // after a failure for good before the money moved: release the hold if it is still pending
    compensate: {
      type: 'database',
      async run(db, { key, results }) {
        const authorization = authorizationOf(results);
        // declined (its result has no hold) or failed before authorizing: nothing was held
        if (authorization?.holdId === undefined) return { result: { nothingHeld: true }, complete: true };
        const hold = await getTransfer(db, { id: authorization.holdId });
        const resolved = await db.query('select 1 from ledgerbox.transfers where hold_id = $1', [hold.id]);
        if (resolved.rowCount !== 0) return { result: { holdAlreadyResolved: true }, complete: true };
        const voided = await voidHold(db, { key: `${key}:compensate`, holdId: authorization.holdId });
        return { result: { voidedBy: voided.id }, complete: true };
      },
    },
  });
}

/**
 * The host's checkout: the payment row and its workflow in one transaction (the caller's), so
 * a payment exists if and only if its workflow does. A retried request returns the same one.
 */
export async function startCardPayment(
  client: StepDatabase,
  workflow: ReturnType<typeof cardCaptureWorkflow>,
  payment: { key: string; card: string; payerAccount: string; merchant: string; amount: bigint; currency: string },
) {
  await client.query(
    `insert into card_payments (key, card, payer_account, merchant, amount, currency) values ($1, $2, $3, $4, $5, $6) on conflict (key) do nothing`,
    [payment.key, payment.card, payment.payerAccount, payment.merchant, payment.amount.toString(), payment.currency],
  );
  return startWorkflow(client, workflow, { key: payment.key, input: { payment: payment.key } });
}

