// The providers inside a chaos worker, and the faults injected around them from the worker's
// seeded stream, each reported to the run as it happens:
//   fail     the call is refused before any work;
//   timeout  the work is done but the answer is lost;
//   slow     the answer comes late, sometimes later than the step waits (a real timeout).
// The exchange's providers are ledgerbox's in-memory fakes (an idempotent desk per key, the
// decline list), one set per worker process, as each replica of a service would have its own
// client: an answer lost on one worker is not known to the others. Their quotes and checks
// move no money, so a worker killed with what it asked is harmless. The card processor moves
// money, so it is one for the whole run, in the database (chaos/cards.ts), and a capture made
// for a worker that was then killed is found by the next worker's ask or lookup.
import {
  LedgerboxError,
  type CardProcessor,
  type ComplianceDecision,
  type ComplianceProvider,
  type ExchangeProviders,
  type FxQuote,
  type FxRateProvider,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { dice } from './random.ts';
import { chaosRates, currencies, customerAccount } from './plan.ts';
import type { providerFaultKinds, providerNames } from './protocol.ts';

export interface ProviderFaultRates {
  failRate: number;
  timeoutRate: number;
  slowRate: number;
  /** A slow answer takes up to this long. */
  slowMax_ms: number;
}

type FaultKind = (typeof providerFaultKinds)[number];
type ProviderName = (typeof providerNames)[number];

/** One worker's provider faults: every call of every provider takes the next roll of one stream. */
export interface ProviderFaults {
  /**
   * Makes the call `work`, or fails it, or delays it, by the next roll. `lostAnswer` is what a
   * timeout does once the work is done: the way the caller learns it never got the answer.
   */
  call<T>(provider: ProviderName, work: () => Promise<T>, lostAnswer: (answer: T) => Promise<T>): Promise<T>;
}

export function providerFaults(options: { seed: number; rates: ProviderFaultRates; report: (fault: { kind: FaultKind; provider: ProviderName; delay_ms?: number }) => void }): ProviderFaults {
  const random = dice(options.seed);
  const { failRate, timeoutRate, slowRate, slowMax_ms } = options.rates;
  return {
    async call(provider, work, lostAnswer) {
      const roll = random.next();
      if (roll < failRate) {
        options.report({ kind: 'provider_fail', provider });
        throw new LedgerboxError('provider_failed', `${provider} provider failed (chaos)`, { retryable: true });
      }
      if (roll < failRate + timeoutRate) {
        const answer = await work();
        options.report({ kind: 'provider_timeout', provider });
        return lostAnswer(answer);
      }
      if (roll < failRate + timeoutRate + slowRate) {
        const delay_ms = 1 + random.int(slowMax_ms);
        options.report({ kind: 'provider_slow', provider, delay_ms });
        await new Promise((resolve) => setTimeout(resolve, delay_ms));
      }
      return work();
    },
  };
}

export function faultyProviders(options: { faults: ProviderFaults; declined: readonly string[]; erroring: readonly string[] }): ExchangeProviders {
  const accountsOf = (customers: readonly string[]) => customers.flatMap((customer) => currencies.map((code) => customerAccount(customer, code)));
  // quotes outlive any retry of a chaos run: an expired quote is a business outcome, not a fault
  const fx = new FakeFxRateProvider({ rates: chaosRates, quoteTtl_ms: 15 * 60_000 });
  const fake = new FakeComplianceProvider({ declinedAccounts: accountsOf(options.declined) });
  const erroring = new Set(accountsOf(options.erroring));
  // the fakes' own meaning of a timeout: the work is done and the call throws provider_timeout,
  // which the exchange's steps answer with a lookup
  const thrown = (provider: ProviderName) => async (): Promise<never> => {
    throw new LedgerboxError('provider_timeout', `${provider} provider timed out (chaos): the work was done, the answer lost`, { retryable: true });
  };
  const withFaults = <T>(provider: 'fx' | 'compliance', work: () => Promise<T>) => options.faults.call(provider, work, thrown(provider));

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

/**
 * The run's card processor behind one worker's faults. A lost answer here is a real timeout:
 * the capture is made, and the answer only comes after `answerLostFor_ms` (past the step's
 * budget), so the step gives up waiting and asks `lookup`, which finds the capture. (Not a
 * thrown provider_timeout: the card workflow is compiled by the package build that
 * examples/card-capture-workflow.ts imports, which would not recognise this tree's error class.)
 */
export function faultyCardProcessor(processor: CardProcessor, faults: ProviderFaults, answerLostFor_ms: number): CardProcessor {
  const late = async <T>(answer: T): Promise<T> => {
    await new Promise((resolve) => setTimeout(resolve, answerLostFor_ms));
    return answer;
  };
  return {
    authorize: (request) => faults.call('card', () => processor.authorize(request), late),
    capture: (request) => faults.call('card', () => processor.capture(request), late),
    void: (request) => faults.call('card', () => processor.void(request), late),
    lookup: (idempotencyKey) => processor.lookup(idempotencyKey),
  };
}
