// The seeded dice of a chaos run. Everything random in the run (the workload, the fault
// schedule, each worker's provider faults) draws from a stream derived from the one seed, so
// `--seed N` replays the same run's plan and fault schedule.
import { mulberry32 } from '../src/seeded-random.ts';

export interface Dice {
  /** 0 <= x < 1 */
  next(): number;
  /** 0 <= n < below */
  int(below: number): number;
  /** min <= n <= max */
  between(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(probability: number): boolean;
}

export function dice(seed: number): Dice {
  const next = mulberry32(seed);
  const int = (below: number) => Math.floor(next() * below);
  return {
    next,
    int,
    between: (min, max) => min + int(max - min + 1),
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from nothing');
      return items[int(items.length)]!;
    },
    chance: (probability) => next() < probability,
  };
}

/**
 * An independent stream for one purpose (`'plan'`, `'faults'`, `'worker:1:3'`): the same seed
 * and name always give the same stream, and adding draws to one stream never shifts another.
 */
export function streamSeed(seed: number, name: string): number {
  // FNV-1a over the name, mixed with the seed
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (const character of name) {
    hash ^= character.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
