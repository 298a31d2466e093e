import pg from 'pg';
import { pino } from 'pino';
import { object } from 'superstruct';
import { run, type Runner, type TaskList } from 'graphile-worker';
import { prepareStatementsOn } from '../src/db/handle.ts';
import { workerLoggerFor } from '../src/logger.ts';
import { compiledWorkflow, defineWorkflow } from '../src/workflows/define.ts';
import { registryOf, type WorkflowDefinition } from '../src/workflows/definition.ts';
import { runStep } from '../src/workflows/run-step.ts';
import { enqueueStep, stepTask } from '../src/workflows/step-job.ts';
import { insertWorkflow } from '../src/workflows/workflow-queries.ts';
import { contractChecked } from '../src/worker/task-handlers.ts';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { median, metric, percentile, type Metric } from './results.ts';
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

/**
 * The same as a host writes it (defineWorkflow): a database step that does nothing (it runs in
 * the step's transaction: BEGIN, lock, finish, COMMIT), then a pure step (an external call
 * answered at once and decided without the database: its answer recorded, then the result in
 * one statement). The host API has no pure step without an external call; that recorded answer
 * is part of what such a step costs.
 */
const hostNoop = defineWorkflow({
  kind: 'bench_host_noop',
  version: 1,
  input: object({}),
  steps: {
    write: { type: 'database', run: async () => ({ next: 'decide' }) },
    decide: { type: 'external', provider: 'bench_noop', call: async () => ({}), decide: () => ({ complete: true }) },
  },
  compensate: { type: 'database', run: async () => ({ complete: true }) },
});

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

/** The step wrapper (runStep, as startWorker runs it) over `definition`, whose workflows start at `firstStep`. */
function stepSide(definition: WorkflowDefinition<unknown>): Side {
  const workflows = registryOf([definition]);
  return {
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
                  workflows,
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
      // the workflows exist before the clock starts; the timed part is their step jobs (`count`
      // steps in all: one workflow per step of the definition's path), the first added the way
      // enqueueStep adds one (keyed per step), in one statement; each step enqueues the next
      const length = Object.keys(definition.steps).length;
      await pool.query(
        `insert into ledgerbox.workflows (kind, version, key, current_step)
         select $1, $2, 'bench:' || gen_random_uuid(), $3 from generate_series(1, $4::int)`,
        [definition.kind, definition.version ?? 1, definition.firstStep, Math.ceil(count / length)],
      );
      await pool.query(
        `select count(*) from graphile_worker.add_jobs(array(
           select row($1, json_build_object('workflowId', w.id, 'step', $3::text), null, null, 25,
                      'ledgerbox:step:' || w.id || ':' || $3, null, null)::graphile_worker.job_spec
           from ledgerbox.workflows w where w.kind = $2 and w.status = 'running'
             and not exists (select 1 from ledgerbox.step_results r where r.workflow_id = w.id)))`,
        [stepTask.name, definition.kind, definition.firstStep],
      );
    },
    enqueueOne: async (pool, index) => {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const db = sessionOf(client);
        const workflow = await insertWorkflow(db, { kind: definition.kind, version: definition.version ?? 1, key: `latency:${index}`, firstStep: definition.firstStep, subject: {} });
        await enqueueStep(db, workflow!.id, definition.firstStep);
        const commitSentAt = performance.now();
        await client.query('commit');
        return { id: workflow!.id, commitSentAt };
      } finally {
        client.release();
      }
    },
  };
}

const steps = stepSide(noopWorkflow as WorkflowDefinition<unknown>);
const hostSteps = stepSide(compiledWorkflow(hostNoop)!);

interface SideFigures {
  jobs_per_s: number;
  latency_ms_p50: number;
  latency_ms_p99: number;
}

/**
 * Item 3: no-op steps through the exactly-once wrapper (runStep, as the worker runs it) against
 * bare graphile-worker no-op jobs, at the same concurrency, each in a database of its own; and
 * the same wrapper over a host-defined workflow. The sides take turns, `jobRounds` times (bare,
 * wrapper, host, bare, …), and each figure is the median of its rounds: on a shared machine the
 * load moves between one run and the next, and a side measured once, minutes from its peer,
 * says more about the neighbours than about the code.
 */
export async function benchJobs(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  const rounds: { bare: SideFigures; steps: SideFigures; host: SideFigures }[] = [];
  for (let round = 1; round <= settings.jobRounds; round += 1) {
    // commit-to-start latency in the first round only: it is measured on an idle runner, one job at a time
    const sized = round === 1 ? settings : { ...settings, latencySamples: 0 };
    const bareFigures = await withDatabase(server, 'jobs_bare', { migrated: true }, (url) => measure(url, bare, sized));
    const stepFigures = await withDatabase(server, 'jobs_steps', { migrated: true }, (url) => measure(url, steps, sized));
    // throughput only: its commit-to-start latency is the wrapper's, measured above
    const hostFigures = await withDatabase(server, 'jobs_host', { migrated: true }, (url) => measure(url, hostSteps, { ...settings, latencySamples: 0 }));
    rounds.push({ bare: bareFigures, steps: stepFigures, host: hostFigures });
    log(
      `round ${round}/${settings.jobRounds}: bare graphile-worker ${bareFigures.jobs_per_s.toFixed(0)} jobs/s; ` +
        `step wrapper ${stepFigures.jobs_per_s.toFixed(0)} steps/s (${(stepFigures.jobs_per_s / bareFigures.jobs_per_s).toFixed(2)}); ` +
        `host-defined workflow ${hostFigures.jobs_per_s.toFixed(0)} steps/s (${(hostFigures.jobs_per_s / bareFigures.jobs_per_s).toFixed(2)})`,
    );
  }
  const first = rounds[0]!;
  log(`commit-to-start: bare p50 ${first.bare.latency_ms_p50.toFixed(1)} ms p99 ${first.bare.latency_ms_p99.toFixed(1)} ms; step p50 ${first.steps.latency_ms_p50.toFixed(1)} ms p99 ${first.steps.latency_ms_p99.toFixed(1)} ms`);
  const bareRate = median(rounds.map((r) => r.bare.jobs_per_s));
  const common = { clients: settings.jobConcurrency };
  const each = (pick: (r: (typeof rounds)[number]) => SideFigures) => rounds.map((r) => (pick(r).jobs_per_s / r.bare.jobs_per_s).toFixed(2)).join(', ');
  return [
    metric({
      name: 'no-op steps through the exactly-once wrapper',
      value: median(rounds.map((r) => r.steps.jobs_per_s)),
      unit: 'jobs/s',
      peer: 'bare graphile-worker no-op jobs',
      peerValue: bareRate,
      ...common,
      notes: `${settings.jobs} jobs added in one statement to an idle runner, timed to the last completion; concurrency is graphile-worker's; median of ${rounds.length} rounds, ratio per round ${each((r) => r.steps)}`,
    }),
    metric({
      name: 'no-op steps of a host-defined workflow (defineWorkflow: a database step, then a pure step)',
      value: median(rounds.map((r) => r.host.jobs_per_s)),
      unit: 'jobs/s',
      peer: 'bare graphile-worker no-op jobs',
      peerValue: bareRate,
      ...common,
      notes: `${settings.jobs} steps, two per workflow (a no-op database step in its transaction, then an external step answered at once and decided without the database), timed as above; ratio per round ${each((r) => r.host)}`,
    }),
    metric({
      name: 'commit-to-start latency p50, step',
      value: first.steps.latency_ms_p50,
      unit: 'ms',
      peer: 'bare graphile-worker job',
      peerValue: first.bare.latency_ms_p50,
      ...common,
      notes: `${settings.latencySamples} jobs one at a time on an idle runner; from sending COMMIT to the handler's first line`,
    }),
    metric({
      name: 'commit-to-start latency p99, step',
      value: first.steps.latency_ms_p99,
      unit: 'ms',
      peer: 'bare graphile-worker job',
      peerValue: first.bare.latency_ms_p99,
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
    if (latencies_ms.length === 0) return { jobs_per_s, latency_ms_p50: Number.NaN, latency_ms_p99: Number.NaN };
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
