import { LedgerboxError } from '../../errors.js';
import { mulberry32 } from '../../seeded-random.js';

/**
 * The outside world an exchange talks to. Both providers take an idempotency key: asked twice
 * with the same key they answer the same without doing the work again, and `lookup` tells
 * what, if anything, was answered under a key (for an outcome a timeout left unknown).
 */
export interface FxQuote {
  quoteId: string;
  /** Units of `to` per unit of `from`, as a scaled integer: 0.9213 is { amount: 9213n, scale: 4 }. */
  rate: { amount: bigint; scale: number };
  expiresAt: Date;
}

export interface FxRateProvider {
  quote(request: { from: string; to: string; idempotencyKey: string }): Promise<FxQuote>;
  lookup(idempotencyKey: string): Promise<FxQuote | undefined>;
}

export interface ComplianceDecision {
  decision: 'approved' | 'declined';
  reference: string;
  reason?: string;
}

export interface ComplianceProvider {
  check(request: { account: string; amount: bigint; currency: string; idempotencyKey: string }): Promise<ComplianceDecision>;
  lookup(idempotencyKey: string): Promise<ComplianceDecision | undefined>;
}

export interface ExchangeProviders {
  fx: FxRateProvider;
  compliance: ComplianceProvider;
}

/** What a fake provider does to a call: answer, fail, lose the answer (timeout), or dawdle. */
export type Fault = 'none' | 'fail' | 'timeout' | 'slow';

export interface FaultPlan {
  /** Probability of each fault per call, 0..1. */
  failRate?: number;
  timeoutRate?: number;
  slowRate?: number;
  /** How long a slow call takes. Default 200. */
  slow_ms?: number;
  /** Seed for the fault dice, so a failing run can be replayed. */
  seed?: number;
  /** Faults to apply to the next calls, in order, before the rates. */
  script?: Fault[];
}

/**
 * In-memory providers for tests and the demo, told to fail, time out (the work is done but
 * the answer is lost) or be slow. They count how often they really did the work, per key.
 */
export class FaultInjector {
  private readonly random: () => number;
  private readonly script: Fault[];
  constructor(private readonly plan: FaultPlan = {}) {
    this.random = mulberry32(plan.seed ?? 1);
    this.script = [...(plan.script ?? [])];
  }

  next(): Fault {
    const scripted = this.script.shift();
    if (scripted !== undefined) return scripted;
    const roll = this.random();
    const fail = this.plan.failRate ?? 0;
    const timeout = this.plan.timeoutRate ?? 0;
    const slow = this.plan.slowRate ?? 0;
    if (roll < fail) return 'fail';
    if (roll < fail + timeout) return 'timeout';
    if (roll < fail + timeout + slow) return 'slow';
    return 'none';
  }

  get slow_ms(): number {
    return this.plan.slow_ms ?? 200;
  }

}

/**
 * How a well-behaved idempotent provider answers a key: a known key gets its recorded answer, a
 * key still being worked on waits for that work, a new key is worked on (once). A fault is
 * applied on top: `fail` refuses before any work, `slow` delays the work, `timeout` does the
 * work but loses the answer on the way back.
 */
class IdempotentDesk<T> {
  readonly answers = new Map<string, T>();
  readonly executions = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<T>>();

  constructor(
    private readonly provider: string,
    private readonly faults: FaultInjector,
  ) {}

  async serve(key: string, produce: () => T): Promise<T> {
    const fault = this.faults.next();
    if (fault === 'fail') throw new LedgerboxError('provider_failed', `${this.provider} failed (injected)`, { retryable: true });
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      const known = this.answers.get(key);
      pending =
        known !== undefined
          ? Promise.resolve(known)
          : (async () => {
              if (fault === 'slow') await new Promise((resolve) => setTimeout(resolve, this.faults.slow_ms));
              const answer = produce();
              this.answers.set(key, answer);
              this.executions.set(key, (this.executions.get(key) ?? 0) + 1);
              return answer;
            })();
      this.inFlight.set(key, pending);
      void pending.finally(() => this.inFlight.delete(key)).catch(() => undefined);
    }
    const answer = await pending;
    if (fault === 'timeout') throw new LedgerboxError('provider_timeout', `${this.provider} timed out (injected): outcome unknown`, { retryable: true });
    return answer;
  }
}

export class FakeFxRateProvider implements FxRateProvider {
  private readonly desk: IdempotentDesk<FxQuote>;
  private sequence = 0;

  constructor(
    private readonly options: {
      /** `${from}/${to}` → rate; the inverse pair is derived when missing. */
      rates: Record<string, { amount: bigint; scale: number }>;
      quoteTtl_ms?: number;
      faults?: FaultPlan;
    },
  ) {
    this.desk = new IdempotentDesk('fx rate provider', new FaultInjector(options.faults));
  }

  /** Quotes actually produced, per idempotency key. */
  get executions(): ReadonlyMap<string, number> {
    return this.desk.executions;
  }

  quote(request: { from: string; to: string; idempotencyKey: string }): Promise<FxQuote> {
    return this.desk.serve(request.idempotencyKey, () => {
      const rate = this.options.rates[`${request.from}/${request.to}`];
      if (rate === undefined) throw new LedgerboxError('provider_failed', `No rate for ${request.from}/${request.to}`);
      return { quoteId: `q_${++this.sequence}`, rate, expiresAt: new Date(Date.now() + (this.options.quoteTtl_ms ?? 60_000)) };
    });
  }

  async lookup(idempotencyKey: string): Promise<FxQuote | undefined> {
    return this.desk.answers.get(idempotencyKey);
  }
}

export class FakeComplianceProvider implements ComplianceProvider {
  private readonly desk: IdempotentDesk<ComplianceDecision>;
  private sequence = 0;

  constructor(
    private readonly options: {
      /** Accounts whose exchanges are declined. */
      declinedAccounts?: readonly string[];
      faults?: FaultPlan;
    } = {},
  ) {
    this.desk = new IdempotentDesk('compliance provider', new FaultInjector(options.faults));
  }

  /** Checks actually run, per idempotency key: a duplicate call must not run one again. */
  get executions(): ReadonlyMap<string, number> {
    return this.desk.executions;
  }

  check(request: { account: string; amount: bigint; currency: string; idempotencyKey: string }): Promise<ComplianceDecision> {
    return this.desk.serve(request.idempotencyKey, () => {
      const declined = this.options.declinedAccounts?.includes(request.account) ?? false;
      return declined
        ? { decision: 'declined', reference: `c_${++this.sequence}`, reason: 'account on the decline list' }
        : { decision: 'approved', reference: `c_${++this.sequence}` };
    });
  }

  async lookup(idempotencyKey: string): Promise<ComplianceDecision | undefined> {
    return this.desk.answers.get(idempotencyKey);
  }
}
