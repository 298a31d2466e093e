// The fault machinery every fake in ledgerbox/testing shares: a seeded fault plan, and the
// idempotent "desk" a fake serves its calls from. A fake only says what its work is; how a call
// fails, times out, hangs or dawdles, and how a key asked twice answers once, lives here.
import { LedgerboxError } from '../errors.js';
import { mulberry32 } from '../seeded-random.js';

/**
 * What a fake does to one call:
 *   none     answers;
 *   fail     refuses before any work (a retryable `provider_failed`);
 *   timeout  does the work but loses the answer (a retryable `provider_timeout`): the outcome
 *            is unknown to the caller, and `lookup` by the idempotency key finds it;
 *   slow     does the work and answers after `slow_ms`, perhaps later than the caller waits;
 *   hang     never answers and does no work, as a request lost on the way in: only the
 *            caller's own timeout ends the wait, and `lookup` finds nothing under the key.
 */
export type Fault = 'none' | 'fail' | 'timeout' | 'slow' | 'hang';

export interface FaultPlan {
  /** Probability of each fault per call, 0..1; together at most 1. */
  failRate?: number;
  timeoutRate?: number;
  slowRate?: number;
  hangRate?: number;
  /** How long a slow call takes. Default 200. */
  slow_ms?: number;
  /** Seed for the fault dice, so a failing run can be replayed. Default 1. */
  seed?: number;
  /** Faults to apply to the next calls, in order, before the rates. */
  script?: Fault[];
}

/** Draws the fault for each call from a plan: the script first, then the seeded dice. */
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
    // cumulative thresholds in a fixed order (a new fault goes last, so old seeds replay the same)
    let threshold = 0;
    for (const [fault, rate] of [
      ['fail', this.plan.failRate],
      ['timeout', this.plan.timeoutRate],
      ['slow', this.plan.slowRate],
      ['hang', this.plan.hangRate],
    ] as const) {
      threshold += rate ?? 0;
      if (roll < threshold) return fault;
    }
    return 'none';
  }

  get slow_ms(): number {
    return this.plan.slow_ms ?? 200;
  }
}

/**
 * How a well-behaved idempotent provider answers a key: a known key gets its recorded answer, a
 * key still being worked on waits for that work, a new key is worked on (once). A fault from the
 * injector is applied on top (see `Fault`). `executions` counts the work really done, per key.
 */
export class IdempotentDesk<T> {
  readonly answers = new Map<string, T>();
  readonly executions = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<T>>();

  constructor(
    private readonly provider: string,
    private readonly faults: FaultInjector,
  ) {}

  /** Serves one call under `key`; `faults` overrides the desk's injector for this call. */
  async serve(key: string, produce: () => T, faults: FaultInjector = this.faults): Promise<T> {
    const fault = faults.next();
    if (fault === 'fail') throw new LedgerboxError('provider_failed', `${this.provider} failed (injected)`, { retryable: true });
    // settles never, and holds no timer: the process may still exit while a call hangs
    if (fault === 'hang') return new Promise<never>(() => undefined);
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      const known = this.answers.get(key);
      pending =
        known !== undefined
          ? Promise.resolve(known)
          : (async () => {
              if (fault === 'slow') await new Promise((resolve) => setTimeout(resolve, faults.slow_ms));
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
