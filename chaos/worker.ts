// One chaos worker process: ledgerbox's runner (startWorker, as a host service starts it) with
// providers that inject faults, the host's card workflow beside the exchange, and the host's
// handler for settled exchanges. The run kills it with SIGKILL at random moments and starts it
// again; SIGTERM stops it gracefully.
import pg from 'pg';
import { pino } from 'pino';
import { array, integer, number, object, string } from 'superstruct';
import { validate } from '../src/contracts.ts';
import { exchangeSettled, startWorker } from '../src/index.ts';
import { chaosCardWorkflow, DatabaseCardProcessor } from './cards.ts';
import { send } from './protocol.ts';
import { faultyCardProcessor, faultyProviders, providerFaults } from './providers.ts';

const WorkerSettings = object({
  index: integer(),
  incarnation: integer(),
  /** Carries application_name=chaos-worker-<index>: how the fault injector finds its connections. */
  connectionString: string(),
  /** The seed of this incarnation's provider faults. */
  seed: integer(),
  rates: object({ failRate: number(), timeoutRate: number(), slowRate: number(), slowMax_ms: integer() }),
  declined: array(string()),
  erroring: array(string()),
  declinedCards: array(string()),
  /** The card processor's connections (application_name chaos-processor-<index>: not the worker's, so no worker connection kill takes them). */
  processorConnectionString: string(),
  providerTimeout_ms: integer(),
  heartbeat_ms: integer(),
  staleWorkerAfter_ms: integer(),
  concurrency: integer(),
});

const settings = validate(WorkerSettings, JSON.parse(process.env.CHAOS_WORKER ?? 'null'), 'CHAOS_WORKER');
const logger = pino({ level: process.env.LEDGERBOX_LOG_LEVEL ?? 'warn', base: { worker: settings.index, incarnation: settings.incarnation } }, pino.destination(2));

// the host's own connections (its notification handler), under the same application_name
const hostPool = new pg.Pool({ connectionString: settings.connectionString, max: 2 });
hostPool.on('error', (error) => logger.warn({ err: error }, 'host connection lost'));
hostPool.on('connect', (connection) => connection.on('error', (error) => logger.warn({ err: error }, 'host connection lost')));

// the card processor: the run's one processor, in the database, reached over its own connections
const processorPool = new pg.Pool({ connectionString: settings.processorConnectionString, max: settings.concurrency });
processorPool.on('error', (error) => logger.warn({ err: error }, 'card processor connection lost'));
processorPool.on('connect', (connection) => connection.on('error', (error) => logger.warn({ err: error }, 'card processor connection lost')));

// one seeded stream of faults for every provider this worker calls
const faults = providerFaults({ seed: settings.seed, rates: settings.rates, report: (fault) => send({ type: 'fault', ...fault }) });
const processor = faultyCardProcessor(new DatabaseCardProcessor(processorPool, { declinedCards: settings.declinedCards }), faults, 2 * settings.providerTimeout_ms);

const worker = await startWorker({
  connectionString: settings.connectionString,
  concurrency: settings.concurrency,
  // even-numbered workers fetch into a local queue (jobs locked by their pool's id), odd ones
  // fetch one job per runner: both ways of holding a job meet the same kills and takeovers
  ...(settings.index % 2 === 0 ? { localQueueSize: settings.concurrency + 1 } : {}),
  pollInterval_ms: 100,
  retry: { base_ms: 20, max_ms: 400 },
  providerTimeout_ms: settings.providerTimeout_ms,
  heartbeat_ms: settings.heartbeat_ms,
  staleWorkerAfter_ms: settings.staleWorkerAfter_ms,
  compensationDelay_ms: 0,
  reconciliation: false, // the run reconciles at the end, by itself
  noHandleSignals: true,
  logger,
  providers: faultyProviders({ faults, declined: settings.declined, erroring: settings.erroring }),
  workflows: [chaosCardWorkflow(processor)],
  tasks: [
    {
      task: exchangeSettled,
      // the host tells its customer; here it counts deliveries (at least once: a worker killed
      // after the handler and before the job is deleted delivers it again)
      handler: async ({ exchangeId }) => {
        await hostPool.query(
          `insert into chaos_host.notified (exchange_id, deliveries) values ($1, 1)
           on conflict (exchange_id) do update set deliveries = chaos_host.notified.deliveries + 1`,
          [exchangeId],
        );
      },
    },
  ],
});
send({ type: 'worker_ready', worker: settings.index, incarnation: settings.incarnation, workerIds: [...worker.workerIds] });

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void worker
    .stop()
    .then(() => Promise.all([hostPool.end(), processorPool.end()]))
    .then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stopping failed');
        process.exit(1);
      },
    );
};
process.on('SIGTERM', stop);
// the run holds our stdin open: if it ends, the run has died, and nobody would ever stop us
process.stdin.on('end', stop).resume();
await worker.promise;
