import { array, bigint, boolean, enums, integer, min, nullable, optional, refine, size, string, type, type Describe } from 'superstruct';
import { CurrencyCode, Timestamp } from '../../contracts.js';
import type { Finding, FindingKind, ReconciliationReport } from '../types.js';

/** Every kind a finding can be, in the order the report lists them (critical kinds first). */
export const findingKinds = [
  'balance_drift',
  'pending_drift',
  'unbalanced_transfer',
  'currency_not_zero',
  'forbidden_overdraft',
  'failed_not_compensated',
  'statement_difference',
  // statement lines: critical beyond the tolerance, warning within it
  'statement_lines_inconsistent',
  'statement_line_not_in_ledger',
  'statement_line_differs',
  'ledger_movement_not_on_statement',
  'money_in_limbo',
  'stuck_workflow',
  'failed_and_compensated',
  'failed_job',
  'clearing_not_zero',
  'statement_difference_within_tolerance',
] as const satisfies readonly FindingKind[];

const count = min(integer(), 0);
const text = string();

/** Amounts are bigint minor units: a number here would be a float creeping into money. */
const FindingStruct: Describe<Finding> = type({
  severity: enums(['critical', 'warning']),
  kind: enums(findingKinds),
  subject: size(string(), 1, Infinity),
  account: nullable(text),
  currency: nullable(CurrencyCode),
  expected: nullable(bigint()),
  actual: nullable(bigint()),
  difference: nullable(bigint()),
  detail: text,
});

const statuses = ['clean', 'warnings', 'critical'] as const;

/**
 * The report renderReport accepts. `type` (not `object`) so fields added to the report later
 * do not break rendering; the status must agree with the findings (checked in render.ts).
 */
export const ReportStruct = type({
  runId: size(string(), 1, Infinity),
  asOf: Timestamp,
  full: boolean(),
  startedAt: Timestamp,
  finishedAt: Timestamp,
  entriesChecked: count,
  status: enums(statuses),
  findings: array(FindingStruct),
  comparison: type({ new: array(FindingStruct), persisting: array(FindingStruct), resolved: array(FindingStruct) }),
  moneyAtRisk: array(type({ currency: CurrencyCode, amount: refine(bigint(), 'non-negative', (value) => value >= 0n) })),
  movement: array(type({ currency: CurrencyCode, moved: bigint(), transfers: count })),
  workflows: type({ completed: count, failed: count, compensated: count }),
  trend: array(
    type({
      runId: size(string(), 1, Infinity),
      asOf: Timestamp,
      status: string(),
      critical: count,
      warning: count,
      moneyAtRisk: optional(array(type({ currency: CurrencyCode, amount: refine(bigint(), 'non-negative', (value) => value >= 0n) }))),
    }),
  ),
}) satisfies { TYPE: ReconciliationReport };
