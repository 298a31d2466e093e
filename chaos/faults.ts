// The run's fault schedule, drawn from the seed before the run starts (so `--seed N` replays
// it), and the injector that carries it out: worker processes killed with SIGKILL and started
// again, client and worker connections terminated with pg_terminate_backend (found by their
// application_name, preferring one inside a transaction or a query), and one restart of the
// embedded PostgreSQL. Provider faults are not scheduled here: each worker rolls them from its
// own seeded stream and reports them.
import pg from 'pg';
import { providerFaultKinds } from './protocol.ts';
import { dice, streamSeed } from './random.ts';
import { withApplicationName } from './database.ts';

export const scheduledFaultKinds = ['worker_kill', 'client_connection_kill', 'worker_connection_kill', 'postgres_restart'] as const;
export const faultKinds = [...providerFaultKinds, ...scheduledFaultKinds, 'commit_answer_lost'] as const;
export type FaultKind = (typeof faultKinds)[number];
type ScheduledKind = (typeof scheduledFaultKinds)[number];

export interface FaultRates {
  workerKillsPerMinute: number;
  clientConnectionKillsPerMinute: number;
  workerConnectionKillsPerMinute: number;
  postgresRestart: boolean;
}

export interface ScheduledFault {
  at_ms: number;
  kind: ScheduledKind;
  /** 0..1: which process it hits (among those there are then). */
  target: number;
  /** worker_kill: how long until the worker is started again; postgres_restart: how long the server is down. */
  pause_ms: number;
}

/** At least one of each kind asked for, so a short run still exercises every fault. */
export function scheduleFaults(seed: number, duration_ms: number, rates: FaultRates): ScheduledFault[] {
  const random = dice(streamSeed(seed, 'faults'));
  const minutes = duration_ms / 60_000;
  const schedule: ScheduledFault[] = [];
  const add = (kind: ScheduledKind, perMinute: number, pause: () => number) => {
    if (perMinute <= 0) return;
    const count = Math.max(1, Math.round(perMinute * minutes));
    for (let index = 0; index < count; index++) {
      // within the first 90% of the workload, so the last faults still meet traffic
      schedule.push({ at_ms: Math.floor(random.next() * duration_ms * 0.9), kind, target: random.next(), pause_ms: pause() });
    }
  };
  add('worker_kill', rates.workerKillsPerMinute, () => random.between(100, 1_500));
  add('client_connection_kill', rates.clientConnectionKillsPerMinute, () => 0);
  add('worker_connection_kill', rates.workerConnectionKillsPerMinute, () => 0);
  if (rates.postgresRestart) {
    // in the middle of the workload: requests and steps in flight on both sides of it
    schedule.push({ at_ms: Math.floor(duration_ms * (0.3 + 0.3 * random.next())), kind: 'postgres_restart', target: 0, pause_ms: random.between(300, 1_500) });
  }
  return schedule.sort((a, b) => a.at_ms - b.at_ms);
}

export interface InjectedFault {
  kind: FaultKind;
  at_ms: number;
  detail: string;
}

export interface FaultTargets {
  connectionString: string;
  clients: number;
  workers: number;
  /** SIGKILLs the worker of that slot, which restarts it after `pause_ms`; false if it was not running. */
  killWorker(index: number, pause_ms: number): boolean;
  restartPostgres(downtime_ms: number): Promise<void>;
  /** The worker of that slot has been running long enough to have registered its heartbeat. */
  workerSettled(index: number): boolean;
  /**
   * Kill a worker, or restart PostgreSQL, only once the workers concerned have had time to
   * heartbeat (see docs/testing.md: a worker that dies before its first heartbeat strands its jobs).
   */
  startupClearance: boolean;
}

const clearance_ms_max = 20_000;

/** Carries out the schedule from `start_ms` (epoch); resolves when every fault has been tried. */
export async function injectFaults(
  schedule: readonly ScheduledFault[],
  start_ms: number,
  targets: FaultTargets,
  record: (fault: InjectedFault) => void,
  note: (line: string) => void,
): Promise<void> {
  const since = () => Date.now() - start_ms;
  let restarting: Promise<void> = Promise.resolve();
  const pending = schedule.map(async (fault) => {
    await new Promise((resolve) => setTimeout(resolve, fault.at_ms - since()));
    if (fault.kind === 'postgres_restart') {
      // A worker that takes jobs and dies before its first heartbeat is recorded leaves them
      // locked for graphile-worker's four hours (reported; ledgerbox's to fix): a restart just
      // as a worker starts provokes exactly that, so by default it waits (at most 20 s) until
      // every worker has been up a moment.
      const waitedFrom = since();
      const allSettled = () => Array.from({ length: targets.workers }, (_, index) => targets.workerSettled(index + 1)).every(Boolean);
      while (targets.startupClearance && !allSettled() && since() - waitedFrom < clearance_ms_max) await new Promise((resolve) => setTimeout(resolve, 100));
      const began = since();
      restarting = targets.restartPostgres(fault.pause_ms);
      await restarting;
      const waited = began - waitedFrom > 0 ? ` (after waiting ${began - waitedFrom} ms for every worker to be up)` : '';
      record({ kind: 'postgres_restart', at_ms: began, detail: `down ${fault.pause_ms} ms, back at ${since()} ms${waited}` });
      return;
    }
    if (fault.kind === 'worker_kill') {
      // the slot picked, or the next one running (and, with the clearance, up for a moment)
      const waitedFrom = since();
      do {
        for (let offset = 0; offset < targets.workers; offset++) {
          const index = 1 + ((Math.floor(fault.target * targets.workers) + offset) % targets.workers);
          if (targets.startupClearance && !targets.workerSettled(index)) continue;
          if (targets.killWorker(index, fault.pause_ms)) {
            record({ kind: 'worker_kill', at_ms: since(), detail: `chaos-worker-${index} SIGKILL, restarted after ${fault.pause_ms} ms` });
            return;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      } while (since() - waitedFrom < clearance_ms_max);
      note(`worker_kill at ${waitedFrom} ms: no worker running${targets.startupClearance ? ' for long enough' : ''}, not injected`);
      return;
    }
    const side = fault.kind === 'client_connection_kill' ? 'client' : 'worker';
    const count = side === 'client' ? targets.clients : targets.workers;
    const first = Math.floor(fault.target * count);
    // a moment of no connection (a process restarting, the server down) is tried again, briefly
    for (let attempt = 0; attempt < 50; attempt++) {
      await restarting;
      const killed = await terminateOne(targets.connectionString, side, first, count).catch(() => undefined);
      if (killed !== undefined) {
        record({ kind: fault.kind, at_ms: since(), detail: killed });
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    note(`${fault.kind} at ${since()} ms: no connection found to terminate, not injected`);
  });
  await Promise.all(pending);
}

/**
 * pg_terminate_backend on one connection of a process of `side`, starting with process
 * `first`: one busy in a transaction or a query if there is one, else an idle one.
 * Returns what it terminated, or undefined if there was nothing.
 */
async function terminateOne(connectionString: string, side: 'client' | 'worker', first: number, count: number): Promise<string | undefined> {
  const admin = new pg.Client({ connectionString: withApplicationName(connectionString, 'chaos-injector'), connectionTimeoutMillis: 2_000 });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    for (let offset = 0; offset < count; offset++) {
      const name = `chaos-${side}-${1 + ((first + offset) % count)}`;
      const { rows } = await admin.query<{ pid: number; state: string | null }>(
        `select pid, state from pg_stat_activity
         where application_name = $1 and datname = current_database() and pid <> pg_backend_pid()
         order by (state in ('active', 'idle in transaction')) desc, backend_start desc
         limit 1`,
        [name],
      );
      const backend = rows[0];
      if (backend === undefined) continue;
      const { rows: terminated } = await admin.query<{ done: boolean }>('select pg_terminate_backend($1) as done', [backend.pid]);
      if (terminated[0]?.done) return `${name} backend ${backend.pid} (${backend.state ?? 'unknown state'})`;
    }
    return undefined;
  } finally {
    await admin.end().catch(() => undefined);
  }
}
