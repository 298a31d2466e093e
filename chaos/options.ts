// `npm run chaos -- --help`: the options of a chaos run (commander, like src/cli/).
import { randomInt } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';

export const plantable = ['drift', 'double-post', 'double-capture'] as const;

export interface ChaosOptions {
  seed: number;
  exchanges: number;
  duration: number;
  clients: number;
  workers: number;
  customers?: number;
  cardPayments?: number;
  providerFailRate: number;
  providerTimeoutRate: number;
  providerSlowRate: number;
  workerKillsPerMin: number;
  clientConnKillsPerMin: number;
  workerConnKillsPerMin: number;
  commitLossRate: number;
  pgRestart: boolean;
  startupClearance: boolean;
  drainTimeout: number;
  json?: string;
  plant?: (typeof plantable)[number];
  keep?: boolean;
}

const whole = (min: number, max = Number.MAX_SAFE_INTEGER) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
  return parsed;
};
const share = (value: string) => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 0.5) throw new InvalidArgumentError('expected a share from 0 to 0.5');
  return parsed;
};
const perMinute = (value: string) => {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 600) throw new InvalidArgumentError('expected a rate per minute from 0 to 600');
  return parsed;
};

export function parseOptions(argv: readonly string[]): ChaosOptions {
  const program = new Command('npm run chaos --')
    .description(
      "Drives exchanges, transfers, holds, reversals and card payments (and their processor's webhooks) through the public API from several client processes, with several worker processes, " +
        'while injecting faults from a seeded random source; then drains and checks that no money was created, destroyed, duplicated or stranded. ' +
        'Exit 0 only if every invariant holds. Without DATABASE_URL it runs its own embedded PostgreSQL (and restarts it once); with DATABASE_URL it ' +
        'uses a fresh database on that server and skips the restart.',
    )
    .option('--seed <n>', 'seed of the workload and of the fault schedule: replays a run (default: a random one, printed)', whole(0, 2 ** 31 - 1))
    .option('--exchanges <n>', 'currency exchanges, plus half as many transfers (30% later reversed), 0.3 as many holds and 0.05 as many batches', whole(1, 100_000), 300)
    .option('--duration <seconds>', 'how long the workload and its faults are spread over', whole(1, 24 * 3600), 20)
    .option('--clients <n>', 'client processes placing requests', whole(1, 32), 3)
    .option('--workers <n>', 'worker processes running the steps', whole(2, 16), 2)
    .option('--customers <n>', 'customers, each with USD, EUR and GBP accounts (default: a tenth of --exchanges, at least 10)', whole(4, 100_000))
    .option(
      '--card-payments <n>',
      "card payments (the card capture workflow), whose processor's webhook comes on time, twice, late or never, or whose card is declined (default: a tenth of --exchanges, at least 5, so each fate at least once)",
      whole(0, 100_000),
    )
    .option('--provider-fail-rate <f>', 'share of provider calls refused before any work', share, 0.1)
    .option('--provider-timeout-rate <f>', 'share of provider calls whose work is done but whose answer is lost', share, 0.1)
    .option('--provider-slow-rate <f>', 'share of provider calls answered late (up to twice the step timeout)', share, 0.1)
    .option('--worker-kills-per-min <n>', 'worker processes killed with SIGKILL (and restarted) per minute', perMinute, 12)
    .option('--client-conn-kills-per-min <n>', "client connections terminated (pg_terminate_backend) per minute", perMinute, 30)
    .option('--worker-conn-kills-per-min <n>', 'worker connections terminated (pg_terminate_backend) per minute', perMinute, 30)
    .option('--commit-loss-rate <f>', "share of the clients' COMMITs whose answer is lost on the way back (the transaction commits)", share, 0.03)
    .option('--no-pg-restart', 'do not restart the embedded PostgreSQL during the run')
    .option('--no-startup-clearance', 'kill workers and restart PostgreSQL even while a worker is starting (by default they wait until it has had time to heartbeat; see docs/testing.md)')
    .option('--drain-timeout <seconds>', 'how long the system may take to settle after the workload', whole(1, 24 * 3600), 120)
    .option('--json <file>', 'write a JSON summary of the run to this file')
    .addOption(new Option('--plant <violation>', 'plant a violation after the drain, to prove the verifier catches it (exit 1)').choices(plantable))
    .option('--keep', 'keep the database (and the embedded data directory) after a passing run; a failing run always keeps it')
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
  program.parse([...argv], { from: 'user' });
  const options = program.opts<ChaosOptions>();
  return { ...options, seed: options.seed ?? randomInt(2 ** 31 - 1) };
}

/** The command that replays this run. */
export function replayCommand(options: ChaosOptions): string {
  const flags = [
    `--seed ${options.seed}`,
    `--exchanges ${options.exchanges}`,
    `--duration ${options.duration}`,
    `--clients ${options.clients}`,
    `--workers ${options.workers}`,
    ...(options.customers !== undefined ? [`--customers ${options.customers}`] : []),
    ...(options.cardPayments !== undefined ? [`--card-payments ${options.cardPayments}`] : []),
    `--provider-fail-rate ${options.providerFailRate}`,
    `--provider-timeout-rate ${options.providerTimeoutRate}`,
    `--provider-slow-rate ${options.providerSlowRate}`,
    `--worker-kills-per-min ${options.workerKillsPerMin}`,
    `--client-conn-kills-per-min ${options.clientConnKillsPerMin}`,
    `--worker-conn-kills-per-min ${options.workerConnKillsPerMin}`,
    `--commit-loss-rate ${options.commitLossRate}`,
    ...(options.pgRestart ? [] : ['--no-pg-restart']),
    ...(options.startupClearance ? [] : ['--no-startup-clearance']),
    ...(options.plant ? [`--plant ${options.plant}`] : []),
  ];
  return `npm run chaos -- ${flags.join(' ')}`;
}
