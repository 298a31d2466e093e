import type { Session } from '../db/handle.js';
import { selectInconsistentStatementSteps, selectStatementMismatches, type StatementMatchRow } from './statement-queries.js';
import { findingSeverity } from '../severities.js';
import type { Finding } from './types.js';

/**
 * The checks that statement lines make possible, on the run's snapshot: the statement adds up
 * (each balance is the one before it plus the lines between them), and its lines and the
 * ledger's movements on the account in the statement's period match one for one. Every one of
 * them is a difference in money: critical beyond `statementTolerance` minor units, a warning
 * within it, as for statement balances.
 */
export async function statementLineFindings(db: Session, input: { asOf: Date; statementTolerance: number }): Promise<Finding[]> {
  const tolerance = BigInt(input.statementTolerance);
  const severity = (kind: Finding['kind'], difference: bigint): Finding['severity'] => findingSeverity(kind, (difference < 0n ? -difference : difference) > tolerance);
  const findings: Finding[] = [];

  for (const step of await selectInconsistentStatementSteps(db, input.asOf)) {
    const computed = step.opening_balance + step.lines_total;
    const difference = computed - step.closing_balance;
    findings.push({
      severity: severity('statement_lines_inconsistent', difference),
      kind: 'statement_lines_inconsistent',
      subject: `statement_lines_inconsistent:${step.account}:${step.closing_at.toISOString()}`,
      account: step.account,
      currency: step.currency,
      expected: step.closing_balance,
      actual: computed,
      difference,
      detail:
        `${step.source} (statement ${step.statement_id}) does not add up for ${step.account}: ${step.opening_balance} at ${step.opening_at.toISOString()} (line ${step.opening_line}) ` +
        `plus its ${step.lines} line${step.lines === 1 ? '' : 's'} up to ${step.closing_at.toISOString()} (${step.lines_total}) makes ${computed}, ` +
        `but its balance then is ${step.closing_balance} (line ${step.closing_line}; ${step.currency} minor units): a line is missing or wrong`,
    });
  }

  for (const row of await selectStatementMismatches(db, input.asOf)) findings.push(mismatchFinding(row, severity));
  return findings;
}

function mismatchFinding(row: StatementMatchRow, severity: (kind: Finding['kind'], difference: bigint) => Finding['severity']): Finding {
  const where = `${row.source} (statement ${row.statement_id})`;
  const at = row.at.toISOString();
  if (row.kind === 'movement_not_on_statement') {
    const moved = row.ledger_amount!;
    return {
      severity: severity('ledger_movement_not_on_statement', moved),
      kind: 'ledger_movement_not_on_statement',
      subject: `ledger_movement_not_on_statement:${row.account}:${row.reference}`,
      account: row.account,
      currency: row.currency,
      expected: null,
      actual: moved,
      difference: moved,
      detail: `transfer ${row.reference} moved ${moved} ${row.currency} (minor units) on ${row.account} at ${at}, inside the period of ${where}, which has no line for it`,
    };
  }
  const amount = row.statement_amount!;
  const what = row.reference === null ? `line ${row.line} (no reference)` : `line ${row.line} (reference ${row.reference})`;
  if (row.kind === 'line_differs') {
    const ledger = row.ledger_amount!;
    return {
      severity: severity('statement_line_differs', ledger - amount),
      kind: 'statement_line_differs',
      subject: `statement_line_differs:${row.account}:${row.reference}`,
      account: row.account,
      currency: row.currency,
      expected: amount,
      actual: ledger,
      difference: ledger - amount,
      detail: `${where} ${what} says ${amount} ${row.currency} (minor units) on ${row.account} at ${at}; transfer ${row.reference} moved ${ledger} on it in the ledger`,
    };
  }
  return {
    severity: severity('statement_line_not_in_ledger', amount),
    kind: 'statement_line_not_in_ledger',
    // a line without a reference is known by its moment and amount, which a re-import keeps
    subject: `statement_line_not_in_ledger:${row.account}:${row.reference ?? `${at}:${amount}:${row.line}`}`,
    account: row.account,
    currency: row.currency,
    expected: amount,
    actual: null,
    difference: -amount,
    detail:
      row.reference === null
        ? `${where} ${what} moved ${amount} ${row.currency} (minor units) on ${row.account} at ${at}; the ledger has no movement of that amount on it in the statement's period to match it`
        : `${where} ${what} moved ${amount} ${row.currency} (minor units) on ${row.account} at ${at}; the ledger has no transfer ${row.reference}`,
  };
}
