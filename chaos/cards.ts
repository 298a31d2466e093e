// The card payments of a chaos run: the card capture workflow of examples/card-capture-workflow.ts
// (the one definition the example, the tests and this run share) and the card processor it
// talks to. The processor is another company's system, so it must outlive any one worker: it
// keeps its book in the run's database (chaos_card_processor, chaos_card_authorizations), shared
// by every worker process and untouched by their SIGKILLs, and answers by idempotency key as a
// real processor does: asked again under a key, it gives the first answer and does nothing more.
// Its faults (chaos/providers.ts) are injected around it, like the exchange's providers'.
import type pg from 'pg';
import { EUR, GBP, USD } from 'dinero.js/bigint';
import { cardCaptureWorkflow } from '../examples/card-capture-workflow.ts';
import { LedgerboxError, type CardAuthorization, type CardCapture, type CardProcessor, type CardVoid } from '../src/index.ts';

/** How long a payment waits for the processor's 'captured' webhook before it is voided. */
export const cardCaptureDeadline_ms = 3_000;
/** How long after posting a payment's money settles to the merchant. */
export const cardSettleAfter_ms = 300;

/** The card workflow as the chaos clients start it and the chaos workers run it. */
export function chaosCardWorkflow(processor: CardProcessor) {
  return cardCaptureWorkflow({ processor, captureDeadline_ms: cardCaptureDeadline_ms, settleAfter_ms: cardSettleAfter_ms, currencies: { USD, EUR, GBP } });
}

/**
 * The processor's tables. `chaos_card_processor` is its idempotency desk: one row per key, the
 * call it answered and its answer, how often it was asked under that key (`asks`: 1 means no
 * retry reached it) and how often a caller looked the key up after a lost answer (`lookups`).
 * `chaos_card_authorizations` is its book: each authorization, what it is and what was captured.
 */
export const cardProcessorSchema = `
  create sequence if not exists chaos_card_processor_ids;
  create table if not exists chaos_card_authorizations (
    authorization_id text primary key,
    card text not null,
    amount bigint not null check (amount > 0),
    currency text not null,
    status text not null check (status in ('authorized', 'declined', 'voided')),
    -- what its captures took: a second capture is not refused, so a workflow that captured
    -- twice shows as a double charge (the verifier looks) instead of hiding behind a refusal
    captured bigint not null default 0 check (captured >= 0)
  );
  create table if not exists chaos_card_processor (
    idempotency_key text primary key,
    kind text not null check (kind in ('authorize', 'capture', 'void')),
    request jsonb not null,
    authorization_id text not null,
    -- null only inside the transaction that acts on the call
    answer jsonb,
    asks integer not null default 1,
    lookups integer not null default 0,
    created_at timestamptz not null default now()
  );
`;

type Answer = CardAuthorization | CardCapture | CardVoid;

interface DeskRow {
  inserted: boolean;
  same_request: boolean;
  kind: string;
  authorization_id: string;
  answer: Answer | null;
}

/**
 * A card processor in PostgreSQL, for every worker process of a run at once. Each call is one
 * transaction on the processor's own pool: the desk row under the key and the effect commit
 * together, so a call killed halfway did nothing, and one that committed is found by the next
 * ask or by `lookup`. Two asks under one key at once queue on the key; the second gets the
 * first's answer.
 */
export class DatabaseCardProcessor implements CardProcessor {
  private readonly declined: ReadonlySet<string>;

  constructor(
    private readonly pool: pg.Pool,
    options: { declinedCards: readonly string[] },
  ) {
    this.declined = new Set(options.declinedCards);
  }

  authorize(request: { card: string; amount: bigint; currency: string; idempotencyKey: string }): Promise<CardAuthorization> {
    const { card, amount, currency, idempotencyKey } = request;
    return this.serve<CardAuthorization>('authorize', idempotencyKey, { card, amount: amount.toString(), currency }, null, async (client, authorizationId) => {
      const declined = this.declined.has(card);
      await client.query(`insert into chaos_card_authorizations (authorization_id, card, amount, currency, status) values ($1, $2, $3, $4, $5)`, [
        authorizationId,
        card,
        amount.toString(),
        currency,
        declined ? 'declined' : 'authorized',
      ]);
      return declined ? { authorizationId, status: 'declined', reason: 'card on the decline list' } : { authorizationId, status: 'authorized' };
    });
  }

  /** Captures up to the authorized amount; an authorization unknown, declined or voided is refused (status failed). */
  capture(request: { authorizationId: string; amount: bigint; idempotencyKey: string }): Promise<CardCapture> {
    const { authorizationId, amount, idempotencyKey } = request;
    return this.serve<CardCapture>('capture', idempotencyKey, { authorizationId, amount: amount.toString() }, authorizationId, async (client) => {
      const captureId = `cap_${await this.nextId(client)}`;
      const authorization = await this.authorization(client, authorizationId);
      const refusal =
        authorization === undefined
          ? 'unknown authorization'
          : authorization.status !== 'authorized'
            ? `authorization ${authorization.status}`
            : amount > authorization.amount
              ? `amount above the authorized ${authorization.amount}`
              : undefined;
      if (refusal !== undefined) return { captureId, status: 'failed', reason: refusal };
      await client.query(`update chaos_card_authorizations set captured = captured + $2 where authorization_id = $1`, [authorizationId, amount.toString()]);
      return { captureId, status: 'captured' };
    });
  }

  /** Releases what was not captured; a capture made stands. An authorization it never gave is an error. */
  void(request: { authorizationId: string; idempotencyKey: string }): Promise<CardVoid> {
    const { authorizationId, idempotencyKey } = request;
    return this.serve<CardVoid>('void', idempotencyKey, { authorizationId }, authorizationId, async (client) => {
      const authorization = await this.authorization(client, authorizationId);
      if (authorization === undefined) throw new LedgerboxError('provider_failed', `card processor: no authorization ${authorizationId} to void`, { details: { authorizationId } });
      if (authorization.status === 'authorized') await client.query(`update chaos_card_authorizations set status = 'voided' where authorization_id = $1`, [authorizationId]);
      return { voidId: `void_${await this.nextId(client)}`, status: 'voided' };
    });
  }

  /** Never faulted: what a call under this key answered, if it committed. */
  async lookup(idempotencyKey: string): Promise<Answer | undefined> {
    const { rows } = await this.pool.query<{ answer: Answer }>(
      `update chaos_card_processor set lookups = lookups + 1 where idempotency_key = $1 returning answer`,
      [idempotencyKey],
    );
    return rows[0]?.answer ?? undefined;
  }

  /**
   * One call: the key's desk row, and on its first ask the effect and the answer, in one
   * transaction. A later ask under the key gets the recorded answer, if it is the same request.
   */
  private async serve<T extends Answer>(
    kind: 'authorize' | 'capture' | 'void',
    idempotencyKey: string,
    request: Record<string, string>,
    authorizationId: string | null,
    act: (client: pg.PoolClient, authorizationId: string) => Promise<T>,
  ): Promise<T> {
    const client = await this.pool.connect();
    let lost: Error | undefined;
    const onError = (error: Error) => (lost = error);
    client.on('error', onError);
    try {
      await client.query('begin');
      // an authorization is named by the processor; a capture or void names the one it acts on
      const { rows } = await client.query<DeskRow>(
        `insert into chaos_card_processor as desk (idempotency_key, kind, request, authorization_id)
         values ($1, $2, $3, coalesce($4, 'auth_' || nextval('chaos_card_processor_ids')))
         on conflict (idempotency_key) do update set asks = desk.asks + 1
         returning (xmax = 0) as inserted, (kind = $2 and request = $3::jsonb) as same_request, kind, authorization_id, answer`,
        [idempotencyKey, kind, JSON.stringify(request), authorizationId],
      );
      const desk = rows[0]!;
      if (!desk.inserted) {
        await client.query('commit');
        if (!desk.same_request) {
          throw new LedgerboxError('provider_failed', `card processor: idempotency key ${idempotencyKey} was used for another request (${desk.kind})`, { details: { idempotencyKey } });
        }
        return desk.answer as T;
      }
      const answer = await act(client, desk.authorization_id);
      await client.query(`update chaos_card_processor set answer = $2 where idempotency_key = $1`, [idempotencyKey, JSON.stringify(answer)]);
      await client.query('commit');
      return answer;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.off('error', onError);
      client.release(lost);
    }
  }

  private async nextId(client: pg.PoolClient): Promise<string> {
    const { rows } = await client.query<{ id: string }>(`select nextval('chaos_card_processor_ids')::text as id`);
    return rows[0]!.id;
  }

  private async authorization(client: pg.PoolClient, authorizationId: string): Promise<{ status: string; amount: bigint; captured: bigint } | undefined> {
    const { rows } = await client.query<{ status: string; amount: string; captured: string }>(
      `select status, amount::text, captured::text from chaos_card_authorizations where authorization_id = $1 for update`,
      [authorizationId],
    );
    const row = rows[0];
    return row === undefined ? undefined : { status: row.status, amount: BigInt(row.amount), captured: BigInt(row.captured) };
  }
}
