// In-memory fakes of the exchange's providers, for tests and the demo: good idempotent
// providers (see IdempotentDesk) that a fault plan can make fail, time out (the work is done
// but the answer is lost), dawdle or hang. They count how often they really did the work, per key.
import { LedgerboxError } from '../errors.js';
import type { ComplianceDecision, ComplianceProvider, FxQuote, FxRateProvider } from '../workflows/exchange/providers.js';
import { FaultInjector, IdempotentDesk, type FaultPlan } from './faults.js';

export class FakeFxRateProvider implements FxRateProvider {
  private readonly desk: IdempotentDesk<FxQuote>;
  private sequence = 0;

  constructor(
    private readonly options: {
      /** `${from}/${to}` → rate. A pair not listed fails its quote (`provider_failed`, not retryable): no inverse is derived. */
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
