// The workload of a chaos run, derived from the seed alone: the accounts, and per client
// process the list of requests it makes through the public API (exchanges, transfers, batches,
// holds and their resolution, reversals). Every process rebuilds the same plan from the same
// parameters, so nothing but the parameters crosses a process boundary.
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';
import { dice, streamSeed } from './random.ts';

export const currencies = ['USD', 'EUR', 'GBP'] as const;
export type Code = (typeof currencies)[number];

/**
 * The FX provider's rates (units of `to` per unit of `from`, scaled integers): the demo's. The
 * verifier converts with them on its own, so an exchange settled at any other amount is caught.
 */
export const chaosRates: Record<string, { amount: bigint; scale: number }> = demoRates;

/** Each customer's opening balance in each currency, minor units (5,000.00). */
export const opening_balance = 5_000_00n;

export interface PlanParameters {
  seed: number;
  exchanges: number;
  clients: number;
  customers: number;
}

export interface Leg {
  from: string;
  to: string;
  currency: Code;
  amount: bigint;
}

export type Op =
  | { kind: 'exchange'; id: string; key: string; from: string; to: string; currency: Code; amount: bigint; customer: string }
  | { kind: 'transfer'; id: string; key: string; legs: Leg[] }
  | { kind: 'batch'; id: string; transfers: { key: string; legs: Leg[] }[] }
  | { kind: 'hold'; id: string; key: string; leg: Leg; expiresIn_ms: number | null }
  | { kind: 'post_hold'; id: string; key: string; hold: string; amount: bigint | null }
  | { kind: 'void_hold'; id: string; key: string; hold: string }
  | { kind: 'reverse'; id: string; key: string; transfer: string }
  | { kind: 'expire_holds'; id: string };

export interface Plan {
  parameters: PlanParameters;
  customers: string[];
  /** Customers whose exchanges compliance declines: compensated, by decision. */
  declined: string[];
  /** Customers the compliance provider errors on every time: their exchanges fail for good and are compensated. */
  erroring: string[];
  merchants: string[];
  /** Every account the run opens, with whether it may go negative. */
  accounts: { key: string; currency: Code; allowNegative: boolean }[];
  /** world → customer, one per customer and currency. */
  funding: Leg[];
  /** Per client process, in the order it makes them. */
  clients: Op[][];
  /** Every op by id. */
  ops: Map<string, Op>;
}

export const customerAccount = (customer: string, code: Code) => `chaos:${customer}:${code}`;
export const merchantAccount = (merchant: string, code: Code) => `chaos:${merchant}:${code}`;
export const worldAccount = (code: Code) => `chaos:world:${code}`;

export function buildPlan(parameters: PlanParameters): Plan {
  const random = dice(streamSeed(parameters.seed, 'plan'));
  const customers = Array.from({ length: parameters.customers }, (_, index) => `c${String(index + 1).padStart(4, '0')}`);
  const merchants = ['m1', 'm2', 'm3'];
  // the last two customers are special; the others are ordinary
  const declined = customers.slice(-1);
  const erroring = customers.slice(-2, -1);
  const accounts: Plan['accounts'] = [];
  for (const code of currencies) {
    accounts.push({ key: worldAccount(code), currency: code, allowNegative: true });
    for (const customer of customers) accounts.push({ key: customerAccount(customer, code), currency: code, allowNegative: false });
    for (const merchant of merchants) accounts.push({ key: merchantAccount(merchant, code), currency: code, allowNegative: false });
  }
  const funding = customers.flatMap((customer) =>
    currencies.map((code) => ({ from: worldAccount(code), to: customerAccount(customer, code), currency: code, amount: opening_balance })),
  );

  const payment = (low: bigint, high: bigint) => low + BigInt(random.int(Number(high - low) + 1));
  // a few requests ask for more than any customer has: refused (insufficient_funds), so the run
  // also checks that a refused request leaves nothing behind, neither its ledger writes nor the
  // host's row
  const tooMuch = () => opening_balance * 4n + payment(1n, 100n);
  const p2p = (): Leg => {
    const code = random.pick(currencies);
    const payer = random.pick(customers);
    const payee = random.chance(0.3) ? merchantAccount(random.pick(merchants), code) : customerAccount(random.pick(customers.filter((other) => other !== payer)), code);
    return { from: customerAccount(payer, code), to: payee, currency: code, amount: random.chance(0.02) ? tooMuch() : payment(50n, 50_00n) };
  };

  // primary requests, in a seeded order; follow-ups (resolving a hold, reversing a transfer) are
  // placed later in the same client's list
  type Draft = { kind: 'exchange' | 'transfer' | 'batch' | 'hold' };
  const drafts: Draft[] = [
    ...Array.from({ length: parameters.exchanges }, () => ({ kind: 'exchange' as const })),
    ...Array.from({ length: Math.round(parameters.exchanges * 0.5) }, () => ({ kind: 'transfer' as const })),
    ...Array.from({ length: Math.max(1, Math.round(parameters.exchanges * 0.05)) }, () => ({ kind: 'batch' as const })),
    ...Array.from({ length: Math.max(4, Math.round(parameters.exchanges * 0.3)) }, () => ({ kind: 'hold' as const })),
  ];
  for (let index = drafts.length - 1; index > 0; index--) {
    const other = random.int(index + 1);
    [drafts[index], drafts[other]] = [drafts[other]!, drafts[index]!];
  }

  const clients: Op[][] = Array.from({ length: parameters.clients }, () => []);
  const followUps: { client: number; after: number; op: Op }[] = [];
  const counters = clients.map(() => 0);
  const nextId = (client: number) => `${client + 1}.${++counters[client]!}`;
  drafts.forEach((draft, index) => {
    const client = index % parameters.clients;
    const list = clients[client]!;
    const id = nextId(client);
    const key = `chaos:${id}`;
    const later = (op: Op) => followUps.push({ client, after: list.length, op });
    switch (draft.kind) {
      case 'exchange': {
        const customer = random.pick(customers);
        const from = random.pick(currencies);
        const to = random.pick(currencies.filter((code) => code !== from));
        list.push({ kind: 'exchange', id, key, from: customerAccount(customer, from), to: customerAccount(customer, to), currency: from, amount: random.chance(0.02) ? tooMuch() : payment(1_00n, 200_00n), customer });
        break;
      }
      case 'transfer': {
        const first = p2p();
        // a third are two-leg transfers (a payment and its fee), in one transaction
        const legs = random.chance(0.3) ? [first, { from: first.from, to: merchantAccount(random.pick(merchants), first.currency), currency: first.currency, amount: payment(1n, 2_00n) }] : [first];
        list.push({ kind: 'transfer', id, key, legs });
        if (random.chance(0.3)) {
          const reverseId = nextId(client);
          later({ kind: 'reverse', id: reverseId, key: `chaos:${reverseId}`, transfer: id });
        }
        break;
      }
      case 'batch': {
        const size = random.between(2, 5);
        list.push({ kind: 'batch', id, transfers: Array.from({ length: size }, (_, part) => ({ key: `${key}:${part}`, legs: [p2p()] })) });
        break;
      }
      case 'hold': {
        const leg = p2p();
        const fate = random.pick(['post', 'post_part', 'void', 'expire'] as const);
        list.push({ kind: 'hold', id, key, leg, expiresIn_ms: fate === 'expire' ? random.between(300, 2_000) : null });
        const resolveId = nextId(client);
        if (fate === 'post') later({ kind: 'post_hold', id: resolveId, key: `chaos:${resolveId}`, hold: id, amount: null });
        if (fate === 'post_part') later({ kind: 'post_hold', id: resolveId, key: `chaos:${resolveId}`, hold: id, amount: 1n + BigInt(random.int(Number(leg.amount))) });
        if (fate === 'void') later({ kind: 'void_hold', id: resolveId, key: `chaos:${resolveId}`, hold: id });
        break;
      }
    }
  });
  // insert the follow-ups a few places after their request, from the back so positions hold
  followUps.sort((a, b) => b.after - a.after);
  for (const followUp of followUps) {
    const list = clients[followUp.client]!;
    const at = Math.min(list.length, followUp.after + random.between(2, 12));
    list.splice(at, 0, followUp.op);
  }
  // a host's scheduler expires holds now and then; each client does it every 25 requests, and last
  for (const [client, list] of clients.entries()) {
    for (let at = 25; at < list.length; at += 26) list.splice(at, 0, { kind: 'expire_holds', id: nextId(client) });
    list.push({ kind: 'expire_holds', id: nextId(client) });
  }
  const ops = new Map<string, Op>();
  for (const list of clients) for (const op of list) ops.set(op.id, op);
  return { parameters, customers, declined, erroring, merchants, accounts, funding, clients, ops };
}

/** Legs of a transfer-producing op (a transfer, or every transfer of a batch). */
export function legsOf(op: Op): Leg[] {
  if (op.kind === 'transfer') return op.legs;
  if (op.kind === 'batch') return op.transfers.flatMap((transfer) => transfer.legs);
  return [];
}
