import { Command, CommanderError } from 'commander';
import { pino } from 'pino';
import { resolveDatabase } from '../db/connection.js';
import { migrate } from '../db/migrate.js';
import { startWorker } from '../worker/runner.js';
import { FakeComplianceProvider, FakeFxRateProvider } from '../testing/index.js';
import { demoRates } from '../workflows/exchange/demo-rates.js';
import { exitCodes, parseFraction, parseInteger, runCommand, verbose } from './command.js';
import { registerHoldsCommands } from './holds.js';
import { registerReconcileCommand } from './reconcile.js';
import { registerDbCommand } from './db.js';
import { registerJobsCommands } from './jobs.js';
import { registerStatementCommands } from './statements.js';
import { registerWorkflowCommands } from './workflows.js';
import { registerConsoleCommand } from './console.js';
import { registerSqlCommand } from './sql.js';
import { exchangeSettled } from '../workflows/exchange/exchange.js';

/** Runs the `ledgerbox` command line; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('ledgerbox')
    .description('Postgres-native double-entry ledger, transactional outbox and job runner')
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  program
    .command('migrate')
    .description("apply graphile-worker's and ledgerbox's migrations (safe to run concurrently and repeatedly)")
    .action(async () => {
      exitCode = await runCommand('migrate', async () => {
        const database = await resolveDatabase(verbose() ? { log: (line) => process.stderr.write(`${line}\n`) } : {});
        try {
          const logger = pino({ name: 'ledgerbox', level: process.env.LEDGERBOX_LOG_LEVEL ?? 'warn' }, pino.destination(2));
          const result = await migrate({ connectionString: database.connectionString, logger });
          process.stdout.write(
            result.applied.length === 0
              ? `ledgerbox: ${database.description}: already up to date\n`
              : `ledgerbox: ${database.description}: applied ${result.applied.join(', ')}\n`,
          );
        } finally {
          await database.close();
        }
      });
    });

  program
    .command('worker')
    .description('run the job runner: workflow steps, scheduled tasks (graceful stop on SIGTERM/SIGINT)')
    .option('--concurrency <n>', 'jobs run at once', parseInteger, 4)
    .option('--poll-interval-ms <ms>', 'how often to look for scheduled jobs', parseInteger, 1_000)
    .option('--retry-base-ms <ms>', 'backoff before a failed step is tried again (doubles, with jitter)', parseInteger, 1_000)
    .option('--provider-timeout-ms <ms>', 'after this an external call counts as an unknown outcome', parseInteger, 5_000)
    .option('--stale-worker-ms <ms>', 'a worker silent this long is dead: its jobs are unlocked', parseInteger, 30_000)
    .option('--heartbeat-ms <ms>', 'how often this worker says it is alive', parseInteger, 5_000)
    .option('--fake-providers', 'run exchanges against the in-memory FX and compliance fakes (demo, tests)')
    .option('--fault-rate <f>', 'with --fake-providers: share of provider calls that fail, time out or are slow (a third each)', parseFraction, 0)
    .option('--slow-rate <f>', 'with --fake-providers: share of provider calls that are slow (on top of --fault-rate)', parseFraction, 0)
    .option('--slow-ms <ms>', 'with --fake-providers: how long a slow call takes', parseInteger, 300)
    .option('--seed <n>', 'with --fake-providers: seed of the fault dice', parseInteger, 1)
    .action(async (options: WorkerCommandOptions) => {
      exitCode = await runCommand('worker', () => runWorkerCommand(options));
    });

  // the on-call engineer's commands (migrations/0003_operations.sql, src/operations)
  const setExitCode = (code: number) => void (exitCode = code);
  registerJobsCommands(program, setExitCode);
  registerWorkflowCommands(program, setExitCode);
  registerHoldsCommands(program, setExitCode);
  registerStatementCommands(program, setExitCode);
  registerReconcileCommand(program, setExitCode);
  registerDbCommand(program, setExitCode);
  registerConsoleCommand(program, setExitCode);
  registerSqlCommand(program, setExitCode);

  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? exitCodes.ok : exitCodes.usage;
    throw error;
  }
  return exitCode;
}

interface WorkerCommandOptions {
  concurrency: number;
  pollIntervalMs: number;
  retryBaseMs: number;
  providerTimeoutMs: number;
  staleWorkerMs: number;
  heartbeatMs: number;
  fakeProviders?: boolean;
  faultRate: number;
  slowRate: number;
  slowMs: number;
  seed: number;
}

async function runWorkerCommand(options: WorkerCommandOptions): Promise<void> {
  const database = await resolveDatabase(verbose() ? { log: (line) => process.stderr.write(`${line}\n`) } : {});
  try {
    const logger = pino({ name: 'ledgerbox', level: process.env.LEDGERBOX_LOG_LEVEL ?? 'info' }, pino.destination(2));
    const faults = {
      failRate: options.faultRate / 3,
      timeoutRate: options.faultRate / 3,
      slowRate: Math.min(1 - (2 * options.faultRate) / 3, options.faultRate / 3 + options.slowRate),
      slow_ms: options.slowMs,
      seed: options.seed,
    };
    const worker = await startWorker({
      connectionString: database.connectionString,
      concurrency: options.concurrency,
      pollInterval_ms: options.pollIntervalMs,
      retry: { base_ms: options.retryBaseMs },
      providerTimeout_ms: options.providerTimeoutMs,
      staleWorkerAfter_ms: options.staleWorkerMs,
      heartbeat_ms: options.heartbeatMs,
      // our own handlers, so the stop ends with the worker's rows removed and exit code 0
      noHandleSignals: true,
      logger,
      ...(options.fakeProviders
        ? {
            providers: {
              fx: new FakeFxRateProvider({ rates: demoRates, faults }),
              compliance: new FakeComplianceProvider({ faults: { ...faults, seed: options.seed + 1 } }),
            },
          }
        : {}),
      // standalone, nobody else listens for settled exchanges: log them rather than let the jobs pile up
      tasks: [
        {
          task: exchangeSettled,
          handler: async ({ exchangeId }, { logger: jobLogger }) => jobLogger.info({ exchangeId }, 'exchange settled'),
        },
      ],
    });
    process.stdout.write(`ledgerbox worker: ${database.description}: running ${options.concurrency} jobs at a time (SIGTERM or Ctrl-C stops)\n`);
    let signals = 0;
    const stop = (signal: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) process.exit(130); // asked twice: stop waiting for running jobs
      logger.info({ signal }, 'stopping: running jobs finish, then the worker exits');
      void worker.stop();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    await worker.promise;
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  } finally {
    await database.close();
  }
}
