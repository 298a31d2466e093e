// What the workload meant to do to the books, from the plan and the answers the clients got:
// each account's expected posted balance, and the per-currency figures (intended, refused,
// compensated, reversed). Exchanges are converted here independently of ledgerbox, at the rates
// the FX provider quotes, rounded half-to-even, so a settlement at any other amount shows. A
// completed card payment moves its amount from the cardholder to the merchant's settled account
// (through the merchant's pending one, which it leaves as it found it); a voided one, nothing.
import { merchantAvailable } from '../examples/card-capture-workflow.ts';
import { fxClearingAccount } from '../src/index.ts';
import { chaosRates, customerAccount, legsOf, type Code, type Leg, type Op, type Plan } from './plan.ts';
import type { OutcomeMessage } from './protocol.ts';

export interface ExchangeState {
  key: string;
  status: string;
  targetAmount: bigint | null;
}

export interface CurrencyFigures {
  /** Requests whose transaction committed: what they set out to move (exchanges: the source amount). */
  intended: bigint;
  /** Exchanges put back (compensated), source amount; card payments voided or declined. */
  compensated: bigint;
  /** Transfers reversed by a reverse request. */
  reversed: bigint;
  /** Held but never posted (voided, expired) or posted only in part: released, not moved. */
  released: bigint;
  /** What should have moved: intended − compensated − reversed − released. */
  moved: bigint;
}

export interface Expectation {
  balances: Map<string, bigint>;
  perCurrency: Map<Code, CurrencyFigures>;
  /** Exchanges settled at an amount other than the independent conversion. */
  misconverted: string[];
}

/** The FX clearing account (one of its currency's shards) an exchange's money passes through. */
export function fxClearing(code: string, exchangeKey: string): string {
  return fxClearingAccount(code, exchangeKey);
}

/** source × rate, rounded half-to-even to the minor unit (USD, EUR and GBP all have exponent 2). */
export function convertHalfEven(amount: bigint, from: string, to: string): bigint {
  const rate = chaosRates[`${from}/${to}`];
  if (rate === undefined) throw new Error(`no chaos rate ${from}/${to}`);
  const numerator = amount * rate.amount;
  const denominator = 10n ** BigInt(rate.scale);
  const quotient = numerator / denominator;
  const twice = 2n * (numerator % denominator);
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) return quotient + 1n;
  return quotient;
}

export function expect(
  plan: Plan,
  outcomes: ReadonlyMap<string, OutcomeMessage>,
  exchanges: ReadonlyMap<string, ExchangeState>,
  /** Card payments' workflow status, by key. */
  cardPayments: ReadonlyMap<string, { status: string }>,
): Expectation {
  const balances = new Map<string, bigint>();
  const perCurrency = new Map<Code, CurrencyFigures>();
  const misconverted: string[] = [];
  const figures = (code: Code) => {
    let found = perCurrency.get(code);
    if (found === undefined) perCurrency.set(code, (found = { intended: 0n, compensated: 0n, reversed: 0n, released: 0n, moved: 0n }));
    return found;
  };
  const move = (from: string, to: string, amount: bigint) => {
    balances.set(from, (balances.get(from) ?? 0n) - amount);
    balances.set(to, (balances.get(to) ?? 0n) + amount);
  };
  const apply = (leg: Leg) => move(leg.from, leg.to, leg.amount);
  const committed = (id: string) => outcomes.get(id)?.outcome === 'committed';

  const resolutionOf = new Map<string, Op>();
  for (const op of plan.ops.values()) if (op.kind === 'post_hold' || op.kind === 'void_hold') resolutionOf.set(op.hold, op);

  for (const leg of plan.funding) apply(leg);
  for (const op of plan.ops.values()) {
    if (!committed(op.id)) continue;
    switch (op.kind) {
      case 'transfer':
      case 'batch':
        for (const leg of legsOf(op)) {
          apply(leg);
          figures(leg.currency).intended += leg.amount;
        }
        break;
      case 'hold': {
        figures(op.leg.currency).intended += op.leg.amount;
        const resolution = resolutionOf.get(op.id);
        const posted = resolution?.kind === 'post_hold' && committed(resolution.id) ? (resolution.amount ?? op.leg.amount) : 0n;
        if (posted > 0n) move(op.leg.from, op.leg.to, posted);
        figures(op.leg.currency).released += op.leg.amount - posted;
        break;
      }
      case 'reverse': {
        const original = plan.ops.get(op.transfer)!;
        for (const leg of legsOf(original)) {
          move(leg.to, leg.from, leg.amount);
          figures(leg.currency).reversed += leg.amount;
        }
        break;
      }
      case 'exchange': {
        figures(op.currency).intended += op.amount;
        const state = exchanges.get(op.key);
        if (state?.status !== 'completed') {
          if (state?.status === 'compensated') figures(op.currency).compensated += op.amount;
          break;
        }
        const target = exchangeTarget(op);
        const converted = convertHalfEven(op.amount, op.currency, target);
        if (state.targetAmount !== converted) misconverted.push(`${op.key}: ${op.amount} ${op.currency} settled as ${state.targetAmount} ${target}, expected ${converted}`);
        move(op.from, fxClearing(op.currency, op.key), op.amount);
        move(fxClearing(target, op.key), op.to, converted);
        break;
      }
      case 'card_payment': {
        figures(op.currency).intended += op.amount;
        if (cardPayments.get(op.key)?.status === 'completed') move(op.payer, merchantAvailable(op.merchant, op.currency), op.amount);
        else figures(op.currency).compensated += op.amount;
        break;
      }
      default:
        break;
    }
  }
  for (const figure of perCurrency.values()) figure.moved = figure.intended - figure.compensated - figure.reversed - figure.released;
  return { balances, perCurrency, misconverted };
}

function exchangeTarget(op: Extract<Op, { kind: 'exchange' }>): Code {
  const code = op.to.slice(op.to.lastIndexOf(':') + 1) as Code;
  if (op.to !== customerAccount(op.customer, code)) throw new Error(`unexpected exchange target ${op.to}`);
  return code;
}
