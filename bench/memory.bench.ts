import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { metric, type Metric } from './results.ts';
import type { BenchSettings } from './settings.ts';

/** Jobs added per statement while the worker runs them. */
const enqueue_chunk_max = 20_000;
const concurrency = 8;
const memoryTask = 'bench_memory_noop';

interface Reading {
  kind: 'ready' | 'done';
  rss: number;
  heapUsed: number;
  handled: number;
}

/**
 * Item 6: the worker's resident set size when it starts and after it has run N jobs (1M with
 * `--scale large`), against bare graphile-worker running the same no-op jobs, each side in a
 * process of its own, one after the other on the same server.
 */
export async function benchMemory(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  const jobs = settings.quick ? 2_000 : settings.scale === 'large' ? 1_000_000 : 50_000;
  const mb = (bytes: number) => bytes / 1_048_576;
  const what = `${jobs.toLocaleString('en-US')} no-op jobs, concurrency ${concurrency}, RSS after a full GC`;
  if (settings.memorySides.length === 1) {
    // one side alone (`--memory-side`): its own figures, no ratio
    const side = settings.memorySides[0]!;
    const alone = await measure(server, side, jobs, log);
    const who = side === 'bare' ? 'bare graphile-worker' : 'ledgerbox';
    return [
      metric({ name: `${who} alone: worker memory at start`, value: mb(alone.start.rss), unit: 'MB', notes: what }),
      metric({ name: `${who} alone: worker memory after ${jobs.toLocaleString('en-US')} jobs`, value: mb(alone.end.rss), unit: 'MB', notes: what }),
      metric({ name: `${who} alone: worker heap growth over the run`, value: mb(alone.end.heapUsed - alone.start.heapUsed), unit: 'MB', notes: what }),
    ];
  }
  const ledgerbox = await measure(server, 'ledgerbox', jobs, log);
  const bare = await measure(server, 'bare', jobs, log);
  return [
    metric({ name: 'worker memory at start', value: mb(ledgerbox.start.rss), unit: 'MB', peer: 'bare graphile-worker', peerValue: mb(bare.start.rss), notes: what }),
    metric({ name: `worker memory after ${jobs.toLocaleString('en-US')} jobs`, value: mb(ledgerbox.end.rss), unit: 'MB', peer: 'bare graphile-worker', peerValue: mb(bare.end.rss), notes: what }),
    metric({
      name: 'worker heap growth over the run',
      value: mb(ledgerbox.end.heapUsed - ledgerbox.start.heapUsed),
      unit: 'MB',
      peer: 'bare graphile-worker',
      peerValue: mb(bare.end.heapUsed - bare.start.heapUsed),
      notes: `${what}; a leak shows here as growth with the number of jobs`,
    }),
  ];
}

async function measure(server: BenchServer, side: 'ledgerbox' | 'bare', jobs: number, log: (line: string) => void): Promise<{ start: Reading; end: Reading }> {
  return withDatabase(server, `memory_${side}`, { migrated: true }, async (url) => {
    const startedAt = performance.now();
    const child = fork(fileURLToPath(new URL('./memory-worker.ts', import.meta.url)), [side, url, String(jobs), String(concurrency), memoryTask], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const readings: Reading[] = [];
    const waiters: (() => void)[] = [];
    child.on('message', (message) => {
      readings.push(message as Reading);
      waiters.shift()?.();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const next = (): Promise<Reading> =>
      new Promise((resolve, reject) => {
        const index = readings.length;
        waiters.push(() => resolve(readings[index]!));
        void exited.then((code) => reject(new Error(`the ${side} worker exited (${code}) before reporting`)));
      });
    const pool = quietPool({ connectionString: url, max: 1 });
    try {
      const start = await next();
      const done = next();
      for (let added = 0; added < jobs; added += enqueue_chunk_max) {
        const count = Math.min(enqueue_chunk_max, jobs - added);
        await pool.query(
          `select count(*) from graphile_worker.add_jobs(array(
             select row($1, json_build_object('n', g), null, null, 25, null, null, null)::graphile_worker.job_spec
             from generate_series(1, $2::int) g))`,
          [memoryTask, count],
        );
      }
      const end = await done;
      if (end.handled !== jobs) throw new Error(`the ${side} worker ran ${end.handled} of ${jobs} jobs`);
      log(`memory: ${side} ran ${jobs} jobs in ${((performance.now() - startedAt) / 1_000).toFixed(1)} s, RSS ${(start.rss / 1_048_576).toFixed(0)} → ${(end.rss / 1_048_576).toFixed(0)} MB`);
      await exited;
      return { start, end };
    } finally {
      await pool.end();
      child.kill('SIGKILL');
    }
  });
}
