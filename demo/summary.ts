// The end of the day: what moved, how the workflows ended, what reconciliation said, and the
// exact commands to look at the failures.
import type pg from 'pg';
import type { ReconciliationReport } from '../src/index.ts';
import { formatMinorUnits, reportHeadline } from '../src/reconcile/report/index.ts';
import type { Counts } from './progress.ts';
import { currencies, type DayPlan, type DayTally } from './simulate.ts';

export interface FailedExample {
  id: string;
  status: string;
  reason: string;
}

/** One workflow of this run that failed: one that failed on errors first, else a declined one. */
export async function failedExample(pool: pg.Pool, run: string): Promise<FailedExample | undefined> {
  const { rows } = await pool.query<FailedExample>(
    `select id, status, failure_reason as reason from ledgerbox.workflows
     where key like $1 and status <> 'completed' and failure_reason is not null
     order by (failure_reason ilike '%declin%'), updated_at desc limit 1`,
    [`${run}:%`],
  );
  return rows[0];
}

/** Per currency, minor units: sold (source of completed exchanges) and bought (their target). */
export async function exchangedPerCurrency(pool: pg.Pool, run: string): Promise<Map<string, { sold: bigint; bought: bigint; count: number }>> {
  const { rows } = await pool.query<{ currency: string; sold: string; bought: string; count: number }>(
    `with done as (
       select x.* from ledgerbox.exchanges x join ledgerbox.workflows w on w.id = x.workflow_id
       where w.key like $1 and w.status = 'completed')
     select currency, sum(sold)::text as sold, sum(bought)::text as bought, sum(n)::int as count from (
       select source_currency as currency, source_amount as sold, 0::bigint as bought, 1 as n from done
       union all
       select target_currency, 0, target_amount, 0 from done) t
     group by currency order by currency`,
    [`${run}:%`],
  );
  return new Map(rows.map((row) => [row.currency, { sold: BigInt(row.sold), bought: BigInt(row.bought), count: row.count }]));
}

export function renderSummary(input: {
  plan: DayPlan;
  tally: DayTally;
  counts: Counts;
  exchanged: Map<string, { sold: bigint; bought: bigint; count: number }>;
  report: ReconciliationReport;
  reportDelivery: string;
  connectionString: string;
  /** The embedded server stops with the demo: say how to bring it back to look around. */
  embedded: boolean;
  failed: FailedExample | undefined;
  seconds: number;
}): string {
  const { plan, tally, counts, exchanged, report, failed } = input;
  const url = input.connectionString;
  const lines: string[] = [];
  const pad = (text: string, width: number) => text.padStart(width);
  lines.push('', `== ledgerbox demo: the day of ${plan.customers.length} customers, in ${input.seconds.toFixed(1)} s (run ${plan.run}) ==`, '');
  lines.push('Money moved per currency (completed exchanges and plain transfers):');
  lines.push(`  ${'currency'.padEnd(9)}${pad('sold in exchanges', 22)}${pad('bought in exchanges', 22)}${pad('plain transfers', 22)}`);
  for (const code of currencies) {
    const moved = exchanged.get(code) ?? { sold: 0n, bought: 0n, count: 0 };
    lines.push(
      `  ${code.padEnd(9)}${pad(formatMinorUnits(moved.sold, code), 22)}${pad(formatMinorUnits(moved.bought, code), 22)}${pad(formatMinorUnits(tally.transferred.get(code) ?? 0n, code), 22)}`,
    );
  }
  lines.push(
    `  ${tally.exchangesPlaced} exchanges started, ${tally.transfersPosted} transfers posted${tally.refused ? `, ${tally.refused} requests refused at once` : ''}.`,
    '',
  );
  lines.push(
    `Workflows: ${counts.completed} completed, ${counts.compensated} compensated, ${counts.failed} failed` +
      `${counts.running ? `, ${counts.running} still running` : ''} ` +
      `(${plan.declined.length} customer(s) on the decline list, ${plan.erroring.length} the compliance provider errors on).`,
    '',
  );
  lines.push(`Reconciliation ${report.runId}: ${report.status.toUpperCase()}: ${reportHeadline(report)}`);
  for (const finding of report.findings.filter((finding) => finding.severity === 'critical').slice(0, 5)) {
    lines.push(`  critical ${finding.kind}${finding.account ? ` ${finding.account}` : ''}: ${finding.detail}`);
  }
  lines.push(`  ${input.reportDelivery}`, '');
  // with the embedded server, the CLI starts it by itself; psql needs `ledgerbox db` running
  const cli = input.embedded ? 'npx ledgerbox' : `DATABASE_URL="${url}" npx ledgerbox`;
  lines.push('Look around:');
  if (input.embedded) lines.push('  npx ledgerbox db     # in another terminal: keeps the embedded PostgreSQL up for psql (Ctrl-C stops it)');
  lines.push(`  psql "${url}"`);
  lines.push(`  psql "${url}" -f sql/failed_jobs.sql`);
  lines.push(`  ${cli} jobs failed`);
  if (failed !== undefined) {
    lines.push(`  ${cli} workflow show ${failed.id}    # ${failed.status}: ${failed.reason.split('\n')[0]}`);
    lines.push(`  psql "${url}" -v id=${failed.id} -f sql/workflow_timeline.sql`);
  } else {
    lines.push('  (no workflow failed in this run: raise --fault-rate to see some)');
  }
  lines.push(`  ${cli} reconcile`);
  return `${lines.join('\n')}\n`;
}
