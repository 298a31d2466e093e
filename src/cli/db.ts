import type { Command } from 'commander';
import { resolveDatabase } from '../db/connection.js';
import { runCommand, verbose } from './command.js';

/**
 * `ledgerbox db`: keeps the database up in the foreground and prints how to reach it, so psql
 * can look around after the demo (the embedded server otherwise stops with each command).
 */
export function registerDbCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('db')
    .description('run the embedded PostgreSQL in the foreground (or name DATABASE_URL\'s) and print its psql connection string; Ctrl-C stops it')
    .action(async () => {
      setExitCode(
        await runCommand('db', async () => {
          const database = await resolveDatabase(verbose() ? { log: (line) => process.stderr.write(`${line}\n`) } : {});
          process.stdout.write(`ledgerbox db: ${database.description}\n  psql "${database.connectionString}"\n`);
          if (process.env.DATABASE_URL) return database.close();
          process.stdout.write('running until Ctrl-C\n');
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          await database.close();
        }),
      );
    });
}
