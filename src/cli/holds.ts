import type { Command } from 'commander';
import { moneyInLimbo } from '../operations/inspection.js';
import { parseInteger, runCommand, withPool } from './command.js';
import { currencyExponents, duration, money, renderJson, renderTable } from './render.js';

/** `ledgerbox holds limbo`. */
export function registerHoldsCommands(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('holds')
    .description('two-phase holds: money reserved but not yet moved')
    .command('limbo')
    .description('money in limbo: holds still pending past their expiry or older than the SLA, and the total per currency')
    .option('--sla-hours <n>', 'a hold pending longer than this is in limbo', parseInteger, 24)
    .option('--json', 'machine-readable JSON: { holds, totals } (amounts in minor units, as strings)')
    .action(async (options: { slaHours: number; json?: boolean }) => {
      setExitCode(
        await runCommand('holds limbo', () =>
          withPool(async (pool) => {
            const holds = await moneyInLimbo(pool, { sla_ms: options.slaHours * 3_600_000 });
            const totals = totalsPerCurrency(holds);
            if (options.json) return void process.stdout.write(renderJson({ holds, totals }));
            if (holds.length === 0) return void process.stdout.write(`no money in limbo (SLA ${options.slaHours} hours)\n`);
            const exponents = await currencyExponents(pool);
            const now = Date.now();
            process.stdout.write(
              renderTable(
                ['hold', 'key', 'from', 'to', 'money', 'age', 'expires at', 'why', 'workflow'],
                holds.map((hold) => [
                  hold.hold_id,
                  hold.key,
                  hold.from_account,
                  hold.to_account,
                  money(hold.amount, hold.currency, exponents),
                  duration(now - hold.created_at.getTime()),
                  hold.expires_at,
                  hold.why,
                  hold.workflow_id === null ? '' : `${hold.workflow_id}\n${hold.workflow_status ?? ''}`,
                ]),
              ),
            );
            process.stdout.write(renderTable(['currency', 'holds', 'total'], totals.map((total) => [total.currency, total.holds, money(total.amount, total.currency, exponents)])));
          }),
        ),
      );
    });
}

/** Sums in bigint minor units, per currency, in currency order. */
function totalsPerCurrency(holds: readonly { amount: bigint; currency: string }[]): { currency: string; holds: number; amount: bigint }[] {
  const totals = new Map<string, { currency: string; holds: number; amount: bigint }>();
  for (const hold of holds) {
    const total = totals.get(hold.currency) ?? { currency: hold.currency, holds: 0, amount: 0n };
    total.holds += 1;
    total.amount += hold.amount;
    totals.set(hold.currency, total);
  }
  return [...totals.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}
