import type { Command } from 'commander';
import { defaultLogger } from '../logger.js';
import { inTransaction } from '../db/handle.js';
import { renderReport, reportDeliveryFromEnv } from '../reconcile/report/index.js';
import { storeReport } from '../reconcile/reconcile-writes.js';
import { reconcile } from '../reconcile/run.js';
import { sendStoredReport } from '../reconcile/tasks.js';
import { exitCodes, runCommand, withPool } from './command.js';
import { currencyExponents, money, renderJson, renderTable, type Exponents } from './render.js';

/** Exit codes of `ledgerbox reconcile`, for scripts and monitors: 0 clean, 1 warnings only, 2 critical. */
const statusExitCodes = { clean: 0, warnings: 1, critical: 2 } as const;

/** `ledgerbox reconcile [--as-of T] [--full] [--json]`. */
export function registerReconcileCommand(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('reconcile')
    .description('reconcile now: expected vs actual balances, invariants, workflows, holds, statements; exit 0 clean, 1 warnings, 2 critical')
    .option('--as-of <timestamp>', 'judge expiry, stuck workflows and statements as of this ISO 8601 time (default now)')
    .option('--full', 're-verify every entry from the first, not only those since the last run')
    .option('--json', 'machine-readable JSON of the run (amounts in minor units, as strings)')
    .option('--no-report', 'do not write or send the report email')
    .action(async (options: { asOf?: string; full?: boolean; json?: boolean; report: boolean }) => {
      let status: keyof typeof statusExitCodes = 'clean';
      const failure = await runCommand('reconcile', () =>
        withPool(async (pool) => {
          const logger = defaultLogger();
          const report = await reconcile(pool, { ...(options.asOf ? { asOf: options.asOf } : {}), full: options.full ?? false, logger });
          status = report.status;
          let delivered = '';
          if (options.report) {
            const rendered = renderReport(report);
            await inTransaction(pool, (db) => storeReport(db, report.runId, rendered));
            const outcome = await sendStoredReport(pool, report.runId, reportDeliveryFromEnv(), logger);
            delivered = 'path' in outcome ? `report written to ${outcome.path}` : `report sent to ${outcome.sentTo.join(', ')}`;
          }
          if (options.json) return void process.stdout.write(renderJson(report));
          const exponents = await currencyExponents(pool);
          process.stdout.write(`reconciliation ${report.runId}: ${report.status}: ${headline(report, exponents)}\n`);
          process.stdout.write(`${report.full ? 'full verification' : 'incremental'}: ${report.entriesChecked} entries checked\n`);
          if (report.findings.length > 0) {
            process.stdout.write(
              renderTable(
                ['severity', 'kind', 'account', 'expected', 'actual', 'difference', 'detail'],
                report.findings.map((finding) => [
                  finding.severity,
                  finding.kind,
                  finding.account ?? '',
                  money(finding.expected, finding.currency, exponents),
                  money(finding.actual, finding.currency, exponents),
                  money(finding.difference, finding.currency, exponents),
                  finding.detail,
                ]),
              ),
            );
          }
          if (delivered) process.stdout.write(`${delivered}\n`);
        }),
      );
      setExitCode(failure !== exitCodes.ok ? failure : statusExitCodes[status]);
    });
}

function headline(report: { findings: { severity: string }[]; moneyAtRisk: { currency: string; amount: bigint }[] }, exponents: Exponents): string {
  if (report.findings.length === 0) return 'every balance equals its entries; nothing needs a human';
  const critical = report.findings.filter((finding) => finding.severity === 'critical').length;
  const risk = report.moneyAtRisk.map((entry) => money(entry.amount, entry.currency, exponents)).join(', ');
  return `${critical} critical, ${report.findings.length - critical} warnings${risk ? `; at risk ${risk}` : ''}`;
}
