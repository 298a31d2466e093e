// An in-memory card processor for tests of a card payment (authorize → capture or void): a good
// idempotent processor (a key asked twice answers the same, with one effect; a key still being
// worked on waits for that work) that declines the cards it is told to, and that a fault plan
// can make fail, time out (the effect happens, the answer is lost: `lookup` finds it), dawdle or
// hang (the request is lost: nothing happens, `lookup` finds nothing). Faults come from the same
// seeded machinery as the exchange fakes' (./faults.ts), so a chaos run replays from its seed.
//
// Its read-outs are the processor's side of the story, for a test to check against the ledger:
// calls and effects per kind, every authorization with what was captured on it, the captures,
// the voids, and the authorizations captured more than once (a double charge).
import { IdempotencyConflictError, InvalidInputError, LedgerboxError } from '../errors.js';
import type { CardAuthorization, CardCapture, CardProcessor, CardVoid } from '../workflows/card-processor.js';
import { FaultInjector, IdempotentDesk, type FaultPlan } from './faults.js';

/** The calls a card processor takes (and the fault plans, calls and effects are counted by). */
export type CardCall = 'authorize' | 'capture' | 'void';

export interface FakeCardProcessorOptions {
  /** Card numbers whose authorizations are declined: an answer, recorded under its key like any other. */
  declinedCards?: readonly string[];
  /** Faults for every call, drawn from one seeded stream in the order the calls arrive. */
  faults?: FaultPlan;
  /** A plan of its own for one kind of call (its own stream), in place of `faults` for that kind. */
  faultsFor?: Partial<Record<CardCall, FaultPlan>>;
}

/** An authorization as the processor holds it. `captured` is the sum of its captures. */
export interface FakeAuthorization {
  readonly authorizationId: string;
  readonly card: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly status: 'authorized' | 'declined' | 'voided';
  readonly captured: bigint;
}

type Answer = CardAuthorization | CardCapture | CardVoid;
/** What was asked under a key, to refuse the key's reuse for a different request. */
type Request = { call: CardCall } & Record<string, unknown>;

export class FakeCardProcessor implements CardProcessor {
  private readonly desk: IdempotentDesk<Answer>;
  private readonly faultsFor: Partial<Record<CardCall, FaultInjector>> = {};
  private readonly requests = new Map<string, Request>();
  private readonly authorizationsById = new Map<string, { -readonly [K in keyof FakeAuthorization]: FakeAuthorization[K] }>();
  private readonly captures: { readonly authorizationId: string; readonly captureId: string; readonly amount: bigint }[] = [];
  private readonly voids: { readonly authorizationId: string; readonly voidId: string }[] = [];
  private readonly callCounts = { authorize: 0, capture: 0, void: 0, lookup: 0 };
  private readonly effectCounts = { authorize: 0, capture: 0, void: 0 };
  private sequence = 0;

  constructor(private readonly options: FakeCardProcessorOptions = {}) {
    this.desk = new IdempotentDesk('card processor', new FaultInjector(options.faults));
    for (const [call, plan] of Object.entries(options.faultsFor ?? {}) as [CardCall, FaultPlan | undefined][]) {
      if (plan !== undefined) this.faultsFor[call] = new FaultInjector(plan);
    }
  }

  async authorize(request: { card: string; amount: bigint; currency: string; idempotencyKey: string }): Promise<CardAuthorization> {
    this.callCounts.authorize += 1;
    text(request.card, 'card');
    positive(request.amount, 'amount');
    text(request.currency, 'currency');
    const { card, amount, currency } = request;
    return this.serve('authorize', request.idempotencyKey, { card, amount, currency }, (): CardAuthorization => {
      const authorizationId = `auth_${++this.sequence}`;
      const declined = this.options.declinedCards?.includes(card) ?? false;
      this.authorizationsById.set(authorizationId, { authorizationId, card, amount, currency, status: declined ? 'declined' : 'authorized', captured: 0n });
      return declined ? { authorizationId, status: 'declined', reason: 'card on the decline list' } : { authorizationId, status: 'authorized' };
    });
  }

  /**
   * Captures up to the authorized amount. A capture under a new key is a new capture, even of an
   * authorization captured already: the fake does not refuse it, so that a workflow capturing
   * twice shows as a double charge in `doubleCaptured()` instead of hiding behind a refusal.
   */
  async capture(request: { authorizationId: string; amount: bigint; idempotencyKey: string }): Promise<CardCapture> {
    this.callCounts.capture += 1;
    text(request.authorizationId, 'authorizationId');
    positive(request.amount, 'amount');
    const { authorizationId, amount } = request;
    return this.serve('capture', request.idempotencyKey, { authorizationId, amount }, (): CardCapture => {
      const captureId = `cap_${++this.sequence}`;
      const authorization = this.authorizationsById.get(authorizationId);
      const refusal =
        authorization === undefined
          ? 'unknown authorization'
          : authorization.status !== 'authorized'
            ? `authorization ${authorization.status}`
            : amount > authorization.amount
              ? `amount above the authorized ${authorization.amount}`
              : undefined;
      if (authorization === undefined || refusal !== undefined) return { captureId, status: 'failed', reason: refusal };
      authorization.captured += amount;
      this.captures.push(Object.freeze({ authorizationId, captureId, amount }));
      return { captureId, status: 'captured' };
    });
  }

  /**
   * Releases an authorization: later captures of it fail. A void after a capture releases only
   * what was not captured (the capture stands); `voided()` and `captured()` both show it.
   * Voiding an authorization the processor never gave is a `provider_failed` error, not retryable.
   */
  async void(request: { authorizationId: string; idempotencyKey: string }): Promise<CardVoid> {
    this.callCounts.void += 1;
    text(request.authorizationId, 'authorizationId');
    const { authorizationId } = request;
    return this.serve('void', request.idempotencyKey, { authorizationId }, (): CardVoid => {
      const authorization = this.authorizationsById.get(authorizationId);
      if (authorization === undefined) throw new LedgerboxError('provider_failed', `card processor: no authorization ${authorizationId} to void`, { details: { authorizationId } });
      const voidId = `void_${++this.sequence}`;
      if (authorization.status === 'authorized') authorization.status = 'voided';
      this.voids.push(Object.freeze({ authorizationId, voidId }));
      return { voidId, status: 'voided' };
    });
  }

  /** Never faulted: the way to learn what a call that timed out or hung did (or did not do). */
  async lookup(idempotencyKey: string): Promise<CardAuthorization | CardCapture | CardVoid | undefined> {
    this.callCounts.lookup += 1;
    return this.desk.answers.get(idempotencyKey);
  }

  /** Calls received of a kind, whatever became of them (faulted, repeated, refused as invalid). */
  calls(call: CardCall | 'lookup'): number {
    return this.callCounts[call];
  }

  /** Calls of a kind the processor acted on: one per idempotency key, however often it was asked. */
  effects(call: CardCall): number {
    return this.effectCounts[call];
  }

  /** Effects per idempotency key (the exchange fakes' read-out): 1 for every key acted on. */
  get executions(): ReadonlyMap<string, number> {
    return this.desk.executions;
  }

  /** Every authorization given, declined ones included, in order, as it stands now. */
  authorizations(): readonly FakeAuthorization[] {
    return [...this.authorizationsById.values()].map((authorization) => Object.freeze({ ...authorization }));
  }

  /** The captures that moved money, in order. */
  captured(): readonly { readonly authorizationId: string; readonly captureId: string; readonly amount: bigint }[] {
    return [...this.captures];
  }

  /** The voids, in order. */
  voided(): readonly { readonly authorizationId: string; readonly voidId: string }[] {
    return [...this.voids];
  }

  /** Authorizations captured more than once: empty after any correct run. */
  doubleCaptured(): readonly string[] {
    const counts = new Map<string, number>();
    for (const { authorizationId } of this.captures) counts.set(authorizationId, (counts.get(authorizationId) ?? 0) + 1);
    return [...counts].filter(([, count]) => count > 1).map(([authorizationId]) => authorizationId);
  }

  /** One call through the idempotent desk, under the call kind's fault plan. */
  private serve<T extends Answer>(call: CardCall, key: string, fields: Record<string, unknown>, produce: () => T): Promise<T> {
    text(key, 'idempotencyKey');
    const request: Request = { call, ...fields };
    const earlier = this.requests.get(key);
    if (earlier !== undefined) {
      for (const field of Object.keys(request)) {
        if (earlier[field] !== request[field]) throw new IdempotencyConflictError(key, field, earlier[field], request[field]);
      }
    }
    const work = (): T => {
      const answer = Object.freeze(produce());
      this.requests.set(key, request);
      this.effectCounts[call] += 1;
      return answer;
    };
    // the desk holds every kind's answers (one key space, as at a real processor); the key's
    // request check above keeps an answer of one kind from being served for another
    return this.desk.serve(key, work, this.faultsFor[call]) as Promise<T>;
  }
}

function text(value: unknown, path: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidInputError(`\`${path}\` must be a non-empty string`, [path], value);
}

function positive(value: unknown, path: string): void {
  if (typeof value !== 'bigint' || value <= 0n) throw new InvalidInputError(`\`${path}\` must be a positive bigint of minor units`, [path], value);
}
