/**
 * One worker process of scale.bench.ts: ledgerbox's runner (startWorker with the host workflow
 * and host task the suite enqueues) or bare graphile-worker (run, a no-op task). Prints
 * `ready` once it runs and stops gracefully on SIGTERM; the suite times the work from rows.
 */
import { Logger, run } from 'graphile-worker';
import { pino } from 'pino';
import { startWorker } from '../src/index.ts';
import { scaleHostTask, scaleHostWorkflow, scaleBareTask } from './scale-work.ts';

const [side, connectionString, concurrencyText] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
if ((side !== 'ledgerbox' && side !== 'bare') || !connectionString || !(concurrency > 0)) {
  throw new Error('usage (from scale.bench.ts): scale-worker.ts ledgerbox|bare URL CONCURRENCY');
}

let stop: () => Promise<void>;
if (side === 'ledgerbox') {
  const worker = await startWorker({
    connectionString,
    concurrency,
    pollInterval_ms: 1_000,
    noHandleSignals: true,
    reconciliation: false,
    logger: pino({ level: 'silent' }),
    workflows: [scaleHostWorkflow],
    tasks: [{ task: scaleHostTask, handler: async () => undefined }],
  });
  stop = () => worker.stop();
} else {
  const runner = await run({
    connectionString,
    concurrency,
    pollInterval: 1_000,
    noHandleSignals: true,
    logger: new Logger(() => () => undefined),
    taskList: { [scaleBareTask]: async () => undefined },
  });
  stop = () => runner.stop();
}
process.stdout.write('ready\n');
process.once('SIGTERM', () => void stop().then(() => process.exit(0), () => process.exit(1)));
