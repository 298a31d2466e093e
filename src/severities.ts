import type { FindingKind, Severity } from './reconcile/types.js';

/**
 * One severity per fact, in one place (docs/severities.md). Every writer of a built-in alert
 * (the worker runner, the workflow engine, reconciliation) and every reconciliation check
 * reads its severity here, so a fact cannot page on-call from one path while another calls it
 * a warning. Critical: money is wrong, unaccounted for, or a payment is stuck with nobody
 * acting. Warning: a human is needed, the books are right. Info: only logged.
 *
 * `tolerance`: a statement difference is critical beyond the statement tolerance and a warning
 * within it; the check picks the kind or the severity by that, both read from here.
 */
/** Every severity an alert can have, most urgent first. */
export const severities = ['critical', 'warning', 'info'] as const;

export interface Fact {
  /** The reconciliation finding kind for this fact; null when reconciliation does not check it. */
  finding: FindingKind | null;
  /** The alert kinds raised for it (reconciliation's is `reconciliation_` + the finding kind). */
  alerts: readonly string[];
  severity: Severity | 'info' | 'tolerance';
}

const reconciliation = (finding: FindingKind, severity: Fact['severity']): Fact => ({ finding, alerts: [`reconciliation_${finding}`], severity });

export const facts = {
  // money is wrong
  balance_drift: reconciliation('balance_drift', 'critical'),
  pending_drift: reconciliation('pending_drift', 'critical'),
  unbalanced_transfer: reconciliation('unbalanced_transfer', 'critical'),
  currency_not_zero: reconciliation('currency_not_zero', 'critical'),
  forbidden_overdraft: reconciliation('forbidden_overdraft', 'critical'),
  // money sits in a half-done payment, or may be held or moved without its workflow
  workflow_failed_not_compensated: { finding: 'failed_not_compensated', alerts: ['workflow_failed', 'reconciliation_failed_not_compensated'], severity: 'critical' },
  compensation_failed: { finding: null, alerts: ['compensation_failed'], severity: 'critical' },
  // the bank and the ledger disagree (beyond the tolerance)
  statement_difference: reconciliation('statement_difference', 'critical'),
  statement_difference_within_tolerance: reconciliation('statement_difference_within_tolerance', 'warning'),
  statement_lines_inconsistent: reconciliation('statement_lines_inconsistent', 'tolerance'),
  statement_line_not_in_ledger: reconciliation('statement_line_not_in_ledger', 'tolerance'),
  statement_line_differs: reconciliation('statement_line_differs', 'tolerance'),
  ledger_movement_not_on_statement: reconciliation('ledger_movement_not_on_statement', 'tolerance'),
  // a human is needed, the books are right
  money_in_limbo: reconciliation('money_in_limbo', 'warning'),
  stuck_workflow: reconciliation('stuck_workflow', 'warning'),
  workflow_failed_and_compensated: reconciliation('failed_and_compensated', 'warning'),
  clearing_not_zero: reconciliation('clearing_not_zero', 'warning'),
  // a step the provider declined: the workflow compensates, the money goes back
  workflow_declined: { finding: null, alerts: ['workflow_declined'], severity: 'warning' },
  // a host job carries no money (ledgerbox.failed_jobs attaches money only through a workflow,
  // whose failure has its own critical facts above): the books are right
  job_failed: { finding: 'failed_job', alerts: ['job_failed', 'reconciliation_failed_job'], severity: 'warning' },
  // written by ledgerbox.signal_workflow (migrations/0009): the sender should check its money
  signal_too_late: { finding: null, alerts: ['signal_too_late'], severity: 'warning' },
  batch_summary: { finding: null, alerts: ['batch_summary'], severity: 'info' },
} as const satisfies Record<string, Fact>;

export type FactName = keyof typeof facts;

const byFinding = new Map<string, Fact>();
const byAlert = new Map<string, Fact>();
for (const fact of Object.values(facts) as Fact[]) {
  if (fact.finding !== null) byFinding.set(fact.finding, fact);
  for (const alert of fact.alerts) byAlert.set(alert, fact);
}

/** Every finding kind reconciliation can report, and every alert kind ledgerbox itself writes. */
export const findingKindsInTable: readonly string[] = [...byFinding.keys()];
export const alertKindsInTable: readonly string[] = [...byAlert.keys()];

function resolve(fact: Fact, beyondTolerance: boolean | undefined): Severity | 'info' {
  if (fact.severity !== 'tolerance') return fact.severity;
  if (beyondTolerance === undefined) throw new Error('this fact is critical beyond the statement tolerance and a warning within it: say which');
  return beyondTolerance ? 'critical' : 'warning';
}

/** The severity of a finding of this kind (`beyondTolerance` for the statement-line kinds). */
export function findingSeverity(kind: FindingKind, beyondTolerance?: boolean): Severity {
  const fact = byFinding.get(kind);
  if (fact === undefined) throw new Error(`finding kind ${kind} is not in src/severities.ts`);
  const severity = resolve(fact, beyondTolerance);
  if (severity === 'info') throw new Error(`finding kind ${kind} cannot be info`);
  return severity;
}

/** The severity of a built-in alert of this kind: what the writer of that alert inserts. */
export function alertSeverity(kind: string, beyondTolerance?: boolean): Severity | 'info' {
  const fact = byAlert.get(kind);
  if (fact === undefined) throw new Error(`alert kind ${kind} is not in src/severities.ts`);
  return resolve(fact, beyondTolerance);
}

/**
 * The severities an alert of this kind may have, when ledgerbox writes that kind itself (both
 * sides of the tolerance for a statement kind); undefined for a kind of the host's own.
 */
export function builtInAlertSeverities(kind: string): readonly (Severity | 'info')[] | undefined {
  const fact = byAlert.get(kind);
  if (fact === undefined) return undefined;
  return fact.severity === 'tolerance' ? ['critical', 'warning'] : [fact.severity];
}

/** The severity of a fact by its name in the table. */
export function factSeverity(name: FactName, beyondTolerance?: boolean): Severity | 'info' {
  return resolve(facts[name], beyondTolerance);
}
