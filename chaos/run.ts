// `npm run chaos`: ledgerbox under faults, replayable from a seed (TigerBeetle's simulator is the
// model). Client processes place exchanges, transfers, holds, reversals and card payments
// through the public API, and play the card processor's webhook, while worker processes run
// the steps (the exchange and the card workflow); providers fail, time out and dawdle, workers are
// killed with SIGKILL, connections are terminated mid-transaction and PostgreSQL restarts. Then
// the system drains and the invariants are checked. Exit 0 only if every one holds.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openChaosDatabase, withApplicationName, type ChaosDatabase } from './database.ts';
import { injectFaults, scheduleFaults, type InjectedFault } from './faults.ts';
import { parseOptions, replayCommand } from './options.ts';
import { buildPlan, type Plan } from './plan.ts';
import { plantViolation } from './plant.ts';
import { startCommitLossProxy, type CommitLossProxy } from './proxy.ts';
import { logPath, spawnScript, WorkerSlot, type Spawned } from './processes.ts';
import type { Message, OutcomeMessage, SignalMessage } from './protocol.ts';
import { countFaults, renderSummary, writeJson, type Summary } from './report.ts';
import { dice, streamSeed } from './random.ts';
import { setUp } from './setup.ts';
import { verify } from './verify.ts';

const options = parseOptions(process.argv.slice(2));
const out = (line = '') => process.stdout.write(`${line}\n`);
const seconds = (since: number) => (Date.now() - since) / 1000;

// the step's own deadline for a provider call; slow answers take up to twice as long
const providerTimeout_ms = 250;

const replay = replayCommand(options);
out(`chaos seed ${options.seed}`);
out(`  replay: ${replay}`);

const logs = await fs.mkdtemp(path.join(os.tmpdir(), `ledgerbox-chaos-${options.seed}-`));
let database: ChaosDatabase | undefined;
let pool: pg.Pool | undefined;
let proxy: CommitLossProxy | undefined;
const slots: WorkerSlot[] = [];
const clients: Spawned[] = [];
let interrupted = false;

process.on('SIGINT', () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  process.stderr.write(`\ninterrupted (seed ${options.seed}): stopping the processes and the database\n`);
  void shutDown(true).finally(() => process.exit(130));
});

try {
  process.exitCode = (await main()) ? 0 : 1;
} catch (error) {
  process.stderr.write(`chaos: the run failed (seed ${options.seed}; replay with: ${replay}): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.stderr.write(`  logs in ${logs}\n`);
  process.exitCode = 1;
  await shutDown(true);
}

async function shutDown(keep: boolean): Promise<void> {
  for (const client of clients) if (client.child.exitCode === null && client.child.signalCode === null) client.child.kill('SIGKILL');
  await Promise.all(slots.map((slot) => slot.stop(5_000)));
  await proxy?.close();
  await pool?.end().catch(() => undefined);
  pool = undefined;
  await database?.close(keep).catch((error: unknown) => process.stderr.write(`closing the database: ${String(error)}\n`));
  database = undefined;
}

async function main(): Promise<boolean> {
  const started = Date.now();
  database = await openChaosDatabase({ seed: options.seed, log: (line) => process.env.LEDGERBOX_LOG_LEVEL === 'debug' && process.stderr.write(`# ${line}\n`) });
  const url = database.connectionString;
  const restartSkipped = options.pgRestart ? database.restartSkipped : 'turned off (--no-pg-restart)';
  out(`  database: ${database.description}`);
  if (database.restartSkipped !== null && options.pgRestart) out(`  postgres_restart: skipped: ${database.restartSkipped}`);
  out(`  logs: ${logs}`);

  pool = new pg.Pool({ connectionString: withApplicationName(url, 'chaos-run'), max: 4 });
  // connections lost to the restart: the next query reconnects
  pool.on('error', () => undefined);
  pool.on('connect', (connection) => connection.on('error', () => undefined));
  const customers = options.customers ?? Math.max(10, Math.round(options.exchanges / 10));
  const cardPayments = options.cardPayments ?? Math.max(5, Math.round(options.exchanges / 10));
  const plan = buildPlan({ seed: options.seed, exchanges: options.exchanges, clients: options.clients, customers, cardPayments });
  const size = sizeOf(plan);
  out(`  workload: ${size.requests} requests (${size.exchanges} exchanges, ${size.transfers} transfers, ${size.batches} batches, ${size.holds} holds, ${size.reversals} reversals, ${size.cardPayments} card payments) from ${options.clients} clients over ${options.duration} s, ${options.workers} workers, ${customers} customers`);
  await setUp(pool, plan);
  const setupDone = Date.now();

  const injected: InjectedFault[] = [];
  const missed: string[] = [];
  const outcomes = new Map<string, OutcomeMessage>();
  const signals: SignalMessage[] = [];
  let clientConnectionErrors = 0;
  let workloadStart_ms = Date.now();
  const badLine = (who: string) => (line: string, error: unknown) => missed.push(`${who} wrote an unreadable line (${String(error)}): ${line.slice(0, 200)}`);

  // the workers, each in a slot that restarts it when it dies
  const onWorkerMessage = (slot: WorkerSlot) => (message: Message) => {
    if (message.type === 'worker_ready') slot.markReady();
    if (message.type === 'fault') injected.push({ kind: message.kind, at_ms: Date.now() - workloadStart_ms, detail: `${message.provider} on chaos-worker-${slot.index}${message.delay_ms ? `, ${message.delay_ms} ms` : ''}` });
  };
  for (let index = 1; index <= options.workers; index++) {
    const slot: WorkerSlot = new WorkerSlot(index, (self) =>
      spawnScript({
        script: 'chaos/worker.ts',
        logFile: logPath(logs, `worker-${index}`),
        onMessage: onWorkerMessage(self),
        onBadLine: badLine(`chaos-worker-${index}`),
        env: {
          CHAOS_WORKER: JSON.stringify({
            index,
            incarnation: self.incarnation,
            connectionString: withApplicationName(url, `chaos-worker-${index}`),
            seed: streamSeed(options.seed, `worker:${index}:${self.incarnation}`),
            rates: { failRate: options.providerFailRate, timeoutRate: options.providerTimeoutRate, slowRate: options.providerSlowRate, slowMax_ms: 2 * providerTimeout_ms },
            declined: plan.declined,
            erroring: plan.erroring,
            declinedCards: plan.declinedCards,
            processorConnectionString: withApplicationName(url, `chaos-processor-${index}`),
            providerTimeout_ms,
            heartbeat_ms: 300,
            staleWorkerAfter_ms: 1_500,
            concurrency: 4,
          }),
        },
      }),
    );
    slots.push(slot);
    slot.launch();
  }
  await until('the workers to start', 90_000, async () => slots.every((slot) => slot.ready));

  // the clients, through the proxy that loses COMMIT answers, paced over the duration from a
  // common start once all are connected
  const server = new URL(url);
  proxy = await startCommitLossProxy({
    target: { host: server.hostname, port: Number(server.port || 5432) },
    rate: options.commitLossRate,
    random: dice(streamSeed(options.seed, 'proxy')).next,
    onLoss: () => injected.push({ kind: 'commit_answer_lost', at_ms: Date.now() - workloadStart_ms, detail: 'a client COMMIT went through, its answer did not' }),
  });
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  const duration_ms = options.duration * 1_000;
  const readyClients = new Set<number>();
  for (let index = 1; index <= options.clients; index++) {
    clients.push(
      spawnScript({
        script: 'chaos/client.ts',
        logFile: logPath(logs, `client-${index}`),
        onBadLine: badLine(`chaos-client-${index}`),
        onMessage: (message) => {
          if (message.type === 'client_ready') readyClients.add(message.client);
          if (message.type === 'outcome') outcomes.set(message.op, message);
          if (message.type === 'signal') signals.push(message);
          if (message.type === 'client_done') clientConnectionErrors += message.connectionErrors;
        },
        env: {
          CHAOS_CLIENT: JSON.stringify({
            index,
            connectionString: withApplicationName(proxied.toString(), `chaos-client-${index}`),
            seed: options.seed,
            exchanges: options.exchanges,
            clients: options.clients,
            customers,
            cardPayments,
            duration_ms,
            lanes: 3,
          }),
        },
      }),
    );
  }
  await until('the clients to connect', 90_000, async () => readyClients.size === options.clients);
  workloadStart_ms = Date.now() + 300;
  const go = JSON.stringify({ start_ms: workloadStart_ms, deadline_ms: workloadStart_ms + duration_ms + options.drainTimeout * 1_000 });
  for (const client of clients) client.child.stdin!.end(`${go}\n`);
  const schedule = scheduleFaults(options.seed, duration_ms, {
    workerKillsPerMinute: options.workerKillsPerMin,
    clientConnectionKillsPerMinute: options.clientConnKillsPerMin,
    workerConnectionKillsPerMinute: options.workerConnKillsPerMin,
    postgresRestart: restartSkipped === null,
  });
  const scheduled = schedule.length <= 30 ? schedule.map((fault) => `${fault.kind}@${(fault.at_ms / 1000).toFixed(1)}s`).join(', ') : [...new Set(schedule.map((fault) => fault.kind))].map((kind) => `${schedule.filter((fault) => fault.kind === kind).length} ${kind}`).join(', ');
  out(`  fault schedule: ${schedule.length} faults (${scheduled})`);
  const injecting = injectFaults(
    schedule,
    workloadStart_ms,
    {
      connectionString: url,
      clients: options.clients,
      workers: options.workers,
      killWorker: (index, pause_ms) => slots[index - 1]!.kill(pause_ms),
      restartPostgres: (downtime_ms) => database!.restart(downtime_ms),
      workerSettled: (index) => slots[index - 1]!.settled(2_000),
      startupClearance: options.startupClearance,
    },
    (fault) => {
      injected.push(fault);
      if (fault.kind !== 'client_connection_kill' && fault.kind !== 'worker_connection_kill') out(`  ${(fault.at_ms / 1000).toFixed(1)}s ${fault.kind}: ${fault.detail}`);
    },
    (line) => missed.push(line),
  );
  const progress = setInterval(() => out(`  ${seconds(workloadStart_ms).toFixed(0)}s: ${outcomes.size} of ${plan.ops.size} requests answered, ${injected.length} faults injected`), 10_000);
  const exits = await Promise.all(clients.map((client) => client.exited));
  await injecting;
  clearInterval(progress);
  exits.forEach((exit, index) => exit.code !== 0 && missed.push(`chaos-client-${index + 1} exited ${exit.code ?? exit.signal} (see its log)`));
  await proxy.close();
  proxy = undefined;
  const workloadDone = Date.now();
  out(`  workload done in ${seconds(setupDone).toFixed(1)} s: ${outcomes.size} requests answered; draining`);

  // drain: every workflow finished and every step and notification job run, workers still up
  await until('the system to drain', options.drainTimeout * 1_000, async () => {
    const { rows } = await pool!.query<{ unfinished: number; jobs: number }>(
      `select (select count(*)::int from ledgerbox.workflows where status in ('running', 'failed')) as unfinished,
              (select count(*)::int from graphile_worker.jobs where task_identifier in ('ledgerbox:step', 'ledgerbox:exchange_settled') and attempts < max_attempts) as jobs`,
    );
    return rows[0]!.unfinished === 0 && rows[0]!.jobs === 0;
  }).catch((error: unknown) => out(`  ${String((error as Error).message)}: checking as things are`));
  await Promise.all(slots.map((slot) => slot.stop(30_000)));
  const drainDone = Date.now();
  out(`  drained in ${seconds(workloadDone).toFixed(1)} s; workers stopped`);

  const planted = options.plant === undefined ? null : await plantViolation(pool, plan, outcomes, options.plant);
  if (planted !== null) out(`  planted: ${planted}`);
  const invariants = await verify(pool, plan, outcomes, signals);
  const ok = invariants.every((invariant) => invariant.holds);
  const summary: Summary = {
    seed: options.seed,
    ok,
    replay,
    startedAt: new Date(started).toISOString(),
    duration_s: seconds(started),
    phases_s: { setup: (setupDone - started) / 1000, workload: (workloadDone - setupDone) / 1000, drain: (drainDone - workloadDone) / 1000, verify: seconds(drainDone) },
    database: { kind: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded', description: database.description, kept: !ok || options.keep === true ? database.location : null },
    size: { ...size, customers, clients: options.clients, workers: options.workers },
    requests: {
      committed: [...outcomes.values()].filter((outcome) => outcome.outcome === 'committed').length,
      refused: [...outcomes.values()].filter((outcome) => outcome.outcome === 'refused').length,
      skipped: [...outcomes.values()].filter((outcome) => outcome.outcome === 'skipped').length,
      unknown: plan.ops.size - [...outcomes.values()].filter((outcome) => outcome.outcome !== 'unknown').length,
      replayed: [...outcomes.values()].filter((outcome) => outcome.outcome === 'committed' && outcome.ledgerReplayed === true).length,
    },
    faults: {
      injected: countFaults(injected),
      skipped: restartSkipped === null ? {} : { postgres_restart: restartSkipped },
      missed,
      timeline: injected.filter((fault) => !fault.kind.startsWith('provider_')).sort((a, b) => a.at_ms - b.at_ms),
      unexpectedWorkerExits: slots.reduce((sum, slot) => sum + slot.unexpectedExits.length, 0),
      clientConnectionErrors,
    },
    planted,
    invariants,
    logs,
  };
  out(renderSummary(summary));
  if (options.json !== undefined) await writeJson(options.json, summary);
  await pool.end();
  pool = undefined;
  await database.close(!ok || options.keep === true);
  database = undefined;
  if (ok && !options.keep) await fs.rm(logs, { recursive: true, force: true });
  return ok;
}

function sizeOf(plan: Plan) {
  const ops = [...plan.ops.values()];
  const count = (kind: string) => ops.filter((op) => op.kind === kind).length;
  return {
    requests: ops.filter((op) => op.kind !== 'expire_holds').length,
    exchanges: count('exchange'),
    transfers: count('transfer'),
    batches: count('batch'),
    holds: count('hold'),
    holdResolutions: count('post_hold') + count('void_hold'),
    reversals: count('reverse'),
    cardPayments: count('card_payment'),
  };
}

async function until(what: string, timeout_ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    if (interrupted) throw new Error('interrupted');
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeout_ms / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
