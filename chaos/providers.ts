// The exchange's providers inside a chaos worker: ledgerbox's in-memory fakes do the work (an
// idempotent desk per key, the decline list), and this layer injects the faults from the
// worker's seeded stream, reporting each one to the run as it happens:
//   fail     the call is refused before any work;
//   timeout  the work is done but the answer is lost (the fakes' own meaning of a timeout);
//   slow     the answer comes late, sometimes later than the step waits (a real timeout).
// Each worker process has its own fakes, as each replica of a service would have its own
// client: an answer lost on one worker is not known to the others.
import {
  LedgerboxError,
  type ComplianceDecision,
  type ComplianceProvider,
  type ExchangeProviders,
  type FxQuote,
  type FxRateProvider,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { dice } from './random.ts';
import { chaosRates, currencies, customerAccount } from './plan.ts';
import type { providerFaultKinds } from './protocol.ts';

export interface ProviderFaultRates {
  failRate: number;
  timeoutRate: number;
  slowRate: number;
  /** A slow answer takes up to this long. */
  slowMax_ms: number;
}

type FaultKind = (typeof providerFaultKinds)[number];

export function faultyProviders(options: {
  seed: number;
  rates: ProviderFaultRates;
  declined: readonly string[];
  erroring: readonly string[];
  report: (fault: { kind: FaultKind; provider: 'fx' | 'compliance'; delay_ms?: number }) => void;
}): ExchangeProviders {
  const random = dice(options.seed);
  const { failRate, timeoutRate, slowRate, slowMax_ms } = options.rates;
  const accountsOf = (customers: readonly string[]) => customers.flatMap((customer) => currencies.map((code) => customerAccount(customer, code)));
  // quotes outlive any retry of a chaos run: an expired quote is a business outcome, not a fault
  const fx = new FakeFxRateProvider({ rates: chaosRates, quoteTtl_ms: 15 * 60_000 });
  const fake = new FakeComplianceProvider({ declinedAccounts: accountsOf(options.declined) });
  const erroring = new Set(accountsOf(options.erroring));

  async function withFaults<T>(provider: 'fx' | 'compliance', work: () => Promise<T>): Promise<T> {
    const roll = random.next();
    if (roll < failRate) {
      options.report({ kind: 'provider_fail', provider });
      throw new LedgerboxError('provider_failed', `${provider} provider failed (chaos)`, { retryable: true });
    }
    if (roll < failRate + timeoutRate) {
      await work();
      options.report({ kind: 'provider_timeout', provider });
      throw new LedgerboxError('provider_timeout', `${provider} provider timed out (chaos): the work was done, the answer lost`, { retryable: true });
    }
    if (roll < failRate + timeoutRate + slowRate) {
      const delay_ms = 1 + random.int(slowMax_ms);
      options.report({ kind: 'provider_slow', provider, delay_ms });
      await new Promise((resolve) => setTimeout(resolve, delay_ms));
    }
    return work();
  }

  const fxProvider: FxRateProvider = {
    quote: (request): Promise<FxQuote> => withFaults('fx', () => fx.quote(request)),
    lookup: (key) => fx.lookup(key),
  };
  const compliance: ComplianceProvider = {
    check: (request): Promise<ComplianceDecision> =>
      withFaults('compliance', async () => {
        // a provider-side bug on these accounts: every check errors, so the exchange fails for good
        if (erroring.has(request.account)) throw new Error(`compliance provider: 502 Bad Gateway checking ${request.account} (chaos: every time)`);
        return fake.check(request);
      }),
    lookup: (key) => fake.lookup(key),
  };
  return { fx: fxProvider, compliance };
}
