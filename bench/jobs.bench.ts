import pg from 'pg';
import { pino } from 'pino';
import { run, type Runner, type TaskList } from 'graphile-worker';
import { prepareStatementsOn } from '../src/db/handle.ts';
import { workerLoggerFor } from '../src/logger.ts';
import { registryOf, type WorkflowDefinition } from '../src/workflows/definition.ts';
import { runStep } from '../src/workflows/run-step.ts';
import { enqueueStep, stepTask } from '../src/workflows/step-job.ts';
import { insertWorkflow } from '../src/workflows/workflow-queries.ts';
import { contractChecked } from '../src/worker/task-handlers.ts';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { metric, percentile, type Metric } from './results.ts';
import { sessionOf } from './session.ts';
import type { BenchSettings } from './settings.ts';

const silent = pino({ level: 'silent' });
const bareTask = 'bench_noop';

/** A workflow of one step that does nothing: what is left is the wrapper's own cost. */
const noopWorkflow: WorkflowDefinition<Record<string, never>> = {
  kind: 'bench_noop',
  firstStep: 'noop',
  steps: { noop: { pure: true, run: async () => ({ result: null, done: true }) } },
  compensate: { run: async () => ({ result: null, done: true }) },
  maxAttempts: 5,
};

/** Which side of the comparison a runner serves, and how to enqueue one job for it. */
interface Side {
  taskList(onStart: (id: string) => void, pool: pg.Pool): TaskList;
  /** Enqueues `count` jobs in one statement; resolves when it has committed. */
  enqueueBulk(pool: pg.Pool, count: number): Promise<void>;
  /** Enqueues one job in a transaction; returns its id and the moment COMMIT was sent. */
  enqueueOne(pool: pg.Pool, index: number): Promise<{ id: string; commitSentAt: number }>;
}

const bare: Side = {
  taskList: (onStart) => ({ [bareTask]: async (payload) => onStart(String((payload as { id: number }).id)) }),
  enqueueBulk: async (pool, count) => {
    await pool.query(
      `select count(*) from graphile_worker.add_jobs(array(
         select row($1, json_build_object('id', g), null, null, 25, null, null, null)::graphile_worker.job_spec
         from generate_series(1, $2::int) g))`,
      [bareTask, count],
    );
  },
  enqueueOne: async (pool, index) => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query(`select graphile_worker.add_job($1, json_build_object('id', $2::int))`, [bareTask, -1 - index]);
      const commitSentAt = performance.now();
      await client.query('commit');
      return { id: String(-1 - index), commitSentAt };
    } finally {
      client.release();
    }
  },
};

const steps: Side = {
  taskList: (onStart, pool) => {
    // as startWorker does: ledgerbox's statements prepared on the runner's pool, like graphile-worker's
    prepareStatementsOn(pool);
    return {
      [stepTask.name]: contractChecked(
        {
          task: stepTask,
          handler: async (payload, { logger, jobId, helpers }) => {
            onStart(payload.workflowId);
            await runStep(
              {
                db: pool,
                workflows: registryOf([noopWorkflow]),
                providers: {},
                retry: { base_ms: 1_000, max_ms: 300_000 },
                providerTimeout_ms: 10_000,
                compensationDelay_ms: 0,
                logger,
              },
              payload,
              { id: jobId, workerId: helpers.job.locked_by },
            );
          },
        },
        silent,
      ),
    };
  },
  enqueueBulk: async (pool, count) => {
    // the workflows exist before the clock starts; the timed part is their step jobs, added
    // the way enqueueStep adds one (keyed per step), in one statement
    await pool.query(
      `insert into ledgerbox.workflows (kind, key, current_step)
       select $1, 'bench:' || gen_random_uuid(), 'noop' from generate_series(1, $2::int)`,
      [noopWorkflow.kind, count],
    );
    await pool.query(
      `select count(*) from graphile_worker.add_jobs(array(
         select row($1, json_build_object('workflowId', w.id, 'step', 'noop'), null, null, 25,
                    'ledgerbox:step:' || w.id || ':noop', null, null)::graphile_worker.job_spec
         from ledgerbox.workflows w where w.kind = $2 and w.status = 'running'
           and not exists (select 1 from ledgerbox.step_results r where r.workflow_id = w.id)))`,
      [stepTask.name, noopWorkflow.kind],
    );
  },
  enqueueOne: async (pool, index) => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const db = sessionOf(client);
      const workflow = await insertWorkflow(db, { kind: noopWorkflow.kind, key: `latency:${index}`, firstStep: 'noop', subject: {} });
      await enqueueStep(db, workflow!.id, 'noop');
      const commitSentAt = performance.now();
      await client.query('commit');
      return { id: workflow!.id, commitSentAt };
    } finally {
      client.release();
    }
  },
};

interface SideFigures {
  jobs_per_s: number;
  latency_ms_p50: number;
  latency_ms_p99: number;
}

/**
 * Item 3: no-op steps through the exactly-once wrapper (runStep, as the worker runs it) against
 * bare graphile-worker no-op jobs, at the same concurrency, each in a database of its own.
 */
export async function benchJobs(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  const bareFigures = await withDatabase(server, 'jobs_bare', { migrated: true }, (url) => measure(url, bare, settings));
  log(`bare graphile-worker: ${bareFigures.jobs_per_s.toFixed(0)} jobs/s, commit-to-start p50 ${bareFigures.latency_ms_p50.toFixed(1)} ms p99 ${bareFigures.latency_ms_p99.toFixed(1)} ms`);
  const stepFigures = await withDatabase(server, 'jobs_steps', { migrated: true }, (url) => measure(url, steps, settings));
  log(`step wrapper: ${stepFigures.jobs_per_s.toFixed(0)} steps/s, commit-to-start p50 ${stepFigures.latency_ms_p50.toFixed(1)} ms p99 ${stepFigures.latency_ms_p99.toFixed(1)} ms`);
  const common = { clients: settings.jobConcurrency };
  return [
    metric({
      name: 'no-op steps through the exactly-once wrapper',
      value: stepFigures.jobs_per_s,
      unit: 'jobs/s',
      peer: 'bare graphile-worker no-op jobs',
      peerValue: bareFigures.jobs_per_s,
      ...common,
      notes: `${settings.jobs} jobs added in one statement to an idle runner, timed to the last completion; concurrency is graphile-worker's`,
    }),
    metric({
      name: 'commit-to-start latency p50, step',
      value: stepFigures.latency_ms_p50,
      unit: 'ms',
      peer: 'bare graphile-worker job',
      peerValue: bareFigures.latency_ms_p50,
      ...common,
      notes: `${settings.latencySamples} jobs one at a time on an idle runner; from sending COMMIT to the handler's first line`,
    }),
    metric({
      name: 'commit-to-start latency p99, step',
      value: stepFigures.latency_ms_p99,
      unit: 'ms',
      peer: 'bare graphile-worker job',
      peerValue: bareFigures.latency_ms_p99,
      ...common,
    }),
  ];
}

async function measure(url: string, side: Side, settings: BenchSettings): Promise<SideFigures> {
  const pool = quietPool({ connectionString: url, max: settings.jobConcurrency + 4 });
  const started = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  let completed = 0;
  let failed = 0;
  let allDone: (() => void) | undefined;
  const onStart = (id: string) => {
    started.set(id, performance.now());
    waiters.get(id)?.();
  };
  let runner: Runner | undefined;
  try {
    runner = await run({
      pgPool: pool,
      concurrency: settings.jobConcurrency,
      pollInterval: 1_000,
      taskList: side.taskList(onStart, pool),
      logger: workerLoggerFor(silent),
      noHandleSignals: true,
    });
    runner.events.on('job:complete', ({ error }) => {
      completed += 1;
      if (error !== undefined && error !== null) failed += 1;
      allDone?.();
    });

    const finished = new Promise<void>((resolve) => {
      allDone = () => {
        if (completed >= settings.jobs) resolve();
      };
    });
    const startedAt = performance.now();
    await side.enqueueBulk(pool, settings.jobs);
    await finished;
    const jobs_per_s = settings.jobs / ((performance.now() - startedAt) / 1_000);
    allDone = undefined;
    if (failed > 0) throw new Error(`Expected every no-op job to succeed, got ${failed} failures`);

    const latencies_ms: number[] = [];
    for (let index = 0; index < settings.latencySamples; index += 1) {
      let markStarted!: () => void;
      const startedOne = new Promise<void>((resolve) => (markStarted = resolve));
      const pending = { resolve: markStarted };
      const enqueued = side.enqueueOne(pool, index);
      // the id is known only after the insert; the handler may run before enqueueOne returns
      const { id, commitSentAt } = await enqueued;
      if (started.has(id)) pending.resolve();
      else waiters.set(id, pending.resolve);
      await withTimeout(startedOne, 10_000, `job ${id} to start`);
      waiters.delete(id);
      latencies_ms.push(started.get(id)! - commitSentAt);
      // a short idle gap: each job meets a runner that is waiting, not one still busy
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return { jobs_per_s, latency_ms_p50: percentile(latencies_ms, 50), latency_ms_p99: percentile(latencies_ms, 99) };
  } finally {
    await runner?.stop();
    await pool.end();
  }
}

async function withTimeout<T>(promise: Promise<T>, timeout_ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out after ${timeout_ms} ms waiting for ${what}`)), timeout_ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
