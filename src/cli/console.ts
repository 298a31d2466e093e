import type { Command } from 'commander';
import { pino } from 'pino';
import { resolveDatabase } from '../db/connection.js';
import { InvalidInputError } from '../errors.js';
import { startConsole } from '../console/server.js';
import { createDatabaseMetrics } from '../metrics/index.js';
import { parseInteger, runCommand, verbose } from './command.js';

interface ConsoleCommandOptions {
  port: number;
  host: string;
  token?: string;
  enableActions?: boolean;
  slaHours: number;
}

/**
 * `ledgerbox console`: the operator's web console on its own port, until Ctrl-C or SIGTERM.
 * The token comes from --token or LEDGERBOX_CONSOLE_TOKEN (better: it stays out of `ps`).
 */
export function registerConsoleCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('console')
    .description('serve the web console (read-only unless --enable-actions); every request needs the token')
    .option('--port <n>', 'port to listen on (0: any free port)', parseInteger, 4680)
    .option('--host <address>', 'address to bind (default 127.0.0.1: this machine only)', '127.0.0.1')
    .option('--token <token>', 'the token every request must show (default: $LEDGERBOX_CONSOLE_TOKEN)')
    .option('--enable-actions', 'show and accept retry / resume / cancel / close-investigation, each with a reason')
    .option('--sla-hours <n>', 'a hold pending longer than this is money in limbo', parseInteger, 24)
    .action(async (options: ConsoleCommandOptions) => {
      setExitCode(await runCommand('console', () => runConsole(options)));
    });
}

async function runConsole(options: ConsoleCommandOptions): Promise<void> {
  const token = options.token ?? process.env.LEDGERBOX_CONSOLE_TOKEN;
  if (token === undefined || token === '') {
    throw new InvalidInputError('The console needs a token: pass --token <token> or set LEDGERBOX_CONSOLE_TOKEN', ['token'], token);
  }
  const database = await resolveDatabase(verbose() ? { log: (line) => process.stderr.write(`${line}\n`) } : {});
  try {
    const logger = pino({ name: 'ledgerbox', level: process.env.LEDGERBOX_LOG_LEVEL ?? 'info' }, pino.destination(2));
    const running = await startConsole({
      connectionString: database.connectionString,
      token,
      host: options.host,
      port: options.port,
      actions: options.enableActions === true,
      limboSla_ms: options.slaHours * 3_600_000,
      // /metrics: the database's gauges, behind the same token
      metrics: (pool) => createDatabaseMetrics(pool),
      logger,
    });
    process.stdout.write(`ledgerbox console: ${running.url}/ (${options.enableActions === true ? 'actions enabled' : 'read-only'}) on ${database.description}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await running.close();
  } finally {
    await database.close();
  }
}
