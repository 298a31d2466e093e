// The run's summary: the invariants with their figures on stdout, and the same as JSON (--json).
import fs from 'node:fs/promises';
import { faultKinds, type FaultKind, type InjectedFault } from './faults.ts';
import type { Invariant } from './verify.ts';

export interface Summary {
  seed: number;
  ok: boolean;
  replay: string;
  startedAt: string;
  duration_s: number;
  phases_s: { setup: number; workload: number; drain: number; verify: number };
  /** kept: the database (name, or embedded data directory) left for a look around, when the run failed or --keep. */
  database: { kind: 'embedded' | 'DATABASE_URL'; description: string; kept: string | null };
  size: {
    requests: number;
    exchanges: number;
    transfers: number;
    batches: number;
    holds: number;
    holdResolutions: number;
    reversals: number;
    cardPayments: number;
    customers: number;
    clients: number;
    workers: number;
  };
  /** replayed: committed requests that were found already written when retried (a COMMIT whose answer was lost). */
  requests: { committed: number; refused: number; skipped: number; unknown: number; replayed: number };
  faults: {
    injected: Record<FaultKind, number>;
    /** Kinds that could not be injected at all, and why (postgres_restart with DATABASE_URL). */
    skipped: Partial<Record<FaultKind, string>>;
    /** Scheduled faults that found nothing to hit (no worker running, no connection). */
    missed: string[];
    /** Every fault but the provider ones (too many to list), in order: when (ms into the workload), what, where. */
    timeline: InjectedFault[];
    unexpectedWorkerExits: number;
    clientConnectionErrors: number;
  };
  planted: string | null;
  invariants: Invariant[];
  logs: string;
}

export function countFaults(injected: readonly InjectedFault[]): Record<FaultKind, number> {
  const counts = Object.fromEntries(faultKinds.map((kind) => [kind, 0])) as Record<FaultKind, number>;
  for (const fault of injected) counts[fault.kind]++;
  return counts;
}

export function renderSummary(summary: Summary): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(`faults injected (seed ${summary.seed}):`);
  for (const kind of faultKinds) {
    const skipped = summary.faults.skipped[kind];
    const busy = summary.faults.timeline.filter((fault) => fault.kind === kind && /\((active|idle in transaction)\)$/.test(fault.detail)).length;
    const note = kind.endsWith('_connection_kill') ? ` (${busy} inside a transaction or a query)` : '';
    lines.push(`  ${kind.padEnd(24)} ${skipped === undefined ? `${summary.faults.injected[kind]}${note}` : `skipped: ${skipped}`}`);
  }
  if (summary.faults.missed.length > 0) lines.push(`  missed: ${summary.faults.missed.join('; ')}`);
  lines.push(`  ${'client connection errors'.padEnd(24)} ${summary.faults.clientConnectionErrors} (each retried with the same idempotency key)`);
  if (summary.faults.unexpectedWorkerExits > 0) lines.push(`  ${'unexpected worker exits'.padEnd(24)} ${summary.faults.unexpectedWorkerExits} (restarted; see the logs)`);
  if (summary.planted !== null) lines.push('', `planted: ${summary.planted}`);
  lines.push('', 'invariants:');
  for (const invariant of summary.invariants) {
    lines.push(`  ${invariant.holds ? 'ok  ' : 'FAIL'} ${invariant.name}`);
    lines.push(`       ${invariant.figure}`);
    for (const violation of invariant.violations) lines.push(`       ✗ ${violation}`);
  }
  const { setup, workload, drain, verify } = summary.phases_s;
  lines.push('');
  lines.push(`${summary.size.requests} requests (${summary.size.exchanges} exchanges, ${summary.size.cardPayments} card payments) from ${summary.size.clients} clients, ${summary.size.workers} workers, in ${summary.duration_s.toFixed(1)} s (setup ${setup.toFixed(1)}, workload ${workload.toFixed(1)}, drain ${drain.toFixed(1)}, verify ${verify.toFixed(1)})`);
  if (summary.database.kept !== null) lines.push(`kept for a look around: ${summary.database.kept} (logs in ${summary.logs})`);
  lines.push(summary.ok ? `chaos: every invariant holds (seed ${summary.seed})` : `chaos: FAILED, seed ${summary.seed}; replay with: ${summary.replay}`);
  return lines.join('\n');
}

export async function writeJson(file: string, summary: Summary): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(summary, null, 2)}\n`);
}
