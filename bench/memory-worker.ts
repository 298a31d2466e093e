/**
 * The worker process measured by memory.bench.ts: ledgerbox's runner (startWorker, a host
 * task that does nothing) or bare graphile-worker (run, the same task), alone in its own
 * process so its resident set size is the worker's and nothing else's. Driven over IPC: it
 * reports `ready` with its RSS, then `done` with its RSS once it has run the jobs it was told.
 */
import { Logger, run, type Runner } from 'graphile-worker';
import { pino } from 'pino';
import { integer, object } from 'superstruct';
import { defineTask, startWorker } from '../src/index.ts';

type Message = { kind: 'ready' | 'done'; rss: number; heapUsed: number; handled: number };

const [side, connectionString, jobsText, concurrencyText, memoryTask] = process.argv.slice(2);
const jobs = Number(jobsText);
const concurrency = Number(concurrencyText);
if (!process.send || (side !== 'ledgerbox' && side !== 'bare') || !connectionString || !(jobs > 0) || !(concurrency > 0) || !memoryTask) {
  throw new Error('usage (over IPC, from memory.bench.ts): memory-worker.ts ledgerbox|bare URL JOBS CONCURRENCY TASK');
}

let handled = 0;
let finished: () => void;
const allHandled = new Promise<void>((resolve) => (finished = resolve));
const handle = async () => {
  handled += 1;
  if (handled === jobs) finished();
};

function report(kind: Message['kind']): void {
  // after a full collection, so the figure is what the worker keeps, not garbage not yet collected
  (globalThis as { gc?: () => void }).gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  process.send!({ kind, rss, heapUsed, handled } satisfies Message);
}

let stop: () => Promise<void>;
if (side === 'ledgerbox') {
  const task = defineTask(memoryTask, object({ n: integer() }));
  const worker = await startWorker({
    connectionString,
    concurrency,
    pollInterval_ms: 100,
    noHandleSignals: true,
    reconciliation: false,
    logger: pino({ level: 'silent' }),
    tasks: [{ task, handler: handle }],
  });
  stop = () => worker.stop();
} else {
  const runner: Runner = await run({
    connectionString,
    concurrency,
    pollInterval: 100,
    noHandleSignals: true,
    logger: new Logger(() => () => undefined),
    taskList: { [memoryTask]: handle },
  });
  stop = () => runner.stop();
}
report('ready');
await allHandled;
report('done');
await stop();
process.disconnect();
