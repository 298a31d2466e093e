import { dinero, EUR, USD, JPY, type Dinero } from 'dinero.js/bigint';
import { minorUnits } from '../../src/index.ts';

export const usd = (amount: bigint): Dinero<bigint> => dinero({ amount, currency: USD });
export const eur = (amount: bigint): Dinero<bigint> => dinero({ amount, currency: EUR });
export const jpy = (amount: bigint): Dinero<bigint> => dinero({ amount, currency: JPY });

/** A balance or leg amount as bigint minor units, for assertions. */
export const minor = (money: Dinero<bigint>): bigint => minorUnits(money);
