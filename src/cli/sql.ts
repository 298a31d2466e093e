import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../errors.js';
import { runCommand } from './command.js';

/** The operator's psql files, shipped in the package (`node_modules/ledgerbox/sql/` in a host service). */
const sqlDirectory = fileURLToPath(new URL('../../sql/', import.meta.url));

/**
 * `ledgerbox sql [name]`: the ready-to-run operator queries from wherever ledgerbox is
 * installed, so psql can run them from a host service's folder too:
 *   npx ledgerbox sql failed_jobs | psql "$DATABASE_URL" -v task=shop.send_receipt
 *   psql "$DATABASE_URL" -f "$(npx ledgerbox sql failed_jobs --path)"
 * Without a name, it lists them with the question each answers.
 */
export function registerSqlCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('sql [name]')
    .description('print one of the operator queries for psql (`npx ledgerbox sql failed_jobs | psql "$DATABASE_URL"`), or list them')
    .option('--path', "print the file's path instead (for psql -f)")
    .action(async (name: string | undefined, options: { path?: boolean }) => {
      setExitCode(
        await runCommand('sql', async () => {
          const names = sqlFileNames();
          if (name === undefined) {
            for (const known of names) process.stdout.write(`${known.padEnd(20)} ${firstLine(known)}\n`);
            return;
          }
          const wanted = name.replace(/\.sql$/, '');
          if (!names.includes(wanted)) {
            throw new InvalidInputError(`No operator query ${JSON.stringify(name)}: expected one of ${names.join(', ')}`, ['name'], name);
          }
          const file = path.join(sqlDirectory, `${wanted}.sql`);
          process.stdout.write(options.path === true ? `${file}\n` : readFileSync(file, 'utf8'));
        }),
      );
    });
}

function sqlFileNames(): string[] {
  return readdirSync(sqlDirectory)
    .filter((file) => file.endsWith('.sql'))
    .map((file) => file.slice(0, -'.sql'.length))
    .sort();
}

/** The question a file answers: its first comment line. */
function firstLine(name: string): string {
  const first = readFileSync(path.join(sqlDirectory, `${name}.sql`), 'utf8').split('\n')[0] ?? '';
  return first.replace(/^--\s*/, '');
}
