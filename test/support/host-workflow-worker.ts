// A host service's worker process for test/workflows.crash.test.ts: startWorker with the host's
// card payment workflow (test/support/crash-host.ts), a processor whose records are rows, and
// two host tasks. Prints one JSON line `{"ready": true, "workerIds": [...]}` once it runs (after
// its first heartbeat) and stops gracefully on SIGTERM.
//
// With CRASH_AT_PLANNED_POINTS=1 it stops dead where the host table crash_plan says: at the
// point planned for a workflow (by its key) or a task's effect, it marks the plan row reached
// and hangs there for ever, for the test to SIGKILL it; every later step of a workflow whose
// point was entered hangs at its start (so the workflow stands still until the kill). Without
// it, it runs everything to the end: the worker that recovers after a kill.
import pg from 'pg';
import { pino } from 'pino';
import { startWorker } from '../../src/index.ts';
import {
  applyEffect,
  crashPaymentWorkflow,
  plainEffectTask,
  RecordedCardProcessor,
  transactionalEffectTask,
  type CrashHooks,
} from './crash-host.ts';

const connectionString = process.env.DATABASE_URL;
if (!connectionString) throw new Error('DATABASE_URL is not set');
const crashing = process.env.CRASH_AT_PLANNED_POINTS === '1';
const number = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

const logger = pino({ level: process.env.LEDGERBOX_LOG_LEVEL === 'silent' ? 'warn' : (process.env.LEDGERBOX_LOG_LEVEL ?? 'warn') }, pino.destination(2));
// the host's own connections (its tables, the processor's records, the crash plan): never the
// worker's, so a mark is committed whatever the step's transaction does
const hostPool = new pg.Pool({ connectionString, max: 6 });
hostPool.on('error', (error) => logger.warn({ err: error }, 'host connection failed'));

const forever = () => new Promise<never>(() => undefined);

async function reached(target: string, point: string): Promise<void> {
  await hostPool.query('update crash_plan set reached_at = now() where target = $1', [target]);
  process.stdout.write(`${JSON.stringify({ reached: point, target })}\n`);
}

/** Once a commit on this connection has returned: mark the point reached, and never return. */
function hangAfterCommit(client: pg.PoolClient | pg.Client, target: string, point: string): void {
  const original = client.query;
  const patched = function (this: unknown, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: unknown } | undefined)?.text;
    const answer = (original as (...a: unknown[]) => unknown).apply(client, args);
    if (text === 'commit' || text === 'rollback') {
      client.query = original;
      if (text === 'commit') return (answer as Promise<unknown>).then(async () => (await reached(target, point), forever()));
    }
    return answer;
  };
  client.query = patched as typeof client.query;
}

const hooks: CrashHooks = crashing
  ? {
      async enter({ key }) {
        const { rows } = await hostPool.query('select armed_at is not null as armed from crash_plan where target = $1', [key]);
        if (rows[0]?.armed === true) await forever();
      },
      async at(point, { key }, client) {
        const { rows } = await hostPool.query('select point, armed_at is not null as armed from crash_plan where target = $1', [key]);
        const plan = rows[0] as { point: string; armed: boolean } | undefined;
        if (plan === undefined) return;
        if (plan.armed) await forever();
        if (plan.point !== point) return;
        await hostPool.query('update crash_plan set armed_at = now(), pid = $2 where target = $1', [key, process.pid]);
        if (point.endsWith(':after_commit')) {
          if (client === undefined) throw new Error(`${point} needs the transaction's connection`);
          hangAfterCommit(client, key, point);
          return;
        }
        await reached(key, point);
        await forever();
      },
    }
  : { enter: async () => undefined, at: async () => undefined };

const worker = await startWorker({
  connectionString,
  concurrency: number('WORKER_CONCURRENCY', 4),
  pollInterval_ms: 100,
  heartbeat_ms: number('WORKER_HEARTBEAT_MS', 100),
  staleWorkerAfter_ms: number('WORKER_STALE_MS', 500),
  retry: { base_ms: 20, max_ms: 200 },
  // a call that hangs at a crash point must stay hung, not time out into a lookup
  providerTimeout_ms: crashing ? 600_000 : 5_000,
  reconciliation: false,
  noHandleSignals: true,
  logger,
  workflows: [crashPaymentWorkflow(new RecordedCardProcessor(hostPool), hooks)],
  tasks: [
    {
      task: transactionalEffectTask,
      transaction: true,
      async handler({ effect }, { db }) {
        await db.query(applyEffect, [effect]);
        // its job's completion (ledgerbox.complete_job) follows in this transaction
        await hooks.at('task:after_commit', { key: effect }, db);
      },
    },
    {
      task: plainEffectTask,
      async handler({ effect }) {
        await hostPool.query(applyEffect, [effect]);
        await hooks.at('task:after_effect', { key: effect });
      },
    },
  ],
});
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, workerIds: worker.workerIds })}\n`);

process.once('SIGTERM', () => {
  void worker
    .stop()
    .then(() => hostPool.end())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
});
