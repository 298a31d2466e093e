import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import pg from 'pg';
import { parseCrontab, run as runGraphileWorker, type Runner, type TaskList, type WorkerEvents } from 'graphile-worker';
import { any, array, boolean, integer, literal, object, optional, record, size, string, union } from 'superstruct';
import { DeliveryOptions } from '../alerts/alert-contracts.js';
import { deliverAlerts } from '../alerts/deliver.js';
import { deliverAlertsTask, wakeAlertDelivery } from '../alerts/deliver-task.js';
import { reportDeliveryFromEnv } from '../reconcile/report/index.js';
import { nightlyCrontab, reconcileHandler, reconcileTask, sendReportHandler, sendReportTask, type ReportDelivery } from '../reconcile/tasks.js';
import type { ReconcileOptions } from '../reconcile/run.js';
import { LoggerShape, validate } from '../contracts.js';
import { inTransaction, prepareStatementsOn, stopPreparingStatementsOn } from '../db/handle.js';
import { InvalidInputError, LedgerboxError } from '../errors.js';
import { limits } from '../limits.js';
import { expireHolds } from '../ledger/holds.js';
import { defaultLogger, workerLoggerFor, type Logger } from '../logger.js';
import { summariseBatches } from '../batches/summarise.js';
import { DatabaseOptions, pendingMigrations } from '../db/migrate.js';
import { defineTask, isTaskDefinition } from '../jobs/tasks.js';
import { registryOf, type WorkflowDefinition } from '../workflows/definition.js';
import { compiledWorkflow, type Workflow } from '../workflows/define.js';
import { exchangeWorkflowFor } from '../workflows/exchange/exchange.js';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { WorkerMetricsOptions, registerDatabaseGauges, registerProcessMetrics, serveMetrics, type MetricsServer } from '../metrics/index.js';
import type { ExchangeProviders } from '../workflows/exchange/providers.js';
import { runStep, type RetryPolicy } from '../workflows/run-step.js';
import { stepTask } from '../workflows/step-job.js';
import { insertAlert } from '../workflows/workflow-queries.js';
import { alertSeverity } from '../severities.js';
import { contractChecked, type HostTask, type LastFailure } from './task-handlers.js';
import { forgetWorkers, heartbeat, unlockStaleWorkers } from './worker-queries.js';

export interface WorkerOptions {
  /** Give this or `pgPool`. */
  connectionString?: string;
  pgPool?: pg.Pool;
  /** Jobs run at once by this process. Default 4. */
  concurrency?: number;
  /**
   * Jobs this process fetches, and locks, in one round trip into a local queue its runners take
   * from (graphile-worker's localQueue): far fewer statements to find work while many jobs are
   * waiting, as in a busy hour or a nightly fan-out. The cost: queued jobs are locked to this
   * process (for up to 5 minutes; if it dies, until ledgerbox's stale-worker check frees them)
   * while another worker process may sit idle, so keep it near `concurrency`. Default: off,
   * each runner fetches its own job. At least 2.
   */
  localQueueSize?: number;
  /** How often to look for jobs scheduled in the future (retries), in ms. Default 1000. */
  pollInterval_ms?: number;
  /** The host's own tasks, run beside ledgerbox's. */
  tasks?: readonly HostTask<any>[];
  /**
   * The host's workflows (defineWorkflow) this process runs, each kind at the versions listed:
   * list the old version beside the new one while workflows started on it are still running.
   */
  workflows?: readonly Workflow<any>[];
  /** How long a workflow of a kind or version this process does not know waits before its step is offered again. Default 60 000. */
  heldBackRetry_ms?: number;
  /** Extra crontab lines (graphile-worker syntax), beside ledgerbox's own schedule. */
  crontab?: string;
  /** The providers the exchange workflow calls. Required to run exchanges. */
  providers?: ExchangeProviders;
  /** Step retries: backoff before the second attempt, doubled each time with jitter. Default 1 s up to 5 min. */
  retry?: Partial<RetryPolicy>;
  /** How long an external provider call may take before its outcome counts as unknown. Default limits.provider_call_timeout_ms. */
  providerTimeout_ms?: number;
  /**
   * How long a workflow that failed for good waits before its compensation runs, so an operator
   * can fix the data and resume it instead. Default 0: money is released at once.
   */
  compensationDelay_ms?: number;
  /** A worker whose heartbeat is older than this is dead and its jobs are unlocked. Default 30 000. */
  staleWorkerAfter_ms?: number;
  /** Default 5 000. */
  heartbeat_ms?: number;
  /**
   * Slack-compatible incoming webhook that pages on-call: critical alerts go here. Default
   * LEDGERBOX_ONCALL_WEBHOOK_URL; without one, criticals are logged as errors (`no_channel`).
   */
  oncallWebhookUrl?: string;
  /**
   * Slack-compatible incoming webhook of the ops channel: warnings go here (and open an
   * investigation). Default LEDGERBOX_OPS_WEBHOOK_URL; without one they are logged (`no_channel`).
   */
  opsWebhookUrl?: string;
  /**
   * The nightly reconciliation: when (HH:MM, UTC; default RECONCILE_AT or 02:00; nights missed
   * in the last two days are caught up, none runs twice), its thresholds, and where its report
   * goes (default from SMTP_URL, REPORT_FROM, REPORT_TO, LEDGERBOX_REPORT_DIR). false: not here.
   */
  reconciliation?: false | (ReconcileOptions & { at?: string; report?: ReportDelivery });
  /** Don't install SIGTERM/SIGINT handlers (the host has its own and calls stop()). */
  noHandleSignals?: boolean;
  /**
   * Run every statement unnamed, graphile-worker's and ledgerbox's alike: needed behind a
   * pooler that hands each transaction a different connection (PgBouncer in transaction mode).
   * Default false: the worker's statements are prepared once per connection (graphile-worker's
   * own default), which spares the server parsing and planning them for every step.
   */
  noPreparedStatements?: boolean;
  /**
   * Serve Prometheus metrics from this process at `http://<host>:<port>/metrics`: its jobs and
   * steps by outcome, step durations, retries, failures for good, and the database's gauges
   * (queue, money in limbo, investigations, the last reconciliation). Default: none. See
   * docs/metrics.md.
   */
  metrics?: WorkerMetricsOptions;
  logger?: Logger;
}

export interface RunningWorker {
  /** Finishes running jobs (or releases them for a retry), then stops. */
  stop(): Promise<void>;
  /** Settles when the worker has stopped. */
  promise: Promise<void>;
  /** graphile-worker's ids for this process's pool and workers (what jobs are `locked_by`). */
  workerIds: readonly string[];
  /** With `metrics`: where they are served (`http://127.0.0.1:9464/metrics`). */
  metricsUrl: string | undefined;
  /** With `metrics`: the registry, for a host that serves it from its own server too. */
  metrics: Registry | undefined;
}

/** The longest delay a Node timer takes (about 24.8 days); a longer one fires at once. */
const timer_ms_max = 2_147_483_647;
const duration = (min: number) => optional(size(integer(), min, timer_ms_max));

/** The worker's own numbers: whole, positive, within what a timer can wait. */
const WorkerSettings = object({
  // the database and the host's objects are checked on their own, by shape (below)
  connectionString: optional(any()),
  pgPool: optional(any()),
  logger: optional(LoggerShape),
  providers: optional(object({ fx: any(), compliance: any() })),
  workflows: optional(array(any())),
  reconciliation: optional(union([literal(false), record(string(), any())])),
  oncallWebhookUrl: optional(any()),
  opsWebhookUrl: optional(any()),
  noHandleSignals: optional(boolean()),
  heldBackRetry_ms: duration(1),
  concurrency: duration(1),
  pollInterval_ms: duration(1),
  heartbeat_ms: duration(1),
  staleWorkerAfter_ms: duration(1),
  providerTimeout_ms: duration(1),
  compensationDelay_ms: duration(0),
  retry: optional(object({ base_ms: duration(1), max_ms: duration(1) })),
  crontab: optional(string()),
  tasks: optional(array()),
  noPreparedStatements: optional(boolean()),
  localQueueSize: optional(size(integer(), 2, 10_000)),
  metrics: optional(WorkerMetricsOptions),
});

/** Voids holds past their expiry, every minute. */
export const expireHoldsTask = defineTask('ledgerbox:expire_holds', object({ _cron: optional(object()) }));

/** Summarises the batch runs (named fan-outs) whose jobs have all finished, every minute. */
export const summariseBatchesTask = defineTask('ledgerbox:summarise_batches', object({ _cron: optional(object()) }));

const ledgerboxCrontab = [`* * * * * ${expireHoldsTask.name}`, `* * * * * ${deliverAlertsTask.name}`, `* * * * * ${summariseBatchesTask.name}`].join('\n');

/**
 * Starts the job runner in this process: ledgerbox's workflow steps and scheduled tasks, and
 * the host's own tasks, on graphile-worker. `npx ledgerbox worker` runs the same thing.
 */
export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  if (options.pgPool === undefined && options.connectionString === undefined) {
    throw new LedgerboxError('database_not_configured', 'startWorker needs `connectionString` or `pgPool`');
  }
  validate(DatabaseOptions, { connectionString: options.connectionString, pgPool: options.pgPool }, 'options');
  validate(WorkerSettings, options, 'options');
  for (const [index, hostTask] of (options.tasks ?? []).entries()) {
    const unknownKeys = typeof hostTask === 'object' && hostTask !== null ? Object.keys(hostTask).filter((key) => !['task', 'handler', 'transaction'].includes(key)) : [];
    if (!isTaskDefinition(hostTask?.task) || typeof hostTask.handler !== 'function' || ![undefined, true, false].includes(hostTask.transaction) || unknownKeys.length > 0) {
      throw new LedgerboxError('unknown_task', `Expected \`options.tasks.${index}\` to be { task: a task made by defineTask, handler: a function, transaction?: boolean }${unknownKeys.length > 0 ? `, not ${unknownKeys.map((key) => `\`${key}\``).join(", ")}` : ""}`, { details: { path: `options.tasks.${index}` } });
    }
  }
  const hostWorkflows = (options.workflows ?? []).map((workflow, index) => {
    const compiled = compiledWorkflow(workflow);
    if (compiled === undefined) {
      throw new InvalidInputError(`Invalid \`options.workflows.${index}\`: expected a workflow made by defineWorkflow`, ['options', 'workflows', index], workflow);
    }
    return compiled;
  });
  const definitions: WorkflowDefinition<unknown>[] = [...hostWorkflows];
  if (options.providers !== undefined) definitions.push(compiledWorkflow(exchangeWorkflowFor(options.providers))!);
  const seenVersions = new Set<string>();
  for (const [index, definition] of definitions.entries()) {
    const name = `${definition.kind} version ${definition.version ?? 1}`;
    if (seenVersions.has(name)) {
      const why = definition.kind === 'exchange' && index === definitions.length - 1 ? ' (the exchange is ledgerbox\'s own: give yours another kind)' : '';
      throw new InvalidInputError(`Invalid \`options.workflows\`: ${name} is listed twice${why}`, ['options', 'workflows'], name);
    }
    seenVersions.add(name);
  }
  if (options.crontab !== undefined) {
    try {
      parseCrontab(options.crontab);
    } catch (error) {
      throw new InvalidInputError(`Invalid \`options.crontab\`: ${(error as Error).message}`, ['options', 'crontab'], options.crontab);
    }
  }
  const logger = (options.logger ?? defaultLogger()).child({ component: 'worker' });
  const heartbeat_ms = options.heartbeat_ms ?? 5_000;
  const staleAfter_ms = options.staleWorkerAfter_ms ?? 30_000;
  if (staleAfter_ms < 3 * heartbeat_ms) {
    // closer than that, a worker missing one beat (a busy moment) would be taken for dead
    throw new InvalidInputError(
      `Invalid \`staleWorkerAfter_ms\`: must be at least 3 × heartbeat_ms (${3 * heartbeat_ms}), got ${staleAfter_ms}`,
      ['staleWorkerAfter_ms'],
      staleAfter_ms,
    );
  }
  // a malformed webhook URL is refused at start, not found at the first alert
  const alertDelivery = namingVariables(
    () =>
      validate(
        DeliveryOptions,
        {
          oncallWebhookUrl: options.oncallWebhookUrl ?? fromEnvironment('LEDGERBOX_ONCALL_WEBHOOK_URL'),
          opsWebhookUrl: options.opsWebhookUrl ?? fromEnvironment('LEDGERBOX_OPS_WEBHOOK_URL'),
          logger: logger.child({ component: 'alerts' }),
        },
        'options',
      ),
    {
      oncallWebhookUrl: options.oncallWebhookUrl === undefined ? 'LEDGERBOX_ONCALL_WEBHOOK_URL' : undefined,
      opsWebhookUrl: options.opsWebhookUrl === undefined ? 'LEDGERBOX_OPS_WEBHOOK_URL' : undefined,
    },
  );
  const concurrency = options.concurrency ?? 4;
  const ownPool = options.pgPool === undefined;
  // the runner's connections, its LISTEN connection, and ours for steps and heartbeats
  const pool = options.pgPool ?? new pg.Pool({ connectionString: options.connectionString, max: concurrency + 4 });
  if (ownPool) {
    // a connection dropped by the server must be logged, not crash the process
    pool.on('error', (error) => logger.error({ err: error }, 'idle database connection failed'));
    pool.on('connect', (client) => client.on('error', (error) => logger.error({ err: error }, 'database connection failed')));
  }
  if (options.noPreparedStatements !== true) prepareStatementsOn(pool);
  const workflows = registryOf(definitions);
  // the process's counters and the database's gauges in one registry, scraped together
  const metricsRegistry = options.metrics === undefined ? undefined : new Registry();
  const recorder = metricsRegistry === undefined ? undefined : registerProcessMetrics(metricsRegistry);
  if (metricsRegistry !== undefined) {
    registerDatabaseGauges(pool, metricsRegistry, (error) => logger.warn({ err: error }, 'metrics: could not read the database gauges'));
    collectDefaultMetrics({ register: metricsRegistry, prefix: 'ledgerbox_' });
  }
  const retry: RetryPolicy = { base_ms: options.retry?.base_ms ?? 1_000, max_ms: options.retry?.max_ms ?? 300_000 };

  const raiseAlert = async (failure: LastFailure) => {
    await inTransaction(pool, async (db) => {
      await insertAlert(db, {
        // a warning: a host job carries no money (src/severities.ts)
        severity: alertSeverity('job_failed'),
        kind: 'job_failed',
        workflowId: null,
        message: `Job ${failure.jobId} (${failure.task}) failed for good after ${failure.attempts} attempts: ${failure.error instanceof Error ? failure.error.message : String(failure.error)}`,
        details: { task: failure.task, jobId: failure.jobId, attempts: failure.attempts },
      });
      await wakeAlertDelivery(db);
    }).catch((error: unknown) => logger.error({ err: error }, 'could not record the alert for a failed job'));
  };
  const taskList: TaskList = {};
  // with no workflow to run this process cannot run steps: leave them to workers that can,
  // rather than take them and hold them back
  if (definitions.length > 0) taskList[stepTask.name] = contractChecked(
      {
        task: stepTask,
        handler: async (payload, { logger: jobLogger, jobId, helpers }) => {
          await runStep(
            {
              db: pool,
              workflows,
              providers: undefined,
              ...(options.heldBackRetry_ms === undefined ? {} : { heldBackRetry_ms: options.heldBackRetry_ms }),
              retry,
              providerTimeout_ms: options.providerTimeout_ms ?? limits.provider_call_timeout_ms,
              compensationDelay_ms: options.compensationDelay_ms ?? 0,
              logger: jobLogger,
              ...(recorder === undefined ? {} : { recorder }),
            },
            payload,
            { id: jobId, workerId: helpers.job.locked_by },
          );
        },
      },
      logger,
      raiseAlert,
    );
  taskList[expireHoldsTask.name] = async () => {
    const voided = await expireHolds(pool);
    if (voided.length > 0) logger.info({ voided: voided.length }, 'expired holds voided');
  };
  taskList[summariseBatchesTask.name] = async () => {
    for (const summary of await summariseBatches(pool)) {
      logger.info({ batchId: summary.batchId, batch: summary.name, completed: summary.completed, failed: summary.failed }, 'batch run summarised');
    }
  };
  taskList[deliverAlertsTask.name] = async () => {
    const delivered = await deliverAlerts(pool, alertDelivery);
    if (delivered.sent + delivered.noChannel + delivered.failed > 0) logger.info(delivered, 'alerts delivered');
  };
  let reconcileCrontab = '';
  if (options.reconciliation !== false) {
    const { at, report, ...reconcileOptions } = options.reconciliation ?? {};
    reconcileCrontab = nightlyCrontab(at ?? fromEnvironment('RECONCILE_AT') ?? '02:00');
    taskList[reconcileTask.name] = reconcileHandler(pool, reconcileOptions, logger);
    taskList[sendReportTask.name] = sendReportHandler(pool, report ?? reportDeliveryFromEnv(), logger);
  }
  for (const hostTask of options.tasks ?? []) {
    if (hostTask.task.name in taskList) {
      throw new LedgerboxError('unknown_task', `Task ${hostTask.task.name} is ledgerbox's own; give yours another name`);
    }
    taskList[hostTask.task.name] = contractChecked(hostTask, logger, raiseAlert, pool);
  }

  // last, once every option is known good: the first statement on the pool
  const pending = await pendingMigrations(pool).catch(async (error: unknown) => {
    if (ownPool) await pool.end();
    throw error;
  });
  if (pending.length > 0) {
    if (ownPool) await pool.end();
    else stopPreparingStatementsOn(pool);
    throw new LedgerboxError(
      'migrations_pending',
      `The database lacks ledgerbox's migrations ${pending.join(', ')}: run \`npx ledgerbox migrate\` (or migrate()) before starting the worker, whose steps need them`,
      { details: { pending } },
    );
  }
  const workerIds: string[] = [];
  const events: WorkerEvents = new EventEmitter() as WorkerEvents;
  // jobs are locked by a worker's id, or by its pool's id when the pool fetches them in a batch
  events.on('pool:create', ({ workerPool }) => workerIds.push(workerPool.id));
  events.on('worker:create', ({ worker }) => workerIds.push(worker.workerId));
  if (recorder !== undefined) {
    // every attempt ends in exactly one of these: job:error also for the last, failing one
    events.on('job:success', ({ job }) => recorder.jobAttempt(job.task_identifier, false, job.attempts, job.max_attempts));
    events.on('job:error', ({ job }) => recorder.jobAttempt(job.task_identifier, true, job.attempts, job.max_attempts));
  }
  let metricsServer: MetricsServer | undefined;
  if (metricsRegistry !== undefined && options.metrics !== undefined) {
    metricsServer = await serveMetrics(metricsRegistry, { port: options.metrics.port, host: options.metrics.host ?? '127.0.0.1', token: options.metrics.token }, logger).catch(async (error: unknown) => {
      if (ownPool) await pool.end();
      else if (options.noPreparedStatements !== true) stopPreparingStatementsOn(pool);
      throw error;
    });
  }

  const runner: Runner = await runGraphileWorker({
    pgPool: pool,
    concurrency,
    pollInterval: options.pollInterval_ms ?? 1_000,
    taskList,
    crontab: [ledgerboxCrontab, reconcileCrontab, options.crontab ?? ''].join('\n'),
    logger: workerLoggerFor(logger),
    events,
    noHandleSignals: options.noHandleSignals ?? false,
    noPreparedStatements: options.noPreparedStatements ?? false,
    ...(options.localQueueSize === undefined ? {} : { preset: { worker: { localQueue: { size: options.localQueueSize } } } }),
  }).catch(async (error: unknown) => {
    await metricsServer?.close();
    throw error;
  });

  const process_name = `${hostname()}:${process.pid}`;
  // The heartbeat has a connection of its own: a pool busy with the host's queries must not
  // make a live worker look dead to its peers. A beat still under way is not started twice.
  let beatClient: pg.Client | undefined;
  let beating = false;
  const beat = async () => {
    if (beating) return;
    beating = true;
    try {
      beatClient ??= await connectedClient(pool.options, logger);
      await inTransaction(beatClient, async (db) => {
        await heartbeat(db, workerIds, process_name);
        const unlocked = await unlockStaleWorkers(db, staleAfter_ms);
        if (unlocked.length > 0) logger.warn({ workers: unlocked }, 'unlocked the jobs of workers that stopped beating');
      });
    } catch (error) {
      logger.error({ err: error }, 'heartbeat failed');
      await beatClient?.end().catch(() => undefined);
      beatClient = undefined;
    } finally {
      beating = false;
    }
  };
  await beat();
  const timer = setInterval(() => void beat(), heartbeat_ms);
  timer.unref();

  let stopping: Promise<void> | undefined;
  const finished = runner.promise.finally(async () => {
    clearInterval(timer);
    await metricsServer?.close();
    await inTransaction(pool, (db) => forgetWorkers(db, workerIds)).catch(() => undefined);
    await beatClient?.end().catch(() => undefined);
    if (ownPool) await pool.end();
    // a pool of the host's goes back to unnamed statements for the host's own calls
    else if (options.noPreparedStatements !== true) stopPreparingStatementsOn(pool);
  });
  return {
    workerIds,
    metricsUrl: metricsServer?.url,
    metrics: metricsRegistry,
    promise: finished,
    stop: () => (stopping ??= runner.stop().then(() => finished)),
  };
}

/** A refusal of an option that came from the environment names the variable, so the operator knows what to fix. */
function namingVariables<T>(check: () => T, variables: Record<string, string | undefined>): T {
  try {
    return check();
  } catch (error) {
    const variable = error instanceof InvalidInputError ? variables[String(error.path[1])] : undefined;
    if (variable === undefined) throw error;
    const refused = error as InvalidInputError;
    throw new InvalidInputError(`${refused.message} (read from ${variable})`, [variable], refused.value);
  }
}

/** An unset or empty variable is no URL (`.env` files often leave them empty). */
function fromEnvironment(name: string): string | undefined {
  const value = process.env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

async function connectedClient(config: pg.PoolConfig, logger: Logger): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', (error) => logger.error({ err: error }, 'heartbeat connection failed'));
  await client.connect();
  return client;
}
