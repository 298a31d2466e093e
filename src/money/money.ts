import { define } from 'superstruct';
import { dinero, toSnapshot, type Dinero } from 'dinero.js/bigint';
import { knownKeysOnly } from '../contracts.js';
import { InvalidInputError, describeValue } from '../errors.js';

/**
 * Money at the API edge: a dinero.js/bigint object, or bigint minor units with a currency
 * code (`{ amount: 1050n, currency: 'USD' }` is 10.50 USD). Never a float.
 */
export type MoneyInput = Dinero<bigint> | { amount: bigint; currency: string };

/** Money inside ledgerbox: integer minor units in the currency's own exponent. @internal */
export interface MinorUnits {
  amount: bigint;
  currency: string;
  /** The scale the caller used, when it came from dinero.js; checked against the ledger's exponent. */
  scale?: bigint;
  /** The exponent the caller's dinero.js currency declares, checked against the ledger's. */
  exponent?: bigint;
}

export interface CurrencyDefinition {
  code: string;
  base: number;
  exponent: number;
}

function isDinero(value: unknown): value is Dinero<bigint> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Dinero<bigint>).toJSON === 'function' &&
    'calculator' in value
  );
}

/**
 * Accepts a positive MoneyInput and turns it into minor units. A plain `{ amount, currency }`
 * takes nothing else: a `scale` or `exponent` there would be ignored, and the amount read in the
 * ledger's exponent. @internal
 */
export const PositiveMoney = knownKeysOnly(
  define<MinorUnits>('positive money (dinero.js/bigint, or { amount: bigint, currency })', (value) => {
    const mixed = numberInBigintDinero(value);
    if (mixed !== undefined) return mixed;
    const money = readMoney(value);
    if (money === undefined) return false;
    if (!currencyCode.test(money.currency)) return `currency must be a code like USD or POINTS, got ${describeValue(money.currency)}`;
    if (money.amount <= 0n) return `amount must be positive, got ${describeValue(money.amount)} ${money.currency}`;
    if (money.amount > int8_max) return `amount must fit a PostgreSQL bigint (at most ${int8_max}), got ${describeValue(money.amount)}`;
    return true;
  }),
  ['amount', 'currency'],
  isDinero,
);

const currencyCode = /^[A-Z][A-Z0-9_]{1,15}$/;

/** The largest amount, and balance, a bigint column holds. @internal */
export const int8_max = 2n ** 63n - 1n;

/**
 * A dinero.js/bigint object built with a Number where a bigint belongs (`scale: 3`, or a currency
 * from the Number-based currency list): dinero.js keeps it, and the first arithmetic on it would
 * throw a bare "Cannot mix BigInt and other types". Names the field instead.
 */
function numberInBigintDinero(value: unknown): string | undefined {
  if (!isDinero(value)) return undefined;
  const snapshot = toSnapshot(value) as { amount: unknown; scale: unknown; currency: { base: unknown; exponent: unknown } };
  if (typeof snapshot.amount !== 'bigint') return undefined; // a number-based dinero: refused as not dinero.js/bigint
  const fields: [string, unknown][] = [
    ['scale', snapshot.scale],
    ['currency.exponent', snapshot.currency.exponent],
    ['currency.base', snapshot.currency.base],
  ];
  for (const [field, inner] of fields) {
    if (typeof inner !== 'bigint') {
      return `\`${field}\` must be a bigint with dinero.js/bigint (${typeof inner === 'number' ? `${inner}n, not ${inner}` : 'a single bigint'}), got ${describeValue(inner)}`;
    }
  }
  return undefined;
}

/** @internal */
export function readMoney(value: unknown): MinorUnits | undefined {
  if (isDinero(value)) {
    const snapshot = toSnapshot(value);
    if (typeof snapshot.amount !== 'bigint') return undefined; // a number-based dinero: floats creep in
    return {
      amount: snapshot.amount,
      currency: snapshot.currency.code,
      scale: snapshot.scale,
      exponent: BigInt(snapshot.currency.exponent),
    };
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { amount, currency } = value as { amount?: unknown; currency?: unknown };
  if (typeof amount !== 'bigint' || typeof currency !== 'string') return undefined;
  return { amount, currency };
}

/**
 * Brings a caller's amount to the ledger currency's exponent. A dinero at a finer scale is
 * accepted only when no minor unit would be lost (10.500 USD is fine, 10.505 USD is not).
 * Returns an error message, or the amount in minor units.
 * @internal
 */
export function toLedgerMinorUnits(money: MinorUnits, currency: CurrencyDefinition): bigint | string {
  if (money.exponent !== undefined && money.exponent !== BigInt(currency.exponent)) {
    return `${currency.code} has exponent ${currency.exponent} in the ledger, but the amount's currency says ${money.exponent}`;
  }
  const scale = money.scale ?? BigInt(currency.exponent);
  const exponent = BigInt(currency.exponent);
  if (scale === exponent) return money.amount;
  const base = BigInt(currency.base);
  if (scale < exponent) return money.amount * base ** (exponent - scale);
  const factor = base ** (scale - exponent);
  if (money.amount % factor !== 0n) {
    return `${money.amount} at scale ${scale} cannot be expressed in whole ${currency.code} minor units (exponent ${currency.exponent})`;
  }
  return money.amount / factor;
}

/** Minor units back to a dinero.js/bigint object. @internal */
export function toDinero(amount: bigint, currency: CurrencyDefinition): Dinero<bigint> {
  return dinero({
    amount,
    currency: { code: currency.code, base: BigInt(currency.base), exponent: BigInt(currency.exponent) },
  });
}

/** The minor units of a dinero.js/bigint object in its own currency exponent, e.g. for tests and logs. */
export function minorUnits(money: Dinero<bigint>): bigint {
  if (!isDinero(money) || typeof toSnapshot(money).amount !== 'bigint') {
    throw new InvalidInputError(`Expected \`money\` to be a dinero.js/bigint object, got ${describeValue(money)}`, ['money'], money);
  }
  const mixed = numberInBigintDinero(money);
  if (mixed !== undefined) throw new InvalidInputError(`Invalid \`money\`: ${mixed}`, ['money'], money);
  const snapshot = toSnapshot(money);
  const difference = snapshot.scale - snapshot.currency.exponent;
  const base = snapshot.currency.base as bigint;
  return difference >= 0n ? snapshot.amount / base ** difference : snapshot.amount * base ** -difference;
}
