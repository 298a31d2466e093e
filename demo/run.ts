// `npm run demo`: a day at a small fintech on ledgerbox, end to end, on the embedded PostgreSQL
// (or DATABASE_URL): accounts, currency exchanges and transfers placed in host transactions,
// faulty providers, the worker in-process, a nightly fan-out, then the reconciliation and its
// report. Exit 0 when nothing is critical, 2 when something is (--with-drift), 130 on Ctrl-C.
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { pino } from 'pino';
import { exchangeSettled, migrate, reconcile, startWorker, summariseBatches, type ReconciliationReport, type RunningWorker } from '../src/index.ts';
import { resolveDatabase, type ResolvedDatabase } from '../src/db/connection.ts';
import { resetEmbeddedPostgres } from '../src/db/embedded.ts';
import { inTransaction } from '../src/db/handle.ts';
import { storeReport } from '../src/reconcile/reconcile-writes.ts';
import { renderReport, reportDeliveryFromEnv } from '../src/reconcile/report/index.ts';
import { sendStoredReport } from '../src/reconcile/tasks.ts';
import { readCounts, startProgress, type Counts } from './progress.ts';
import { accountKey, demoProviders, fanOutStatements, nightlyStatementTask, openAccounts, placeDay, planDay, type DayTally } from './simulate.ts';
import { exchangedPerCurrency, failedExample, renderSummary } from './summary.ts';

interface Options {
  customers: number;
  exchanges: number;
  faultRate: number;
  seed: number;
  withDrift?: boolean;
  reset?: boolean;
}

const integer = (min: number) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`expected a whole number of at least ${min}`);
  return parsed;
};
const rate = (value: string) => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed >= 1) throw new InvalidArgumentError('expected a rate from 0 up to (not including) 1');
  return parsed;
};

// Default size: 15–25 s on a shared 2-core machine (docs/performance.md); larger days are an option away.
const program = new Command('npm run demo --')
  .description('A day at a small fintech on ledgerbox: exchanges with faulty providers, transfers, a nightly fan-out, then reconciliation.')
  .option('--customers <n>', 'customers, each with USD, EUR and GBP accounts', integer(2), 300)
  .option('--exchanges <n>', 'currency exchanges over the day (plus a quarter as many plain transfers)', integer(1), 2000)
  .option('--fault-rate <f>', 'share of provider calls that fail, time out or are slow', rate, 0.15)
  .option('--seed <n>', 'seed of the day and of the fault dice (replay a run)', integer(0), 1)
  .option('--with-drift', 'plant a balance drift before reconciling: a red report, a critical alert, exit 2')
  .option('--reset', 'delete the embedded PostgreSQL data (stop anything using it first), then exit')
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
program.parse();
const options = program.opts<Options>();

const out = (line = '') => process.stdout.write(`${line}\n`);
const logger = pino({ level: process.env.LEDGERBOX_LOG_LEVEL ?? 'silent' }, pino.destination(2));

if (options.reset) process.exit(await reset());

let database: ResolvedDatabase | undefined;
let pool: pg.Pool | undefined;
let worker: RunningWorker | undefined;
let progress: ReturnType<typeof startProgress> | undefined;
let interrupted = false;

let closing: Promise<void> | undefined;
const close = () =>
  (closing ??= (async () => {
    progress?.stop();
    await worker?.stop().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await database?.close().catch(() => undefined);
  })());

process.on('SIGINT', () => {
  if (interrupted) process.exit(130); // a second Ctrl-C: now
  interrupted = true;
  process.stderr.write('\ninterrupted: stopping the worker and the database (Ctrl-C again to quit at once)\n');
  void close().finally(() => process.exit(130));
});
process.on('SIGTERM', () => void close().finally(() => process.exit(143)));

try {
  process.exitCode = await main();
} catch (error) {
  if (!interrupted) {
    process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
} finally {
  if (!interrupted) await close();
}

async function reset(): Promise<number> {
  if (process.env.DATABASE_URL) {
    process.stderr.write('--reset deletes the embedded PostgreSQL data; DATABASE_URL is set, so there is none to delete (drop that database yourself).\n');
    return 2;
  }
  try {
    await resetEmbeddedPostgres();
    out('embedded PostgreSQL data deleted: the next `npm run demo` starts from an empty database');
    return 0;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function main(): Promise<number> {
  const started = Date.now();
  const plan = planDay(options);
  out(`ledgerbox demo: ${options.customers} customers, ${options.exchanges} exchanges, ${plan.transfers} transfers, fault rate ${options.faultRate}, seed ${options.seed}`);
  database = await resolveDatabase(process.env.LEDGERBOX_LOG_LEVEL === 'debug' ? { log: (line) => process.stderr.write(`# ${line}\n`) } : {});
  const url = database.connectionString;
  out(`database: ${database.description}`);
  out(`  connect: psql "${url}"`);
  if (!process.env.DATABASE_URL) out('  (the data stays after the demo; `npm run demo -- --reset` deletes it)');

  const { applied } = await migrate({ connectionString: url, logger });
  out(`migrated${applied.length ? `: ${applied.length} migrations applied` : ': up to date'}`);

  pool = new pg.Pool({ connectionString: url, max: 10 });
  pool.on('error', () => undefined); // a connection lost while stopping is not news
  const activePool = pool;
  let statementsDone = 0;
  let notified = 0;
  const providers = demoProviders(plan, options.faultRate);
  worker = await startWorker({
    connectionString: url,
    providers,
    concurrency: 16,
    // the day queues thousands of steps at once: fetch them 17 at a time, not one per runner
    localQueueSize: 17,
    pollInterval_ms: 50,
    retry: { base_ms: 20, max_ms: 200 },
    providerTimeout_ms: 300,
    compensationDelay_ms: 0,
    reconciliation: false, // the demo runs it itself, below
    noHandleSignals: true,
    logger,
    tasks: [
      // a real service would email the customer; the demo counts
      { task: exchangeSettled, handler: async () => void notified++ },
      nightlyStatementTask(activePool, () => statementsDone++),
    ],
  });
  out(`worker started in this process (concurrency 16, local queue 17); declined: ${plan.declined.join(', ')}; compliance errors on: ${plan.erroring.join(', ')}`);

  const tally: DayTally = { exchangesPlaced: 0, transfersPosted: 0, transferred: new Map(), refused: 0 };
  let counts: Counts = { completed: 0, compensated: 0, failed: 0, running: 0, retrying: 0 };
  let phase = 'opening';
  progress = startProgress();
  const view = () => ({
    phase,
    exchanges: plan.exchanges,
    placed: tally.exchangesPlaced,
    transfers: tally.transfersPosted,
    statements: { done: statementsDone, total: plan.customers.length },
    counts,
  });
  // one reader of the counts for the bar and the settling loop alike: the count is a scan of the
  // run's workflows, and reading it more often takes CPU from the day it is counting
  let polling = true;
  let countsRead = 0;
  const poller = (async () => {
    while (polling && !interrupted) {
      counts = await readCounts(activePool, plan.run).catch(() => counts);
      countsRead += 1;
      progress?.update(view());
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  })();

  try {
    const stop = () => interrupted;
    await openAccounts(activePool, plan, 6, stop);
    phase = 'the day';
    await placeDay(activePool, plan, 6, tally, stop);
    phase = 'nightly';
    await fanOutStatements(activePool, plan);
    phase = 'settling';
    // wait for every workflow to finish and every statement job to run; give up if nothing moves for 30 s
    let lastChange = Date.now();
    let lastSeen = '';
    for (;;) {
      if (interrupted) return 130;
      // counts read after placing ended, so none of the day's workflows is missing from them
      const readBefore = countsRead;
      while (countsRead === readBefore && !interrupted) await new Promise((resolve) => setTimeout(resolve, 50));
      const seen = JSON.stringify([counts, statementsDone]);
      if (seen !== lastSeen) [lastSeen, lastChange] = [seen, Date.now()];
      const finished = counts.completed + counts.compensated;
      if (finished >= tally.exchangesPlaced && statementsDone >= plan.customers.length) break;
      if (Date.now() - lastChange > 30_000) {
        progress.stop();
        out(`nothing moved for 30 s: ${counts.running} running, ${counts.failed} failed; reconciling as things are`);
        break;
      }
    }
  } finally {
    polling = false;
    await poller;
    progress.update(view());
    progress.stop();
  }

  // --with-drift: the only way a cached balance can drift is a superuser bypassing the triggers
  const drifted = options.withDrift ? accountKey(plan.customers[0]!, 'USD') : undefined;
  if (drifted !== undefined) {
    await withoutTriggers(activePool, `update ledgerbox.accounts set posted_balance = posted_balance - 12345 where key = $1`, [drifted]);
    out(`planted a drift: as a superuser with session_replication_role = replica, took 123.45 USD off the cached balance of ${drifted}`);
  }

  out('reconciling…');
  let report: ReconciliationReport;
  let reportDelivery: string;
  try {
    report = await reconcile(activePool, { logger });
    const rendered = renderReport(report);
    await inTransaction(activePool, (db) => storeReport(db, report.runId, rendered));
    const outcome = await sendStoredReport(activePool, report.runId, reportDeliveryFromEnv(), logger);
    reportDelivery =
      'path' in outcome ? `report email written to ${path.resolve(outcome.path)} (open it with any mail client)` : `report email sent to ${outcome.sentTo.join(', ')}`;
  } finally {
    if (drifted !== undefined) {
      // put the cache back, so the next run (and the database you look around in) is not red forever;
      // the run, its findings and the critical alert stay recorded
      await withoutTriggers(activePool, `update ledgerbox.accounts set posted_balance = posted_balance + 12345 where key = $1`, [drifted]);
    }
  }
  if (drifted !== undefined) {
    const { rows } = await activePool.query<{ id: string; message: string }>(
      `select id::text, message from ledgerbox.alerts where severity = 'critical' and kind = 'reconciliation_balance_drift' order by id desc limit 1`,
    );
    if (rows[0]) out(`critical alert ${rows[0].id} recorded: ${rows[0].message}`);
    out(`(the drift was put back after the report: the next reconciliation lists it as resolved)`);
  }

  counts = await readCounts(activePool, plan.run);
  out(
    renderSummary({
      plan,
      tally,
      counts,
      exchanged: await exchangedPerCurrency(activePool, plan.run),
      report,
      reportDelivery,
      connectionString: url,
      embedded: !process.env.DATABASE_URL,
      failed: await failedExample(activePool, plan.run),
      seconds: (Date.now() - started) / 1000,
    }),
  );
  out(`${notified} settlement notifications and ${statementsDone} nightly statements ran on the worker.`);
  // the worker summarises finished batches every minute; the demo asks at once (graphile-worker
  // may take a moment to let go of the last job)
  for (let tries = 0; tries < 50; tries++) {
    const [batch] = (await summariseBatches(activePool)).filter((summary) => summary.name === `${plan.run}:nightly-statements`);
    if (batch !== undefined) {
      out(`batch ${batch.name}: ${batch.jobs} jobs, ${batch.completed} completed, ${batch.failed} failed (recorded in ledgerbox.batch_runs, info alert ${batch.alertId})`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return report.status === 'critical' ? 2 : 0;
}

async function withoutTriggers(pool: pg.Pool, statement: string, values: unknown[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await client.query(statement, values);
  } catch (error) {
    throw new Error(`planting the drift needs a superuser connection (${error instanceof Error ? error.message : String(error)})`);
  } finally {
    await client.query('reset session_replication_role').catch(() => undefined);
    client.release();
  }
}
