/** What reconciliation finds, stores per run, reports and alerts on. */

export type Severity = 'critical' | 'warning';

export type FindingKind =
  // critical: money is wrong or unaccounted for
  | 'balance_drift'
  | 'pending_drift'
  | 'unbalanced_transfer'
  | 'currency_not_zero'
  | 'forbidden_overdraft'
  | 'failed_not_compensated'
  | 'statement_difference'
  // warning: a human is needed, the books are right
  | 'money_in_limbo'
  | 'stuck_workflow'
  | 'failed_and_compensated'
  | 'failed_job'
  | 'clearing_not_zero'
  | 'statement_difference_within_tolerance'
  // statement lines: critical beyond the statement tolerance, warning within it
  | 'statement_lines_inconsistent'
  | 'statement_line_not_in_ledger'
  | 'statement_line_differs'
  | 'ledger_movement_not_on_statement';

export interface Finding {
  severity: Severity;
  kind: FindingKind;
  /** Stable from run to run (`balance_drift:customer:42:USD`): new, persisting and resolved compare on it. */
  subject: string;
  account: string | null;
  currency: string | null;
  /** Minor units. */
  expected: bigint | null;
  actual: bigint | null;
  difference: bigint | null;
  detail: string;
}

export interface MoneyMovement {
  currency: string;
  /** Minor units moved (the sum of the positive posted entries) since the previous run. */
  moved: bigint;
  transfers: number;
}

export interface ReconciliationReport {
  runId: string;
  asOf: Date;
  full: boolean;
  startedAt: Date;
  finishedAt: Date;
  entriesChecked: number;
  status: 'clean' | 'warnings' | 'critical';
  findings: Finding[];
  /** Against the previous run: by `subject`. */
  comparison: { new: Finding[]; persisting: Finding[]; resolved: Finding[] };
  /** Per currency: the absolute differences of critical findings plus money held in limbo, minor units. */
  moneyAtRisk: { currency: string; amount: bigint }[];
  movement: MoneyMovement[];
  workflows: { completed: number; failed: number; compensated: number };
  /** Earlier runs, newest first (at most 14). */
  trend: {
    runId: string;
    asOf: Date;
    status: string;
    critical: number;
    warning: number;
    /** That run's money at risk per currency, minor units (as `moneyAtRisk`); the trend chart shows it when given. */
    moneyAtRisk?: { currency: string; amount: bigint }[];
  }[];
}

export interface RenderedReport {
  subject: string;
  text: string;
  html: string;
}
