// The workload of a chaos run, derived from the seed alone: the accounts, and per client
// process the list of requests it makes through the public API (exchanges, transfers, batches,
// holds and their resolution, reversals, card payments and what their processor's webhook
// does). Every process rebuilds the same plan from the same parameters, so nothing but the
// parameters crosses a process boundary.
import { merchantAvailable, merchantPending } from '../examples/card-capture-workflow.ts';
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
  /** Card payments (the card capture workflow of examples/card-capture-workflow.ts). */
  cardPayments: number;
}

/**
 * What the processor's webhook does for a card payment (chaos/client.ts drives it):
 *   on_time   sends 'captured' once the processor has captured: the payment completes;
 *   twice     the same, then the same webhook again (a redelivery): recorded as a duplicate;
 *   late      sends it only after the wait's deadline has passed: the payment was voided, the
 *             signal is late and a signal_too_late alert says the processor has the money;
 *   never     sends nothing: the deadline passes and the payment is voided;
 *   declined  the card is on the processor's decline list: no hold, no capture, no webhook.
 */
export const cardFates = ['on_time', 'twice', 'late', 'never', 'declined'] as const;
export type CardFate = (typeof cardFates)[number];

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
  | { kind: 'card_payment'; id: string; key: string; card: string; payer: string; merchant: string; currency: Code; amount: bigint; fate: CardFate }
  | { kind: 'expire_holds'; id: string };

export type CardPaymentOp = Extract<Op, { kind: 'card_payment' }>;

export interface Plan {
  parameters: PlanParameters;
  customers: string[];
  /** Customers whose exchanges compliance declines: compensated, by decision. */
  declined: string[];
  /** Customers the compliance provider errors on every time: their exchanges fail for good and are compensated. */
  erroring: string[];
  merchants: string[];
  /** Cardholders, whose accounts pay the card payments (funded with exactly what they pay, so a hold never lacks funds). */
  cardholders: string[];
  /** Cards the processor declines. */
  declinedCards: string[];
  /** Every account the run opens, with whether it may go negative. */
  accounts: { key: string; currency: Code; allowNegative: boolean }[];
  /** world → customer, one per customer and currency; world → cardholder, what they will pay. */
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
  const cardholders = ['h1', 'h2', 'h3', 'h4'];
  const declinedCards = cardholders.map((holder) => `${cardOf(holder)}-stolen`);
  const accounts: Plan['accounts'] = [];
  for (const code of currencies) {
    accounts.push({ key: worldAccount(code), currency: code, allowNegative: true });
    for (const customer of customers) accounts.push({ key: customerAccount(customer, code), currency: code, allowNegative: false });
    for (const merchant of merchants) accounts.push({ key: merchantAccount(merchant, code), currency: code, allowNegative: false });
    for (const holder of cardholders) accounts.push({ key: cardholderAccount(holder, code), currency: code, allowNegative: false });
    // the card workflow's own accounts for a merchant: captured but not settled, and settled
    for (const merchant of merchants) {
      accounts.push({ key: merchantPending(merchant, code), currency: code, allowNegative: false });
      accounts.push({ key: merchantAvailable(merchant, code), currency: code, allowNegative: false });
    }
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
  type Draft = { kind: 'exchange' | 'transfer' | 'batch' | 'hold' | 'card_payment' };
  const drafts: Draft[] = [
    ...Array.from({ length: parameters.exchanges }, () => ({ kind: 'exchange' as const })),
    ...Array.from({ length: Math.round(parameters.exchanges * 0.5) }, () => ({ kind: 'transfer' as const })),
    ...Array.from({ length: Math.max(1, Math.round(parameters.exchanges * 0.05)) }, () => ({ kind: 'batch' as const })),
    ...Array.from({ length: Math.max(4, Math.round(parameters.exchanges * 0.3)) }, () => ({ kind: 'hold' as const })),
    ...Array.from({ length: parameters.cardPayments }, () => ({ kind: 'card_payment' as const })),
  ];
  for (let index = drafts.length - 1; index > 0; index--) {
    const other = random.int(index + 1);
    [drafts[index], drafts[other]] = [drafts[other]!, drafts[index]!];
  }

  const clients: Op[][] = Array.from({ length: parameters.clients }, () => []);
  const followUps: { client: number; after: number; op: Op }[] = [];
  const counters = clients.map(() => 0);
  const nextId = (client: number) => `${client + 1}.${++counters[client]!}`;
  // the first card payments take each fate once, so a short run meets every one; the rest are drawn
  let cardPayments = 0;
  const nextCardFate = (): CardFate => {
    if (cardPayments < cardFates.length) return cardFates[cardPayments++]!;
    cardPayments++;
    const roll = random.next();
    return roll < 0.4 ? 'on_time' : roll < 0.6 ? 'twice' : roll < 0.75 ? 'late' : roll < 0.85 ? 'never' : 'declined';
  };
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
      case 'card_payment': {
        const holder = random.pick(cardholders);
        const fated = nextCardFate();
        const card = fated === 'declined' ? `${cardOf(holder)}-stolen` : cardOf(holder);
        const currency = random.pick(currencies);
        list.push({ kind: 'card_payment', id, key, card, payer: cardholderAccount(holder, currency), merchant: random.pick(merchants), currency, amount: payment(1_00n, 150_00n), fate: fated });
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
  // each cardholder gets what its card payments will take, currency by currency
  const owed = new Map<string, bigint>();
  for (const op of ops.values()) if (op.kind === 'card_payment') owed.set(op.payer, (owed.get(op.payer) ?? 0n) + op.amount);
  for (const code of currencies) {
    for (const holder of cardholders) {
      const amount = owed.get(cardholderAccount(holder, code)) ?? 0n;
      if (amount > 0n) funding.push({ from: worldAccount(code), to: cardholderAccount(holder, code), currency: code, amount });
    }
  }
  return { parameters, customers, declined, erroring, merchants, cardholders, declinedCards, accounts, funding, clients, ops };
}

export const cardholderAccount = (holder: string, code: Code) => `chaos:${holder}:${code}`;
/** A cardholder's card, as the processor knows it. */
const cardOf = (holder: string) => `card-${holder}`;

/** Legs of a transfer-producing op (a transfer, or every transfer of a batch). */
export function legsOf(op: Op): Leg[] {
  if (op.kind === 'transfer') return op.legs;
  if (op.kind === 'batch') return op.transfers.flatMap((transfer) => transfer.legs);
  return [];
}
