// A day at a small fintech, placed through ledgerbox's public API exactly as a host service
// would: accounts opened and funded, currency exchanges and customer-to-customer transfers, each
// inside the service's own transaction (BEGIN … COMMIT on a pooled connection).
import { mulberry32 } from '../src/seeded-random.ts';
import { object, string } from 'superstruct';
import type pg from 'pg';
import {
  createAccount,
  defineTask,
  fanOut,
  getBalance,
  isLedgerboxError,
  postTransfer,
  startExchange,
  type ComplianceDecision,
  type ComplianceProvider,
  type ExchangeProviders,
  type HostTask,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';

export const currencies = ['USD', 'EUR', 'GBP'] as const;
export type Code = (typeof currencies)[number];

/** Each customer starts the day with this much in each currency (minor units: 100,000.00). */
const opening_balance = 100_000_00n;

export interface DayPlan {
  /** Prefix of every key this run writes, so runs on the same database never collide. */
  run: string;
  customers: string[];
  /** Customers whose exchanges compliance declines (a recorded decision: compensated, not retried). */
  declined: string[];
  /** Customers the compliance provider keeps erroring on (a bug on its side): every attempt fails, the workflow fails for good and is compensated. */
  erroring: string[];
  exchanges: number;
  transfers: number;
  seed: number;
}

export function planDay(options: { customers: number; exchanges: number; seed: number }): DayPlan {
  const customers = Array.from({ length: options.customers }, (_, index) => `c${String(index + 1).padStart(4, '0')}`);
  const few = (share: number) => Math.max(1, Math.round(options.customers * share));
  const declinedCount = few(0.02);
  const erroringCount = few(0.01);
  return {
    run: `demo-${Date.now().toString(36)}`,
    customers,
    // the last customers, so the small sizes still have ordinary ones at the front
    declined: customers.slice(-declinedCount),
    erroring: customers.slice(-(declinedCount + erroringCount), -declinedCount),
    exchanges: options.exchanges,
    transfers: Math.round(options.exchanges / 4),
    seed: options.seed,
  };
}

export const accountKey = (customer: string, code: Code) => `customer:${customer}:${code}`;
const worldKey = (code: Code) => `world:${code}`;

/** The seeded dice the day is rolled with (mulberry32), so a run can be replayed with --seed. */
export function seededRandom(seed: number): { int(below: number): number; pick<T>(items: readonly T[]): T } {
  const next = mulberry32(seed);
  const int = (below: number) => Math.floor(next() * below);
  return { int, pick: (items) => items[int(items.length)]! };
}

/**
 * The providers: in-memory fakes that fail, time out (work done, answer lost) and are slow at
 * `faultRate` of their calls, and a compliance provider that errors on every check of a few
 * customers, so some workflows fail for good and are compensated.
 */
export function demoProviders(plan: DayPlan, faultRate: number): ExchangeProviders & { fx: FakeFxRateProvider } {
  const faults = (seed: number) => ({ failRate: faultRate * 0.5, timeoutRate: faultRate * 0.3, slowRate: faultRate * 0.2, slow_ms: 40, seed });
  const fx = new FakeFxRateProvider({ rates: demoRates, faults: faults(plan.seed) });
  const fake = new FakeComplianceProvider({
    declinedAccounts: plan.declined.flatMap((customer) => currencies.map((code) => accountKey(customer, code))),
    faults: faults(plan.seed + 1),
  });
  const erroring = new Set(plan.erroring.flatMap((customer) => currencies.map((code) => accountKey(customer, code))));
  const compliance: ComplianceProvider = {
    async check(request): Promise<ComplianceDecision> {
      if (erroring.has(request.account)) throw new Error(`compliance provider: 502 Bad Gateway checking ${request.account} (their bug, every time)`);
      return fake.check(request);
    },
    lookup: (key) => fake.lookup(key),
  };
  return { fx, compliance };
}

/** The nightly maintenance job: one small job per customer, identifiers only. */
export const nightlyStatement = defineTask('demo:nightly_statement', object({ customerId: string() }));

export function nightlyStatementTask(pool: pg.Pool, done: () => void): HostTask<{ customerId: string }> {
  return {
    task: nightlyStatement,
    handler: async ({ customerId }) => {
      // a real service would render and send the statement; reading the balances is the ledger's part
      for (const code of currencies) await getBalance(pool, accountKey(customerId, code));
      done();
    },
  };
}

/** The night: one statement job per customer, in bulk, at most four running at once. */
export async function fanOutStatements(pool: pg.Pool, plan: DayPlan): Promise<void> {
  await fanOut(pool, nightlyStatement, plan.customers, (customerId) => ({ customerId }), {
    queue: 'demo:statements',
    queueConcurrency: 4,
    jobKeyPrefix: `${plan.run}:statement:`,
    // a named batch: once its last job has run, summariseBatches records what it did
    batch: `${plan.run}:nightly-statements`,
  });
}

/** Runs `work` inside one host transaction on its own connection; retries a retryable conflict. */
async function inHostTransaction(client: pg.PoolClient, work: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await client.query('begin');
    try {
      await work();
      await client.query('commit');
      return;
    } catch (error) {
      await client.query('rollback');
      if (attempt < 5 && isLedgerboxError(error) && error.retryable) continue;
      throw error;
    }
  }
}

/** Opens each customer's three accounts and funds them from the world accounts, one host transaction per customer. */
export async function openAccounts(pool: pg.Pool, plan: DayPlan, lanes: number, shouldStop: () => boolean): Promise<void> {
  for (const code of currencies) await createAccount(pool, { key: worldKey(code), currency: code, allowNegative: true });
  const queue = [...plan.customers];
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      const client = await pool.connect();
      try {
        for (let customer = queue.shift(); customer !== undefined && !shouldStop(); customer = queue.shift()) {
          await inHostTransaction(client, async () => {
            for (const code of currencies) await createAccount(client, { key: accountKey(customer, code), currency: code, metadata: { customerId: customer } });
            await postTransfer(client, {
              key: `${plan.run}:fund:${customer}`,
              legs: currencies.map((code) => ({ from: worldKey(code), to: accountKey(customer, code), amount: { amount: opening_balance, currency: code } })),
              metadata: { purpose: 'opening balance', run: plan.run },
            });
          });
        }
      } finally {
        client.release();
      }
    }),
  );
}

export interface DayTally {
  exchangesPlaced: number;
  transfersPosted: number;
  /** Minor units per currency moved by plain transfers. */
  transferred: Map<string, bigint>;
  /** Requests refused at once (not enough money, …): a host would tell its customer. */
  refused: number;
}

/**
 * The day's requests in a seeded order: exchanges (startExchange) and plain transfers
 * (postTransfer), each in a host transaction of its own, `lanes` connections at a time.
 */
export async function placeDay(pool: pg.Pool, plan: DayPlan, lanes: number, tally: DayTally, shouldStop: () => boolean): Promise<void> {
  const random = seededRandom(plan.seed);
  const requests: { kind: 'exchange' | 'transfer'; run: (client: pg.PoolClient) => Promise<void> }[] = [];
  for (let index = 0; index < plan.exchanges; index++) {
    const customer = random.pick(plan.customers);
    const from = random.pick(currencies);
    const to = random.pick(currencies.filter((code) => code !== from));
    const amount = BigInt(5_00 + random.int(495_01));
    requests.push({
      kind: 'exchange',
      run: async (client) => {
        await startExchange(client, {
          key: `${plan.run}:exchange:${index}`,
          from: accountKey(customer, from),
          to: accountKey(customer, to),
          amount: { amount, currency: from },
          metadata: { customerId: customer },
        });
        tally.exchangesPlaced++;
      },
    });
  }
  for (let index = 0; index < plan.transfers; index++) {
    const payer = random.pick(plan.customers);
    const payee = random.pick(plan.customers.filter((customer) => customer !== payer));
    const code = random.pick(currencies);
    const amount = BigInt(1_00 + random.int(199_01));
    requests.push({
      kind: 'transfer',
      run: async (client) => {
        await postTransfer(client, {
          key: `${plan.run}:transfer:${index}`,
          legs: [{ from: accountKey(payer, code), to: accountKey(payee, code), amount: { amount, currency: code } }],
          metadata: { kind: 'p2p' },
        });
        tally.transfersPosted++;
        tally.transferred.set(code, (tally.transferred.get(code) ?? 0n) + amount);
      },
    });
  }
  // shuffle (Fisher–Yates) so exchanges and transfers interleave through the day
  for (let index = requests.length - 1; index > 0; index--) {
    const other = random.int(index + 1);
    [requests[index], requests[other]] = [requests[other]!, requests[index]!];
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      const client = await pool.connect();
      try {
        while (next < requests.length && !shouldStop()) {
          const request = requests[next++]!;
          try {
            await inHostTransaction(client, () => request.run(client));
          } catch (error) {
            if (!isLedgerboxError(error)) throw error;
            tally.refused++;
          }
        }
      } finally {
        client.release();
      }
    }),
  );
}
