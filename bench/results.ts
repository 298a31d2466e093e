import { writeFileSync } from 'node:fs';
import Table from 'cli-table3';

/** One line of bench/results.json. `ratio` is ledgerbox / peer: above 1 means ledgerbox did more (or, for times, took longer). */
export interface Metric {
  name: string;
  value: number;
  unit: string;
  peer: string | null;
  peerValue: number | null;
  ratio: number | null;
  clients?: number;
  notes?: string;
}

export function metric(input: Omit<Metric, 'ratio' | 'peer' | 'peerValue'> & { peer?: string | null; peerValue?: number | null }): Metric {
  const peer = input.peer ?? null;
  const peerValue = input.peerValue ?? null;
  const ratio = peerValue !== null && peerValue !== 0 ? round(input.value / peerValue, 3) : null;
  return { ...input, value: round(input.value, 3), peer, peerValue: peerValue === null ? null : round(peerValue, 3), ratio };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function printTable(metrics: readonly Metric[]): string {
  const table = new Table({
    head: ['metric', 'clients', 'ledgerbox', 'peer', 'peer value', 'ratio'],
    style: { head: [], border: [] },
    colAligns: ['left', 'right', 'right', 'left', 'right', 'right'],
  });
  for (const m of metrics) {
    table.push([
      m.name,
      m.clients ?? '',
      `${format(m.value)} ${m.unit}`,
      m.peer ?? '',
      m.peerValue === null ? '' : `${format(m.peerValue)} ${m.unit}`,
      m.ratio === null ? '' : m.ratio.toFixed(2),
    ]);
  }
  return table.toString();
}

function format(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

export function writeResults(path: string, metrics: readonly Metric[]): void {
  writeFileSync(path, `${JSON.stringify(metrics, null, 2)}\n`);
}

/** Median of a non-empty list of samples. */
export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Nearest-rank percentile. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('Expected at least one sample, got none');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}
