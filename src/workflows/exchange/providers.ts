/**
 * The outside world an exchange talks to. Both providers take an idempotency key: asked twice
 * with the same key they answer the same without doing the work again, and `lookup` tells
 * what, if anything, was answered under a key (for an outcome a timeout left unknown).
 * In-memory fakes of both, for tests, are in `ledgerbox/testing` (src/testing/).
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
