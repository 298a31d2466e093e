import { mulberry32 } from '../../src/seeded-random.ts';

/**
 * A seeded generator (mulberry32), so a failing concurrency run can be replayed:
 * LEDGERBOX_TEST_SEED=<seed printed by the failing run> npm test
 */
export function seededRandom(label: string): { seed: number; next: () => number; int: (max: number) => number } {
  const seed = Number(process.env.LEDGERBOX_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`# ${label}: LEDGERBOX_TEST_SEED=${seed}`);
  const next = mulberry32(seed);
  return { seed, next, int: (max) => Math.floor(next() * max) };
}
