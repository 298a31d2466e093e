import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../errors.js';
import { importStatement } from '../reconcile/statements.js';
import { exitCodes, runCommand, withPool } from './command.js';

/** `ledgerbox import-statement FILE`: a bank's or processor's balances (and lines), for reconciliation to compare. */
export function registerStatementCommands(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('import-statement')
    .description(
      'import a statement CSV from a bank or processor: balances (account,currency,as_of,balance), or balances and ' +
        'transaction lines (type,account,currency,as_of,balance,amount,reference,description; type is balance or line); ' +
        'every bad line is named and nothing is imported',
    )
    .argument('<file>', 'the CSV file')
    .option('--source <name>', "who issued the statement, named in reconciliation's findings (default: the file's name)")
    .action(async (file: string, options: { source?: string }) => {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        process.stderr.write(`ledgerbox import-statement failed: cannot read ${file}: ${(error as Error).message}\n`);
        return setExitCode(exitCodes.failed);
      }
      setExitCode(
        await runCommand('import-statement', async () => {
          // checked before connecting: a file that is not text is bad input (exit 2)
          const csv = utf8Text(bytes, file);
          const fileName = basename(file);
          await withPool(async (pool) => {
            const imported = await importStatement(pool, { csv, source: options.source ?? fileName, fileName });
            const balances = `${imported.balances} balance${imported.balances === 1 ? '' : 's'}`;
            const lines = imported.lines === 0 ? '' : ` and ${imported.lines} line${imported.lines === 1 ? '' : 's'}`;
            process.stdout.write(`imported ${balances}${lines} from ${file} (statement ${imported.statementId})\n`);
          });
        }),
      );
    });
}

/** Bytes that are not UTF-8 are refused rather than guessed at (a wrong guess changes account keys). */
function utf8Text(bytes: Buffer, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidInputError(`Invalid \`csv\`: ${file} is not UTF-8 text; export the statement as UTF-8 CSV`, ['csv'], file);
  }
}
