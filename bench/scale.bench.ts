/**
 * Issue 16, many workers on one database: throughput of host-workflow steps and host jobs with
 * 1, 2, 4 and 8 worker processes, at the same total concurrency (8, split between them) and at
 * a growing one (4 per process), each beside bare graphile-worker run by the same processes on
 * the same number of jobs. Beside each point, the database's own figures: commits/s (the
 * database's xact_commit delta), backends waiting on a lock (pg_stat_activity, sampled) and
 * the machine's CPU (the server is local here, so that is the server's and the workers' CPU).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { enqueueMany } from '../src/index.ts';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { metric, type Metric } from './results.ts';
import { scaleBareTask, scaleHostTask, scaleHostWorkflow } from './scale-work.ts';
import type { BenchSettings } from './settings.ts';
import { compiledWorkflow } from '../src/workflows/define.ts';

interface Figures {
  jobs_per_s: number;
  commits_per_s: number;
  lockWaits_avg: number;
  lockWaits_max: number;
  cpu_busy_pct: number;
}

type Side = 'ledgerbox' | 'bare';

export async function benchScale(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  const processes = settings.quick ? [1, 2] : [1, 2, 4, 8];
  const workflows = settings.quick ? 100 : 2_000;
  const hostJobs = workflows;
  // two steps per workflow plus the host jobs: the bare side runs as many jobs
  const jobs = workflows * 2 + hostJobs;
  const metrics: Metric[] = [];
  for (const mode of ['same total concurrency', 'growing concurrency'] as const) {
    for (const count of processes) {
      const perProcess = mode === 'same total concurrency' ? Math.max(1, Math.round(8 / count)) : 4;
      const bare = await withDatabase(server, 'scale_bare', { migrated: true }, (url) => measure(url, 'bare', count, perProcess, { workflows: 0, hostJobs: jobs }));
      const ours = await withDatabase(server, 'scale', { migrated: true }, (url) => measure(url, 'ledgerbox', count, perProcess, { workflows, hostJobs }));
      log(`scale ${mode}, ${count} × ${perProcess}: ledgerbox ${ours.jobs_per_s.toFixed(0)} jobs/s, bare ${bare.jobs_per_s.toFixed(0)} jobs/s`);
      const describe = (f: Figures) =>
        `${f.commits_per_s.toFixed(0)} commits/s, lock waits avg ${f.lockWaits_avg.toFixed(2)} max ${f.lockWaits_max}, CPU ${f.cpu_busy_pct.toFixed(0)}%`;
      metrics.push(
        metric({
          name: `scale (${mode}): ${count} worker process${count === 1 ? '' : 'es'} × ${perProcess}, steps + host jobs`,
          value: ours.jobs_per_s,
          unit: 'jobs/s',
          peer: 'bare graphile-worker, same processes',
          peerValue: bare.jobs_per_s,
          clients: count * perProcess,
          notes:
            `${workflows} two-step host workflows (${workflows * 2} steps) + ${hostJobs} host jobs vs ${jobs} bare no-op jobs; ` +
            `database: ledgerbox ${describe(ours)}; bare ${describe(bare)}`,
        }),
      );
    }
  }
  return metrics;
}

function cpuTimes(): { busy: number; total: number } {
  // the first line of /proc/stat: the machine's jiffies by kind since boot
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3]! + (fields[4] ?? 0);
  const total = fields.reduce((sum, value) => sum + value, 0);
  return { busy: total - idle, total };
}

async function measure(url: string, side: Side, count: number, concurrency: number, work: { workflows: number; hostJobs: number }): Promise<Figures> {
  const pool = quietPool({ connectionString: url, max: 4 });
  const children: ChildProcess[] = [];
  try {
    // the work is added held back (run_at an hour ahead), then released at once when every
    // process runs: process start-up is not part of the figure
    if (work.workflows > 0) {
      const definition = compiledWorkflow(scaleHostWorkflow)!;
      await pool.query(
        `insert into ledgerbox.workflows (kind, version, key, current_step)
         select $1, $2, 'bench:' || g, $3 from generate_series(1, $4::int) g`,
        [definition.kind, definition.version ?? 1, definition.firstStep, work.workflows],
      );
      await pool.query(
        `select count(*) from graphile_worker.add_jobs(array(
           select row('ledgerbox:step', json_build_object('workflowId', w.id, 'step', $2::text), null, now() + interval '1 hour', 25,
                      'ledgerbox:step:' || w.id || ':' || $2, null, null)::graphile_worker.job_spec
           from ledgerbox.workflows w where w.kind = $1))`,
        [definition.kind, definition.firstStep],
      );
    }
    if (side === 'ledgerbox') {
      for (let start = 0; start < work.hostJobs; start += 500) {
        const batch = Array.from({ length: Math.min(500, work.hostJobs - start) }, (_, index) => ({
          task: scaleHostTask,
          payload: { n: start + index },
          options: { runAt: new Date(Date.now() + 3_600_000) },
        }));
        await enqueueMany(pool, batch);
      }
    } else {
      await pool.query(
        `select count(*) from graphile_worker.add_jobs(array(
           select row($1, json_build_object('n', g), null, now() + interval '1 hour', 25, null, null, null)::graphile_worker.job_spec
           from generate_series(1, $2::int) g))`,
        [scaleBareTask, work.hostJobs],
      );
    }
    const ready = Array.from({ length: count }, () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/scale-worker.ts', side, url, String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      return new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
        child.once('exit', (code) => reject(new Error(`a ${side} worker process exited (${code}) before it was ready`)));
      });
    });
    await Promise.all(ready);

    const name = new URL(url).pathname.slice(1);
    const commits = async () => Number((await pool.query('select xact_commit::text as n from pg_stat_database where datname = $1', [name])).rows[0].n);
    const commitsBefore = await commits();
    const cpuBefore = cpuTimes();
    const startedAt = performance.now();
    await pool.query(`update graphile_worker._private_jobs set run_at = now()`);
    const lockSamples: number[] = [];
    for (;;) {
      const { rows } = await pool.query(
        `select (select count(*)::int from graphile_worker._private_jobs) as left,
                (select count(*)::int from pg_stat_activity where datname = $1 and wait_event_type = 'Lock') as waiting`,
        [name],
      );
      lockSamples.push(rows[0].waiting);
      if (rows[0].left === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const elapsed_s = (performance.now() - startedAt) / 1_000;
    const cpuAfter = cpuTimes();
    // the poll's own statements are a few per 100 ms: left in, they are the same on both sides
    const commitsAfter = await commits();
    const failed = (await pool.query(`select count(*)::int as n from ledgerbox.step_attempts where outcome = 'failed'`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n;
    if (failed > 0) throw new Error(`Expected every step to succeed, got ${failed} failed attempts`);
    return {
      jobs_per_s: (work.workflows * 2 + work.hostJobs) / elapsed_s,
      commits_per_s: (commitsAfter - commitsBefore) / elapsed_s,
      lockWaits_avg: lockSamples.reduce((sum, n) => sum + n, 0) / lockSamples.length,
      lockWaits_max: Math.max(...lockSamples),
      cpu_busy_pct: (100 * (cpuAfter.busy - cpuBefore.busy)) / Math.max(1, cpuAfter.total - cpuBefore.total),
    };
  } finally {
    const exits = children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))));
    children.forEach((child) => child.kill('SIGTERM'));
    await Promise.all(exits);
    await pool.end();
  }
}
