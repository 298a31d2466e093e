import type { Session } from '../db/handle.js';
import {
  selectFailedWorkflows,
  selectLimbo,
  selectPermanentlyFailedJobs,
  selectStatementComparisons,
  selectStuck,
  selectUnbalancedTransfers,
  fingerprintPrime,
  type ExpectedBalanceRow,
} from './reconcile-queries.js';
import { statementLineFindings } from './statement-checks.js';
import { findingSeverity } from '../severities.js';
import type { Finding } from './types.js';

/**
 * Every check, as set-based SQL on the run's snapshot, turned into findings. Critical means money
 * is wrong or unaccounted for; warning means a human is needed but the books are right. The
 * balance checks judge the one pass over the entries; the others read what is open (holds,
 * workflows, jobs, statements) and may run on a second connection that shares the snapshot, at
 * the same time as the pass (run.ts). Their findings come after the balances', as before.
 */
export interface BalanceCheckInput {
  balances: readonly ExpectedBalanceRow[];
  previousSnapshot: string | null;
  asOf: Date;
}

export interface OtherCheckInput {
  asOf: Date;
  limboSla_ms: number;
  stuckAfter_ms: number;
  statementTolerance: number;
  compensatedSince: Date;
}

/**
 * The checks of the pass over the entries: balances against the cache, available balances,
 * clearing accounts, each currency's total, and the balanced-transfers fingerprint (followed
 * by the exact query only when the fingerprint is not 0).
 */
export async function balanceFindings(db: Session, input: BalanceCheckInput): Promise<Finding[]> {
  const findings: Finding[] = [];
  const totals = new Map<string, bigint>();

  for (const balance of input.balances) {
    totals.set(balance.currency, (totals.get(balance.currency) ?? 0n) + balance.expected_posted);
    if (balance.actual_posted !== balance.expected_posted) {
      findings.push({
        severity: findingSeverity('balance_drift'),
        kind: 'balance_drift',
        subject: `balance_drift:${balance.key}`,
        account: balance.key,
        currency: balance.currency,
        expected: balance.expected_posted,
        actual: balance.actual_posted,
        difference: balance.actual_posted - balance.expected_posted,
        detail: `${balance.key}: the cached posted balance is ${balance.actual_posted}, its entries sum to ${balance.expected_posted} (${balance.currency} minor units)`,
      });
    }
    for (const [side, actual, expected] of [
      ['incoming', balance.actual_pending_incoming, balance.expected_pending_incoming],
      ['outgoing', balance.actual_pending_outgoing, balance.expected_pending_outgoing],
    ] as const) {
      if (actual !== expected) {
        findings.push({
          severity: findingSeverity('pending_drift'),
          kind: 'pending_drift',
          subject: `pending_drift:${side}:${balance.key}`,
          account: balance.key,
          currency: balance.currency,
          expected,
          actual,
          difference: actual - expected,
          detail: `${balance.key}: cached pending ${side} is ${actual}, its open holds reserve ${expected} (${balance.currency} minor units)`,
        });
      }
    }
    if (!balance.allow_negative && balance.expected_posted - balance.expected_pending_outgoing < 0n) {
      const available = balance.expected_posted - balance.expected_pending_outgoing;
      findings.push({
        severity: findingSeverity('forbidden_overdraft'),
        kind: 'forbidden_overdraft',
        subject: `forbidden_overdraft:${balance.key}`,
        account: balance.key,
        currency: balance.currency,
        expected: 0n,
        actual: available,
        difference: available,
        detail: `${balance.key} must not go below zero and has ${available} ${balance.currency} (minor units) available`,
      });
    }
    if (balance.clearing && balance.expected_posted !== 0n) {
      const age_hours = Math.floor((input.asOf.getTime() - balance.updated_at.getTime()) / 3_600_000);
      findings.push({
        severity: findingSeverity('clearing_not_zero'),
        kind: 'clearing_not_zero',
        subject: `clearing_not_zero:${balance.key}`,
        account: balance.key,
        currency: balance.currency,
        expected: 0n,
        actual: balance.expected_posted,
        difference: balance.expected_posted,
        detail: `clearing account ${balance.key} holds ${balance.expected_posted} ${balance.currency} (minor units), last moved ${age_hours} h ago`,
      });
    }
  }

  for (const [currency, total] of totals) {
    if (total !== 0n) {
      findings.push({
        severity: findingSeverity('currency_not_zero'),
        kind: 'currency_not_zero',
        subject: `currency_not_zero:${currency}`,
        account: null,
        currency,
        expected: 0n,
        actual: total,
        difference: total,
        detail: `all ${currency} accounts together hold ${total} (minor units) instead of zero: money was created or destroyed`,
      });
    }
  }

  // the fingerprint of the entries checked is 0 (mod p) when every transfer balances: only
  // otherwise is the exact (costly) query run, to name the ones that do not
  const fingerprint = input.balances.reduce((sum, balance) => sum + balance.fingerprint, 0n);
  const unbalanced = fingerprint % fingerprintPrime === 0n ? [] : await selectUnbalancedTransfers(db, input.previousSnapshot);
  for (const transfer of unbalanced) {
    findings.push({
      severity: findingSeverity('unbalanced_transfer'),
      kind: 'unbalanced_transfer',
      subject: `unbalanced_transfer:${transfer.transfer_id}:${transfer.currency}`,
      account: null,
      currency: transfer.currency,
      expected: 0n,
      actual: transfer.total,
      difference: transfer.total,
      detail: `transfer ${transfer.key} (${transfer.transfer_id}) does not balance in ${transfer.currency}: its entries sum to ${transfer.total}`,
    });
  }

  return findings;
}

/** The checks that read what is open: workflows, holds in limbo, stuck workflows, failed jobs, statements. */
export async function otherFindings(db: Session, input: OtherCheckInput): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const workflow of await selectFailedWorkflows(db, input.compensatedSince)) {
    const compensated = workflow.status === 'compensated';
    const kind = compensated ? 'failed_and_compensated' : 'failed_not_compensated';
    findings.push({
      severity: findingSeverity(kind),
      kind,
      subject: `${kind}:${workflow.workflow_id}`,
      account: workflow.source_account,
      currency: workflow.currency,
      expected: null,
      actual: workflow.amount,
      difference: compensated ? null : workflow.amount,
      detail: `${workflow.kind} ${workflow.key} is ${workflow.status}: ${workflow.failure_reason ?? 'no reason recorded'}`,
    });
  }

  for (const hold of await selectLimbo(db, input.limboSla_ms)) {
    findings.push({
      severity: findingSeverity('money_in_limbo'),
      kind: 'money_in_limbo',
      subject: `money_in_limbo:${hold.hold_id}`,
      account: hold.from_account,
      currency: hold.currency,
      expected: 0n,
      actual: hold.amount,
      difference: hold.amount,
      detail: `hold ${hold.key} reserves ${hold.amount} ${hold.currency} (minor units) of ${hold.from_account}, ${hold.why}`,
    });
  }

  for (const workflow of await selectStuck(db, input.stuckAfter_ms)) {
    findings.push({
      severity: findingSeverity('stuck_workflow'),
      kind: 'stuck_workflow',
      subject: `stuck_workflow:${workflow.workflow_id}`,
      account: null,
      currency: null,
      expected: null,
      actual: null,
      difference: null,
      detail: `${workflow.kind} ${workflow.key} has not moved from ${workflow.current_step} for ${workflow.stuck_for}`,
    });
  }

  for (const job of await selectPermanentlyFailedJobs(db)) {
    findings.push({
      severity: findingSeverity('failed_job'),
      kind: 'failed_job',
      subject: `failed_job:${job.job_id}`,
      account: null,
      currency: null,
      expected: null,
      actual: null,
      difference: null,
      detail: `job ${job.job_id} (${job.task}) failed for good after ${job.attempts} attempts: ${(job.last_error ?? '').split('\n')[0]}`,
    });
  }

  for (const statement of await selectStatementComparisons(db, input.asOf)) {
    const ledger = statement.ledger_balance ?? 0n;
    const difference = ledger - statement.statement_balance;
    if (difference === 0n) continue;
    const beyond = (difference < 0n ? -difference : difference) > BigInt(input.statementTolerance);
    const kind = beyond ? 'statement_difference' : 'statement_difference_within_tolerance';
    findings.push({
      severity: findingSeverity(kind),
      kind,
      subject: `statement:${statement.account}`,
      account: statement.account,
      currency: statement.currency,
      expected: statement.statement_balance,
      actual: ledger,
      difference,
      detail: `${statement.source} says ${statement.account} held ${statement.statement_balance} ${statement.currency} (minor units) at ${statement.as_of.toISOString()}; the ledger says ${ledger}${statement.ledger_balance === null ? ' (no such account)' : ''}`,
    });
  }

  findings.push(...(await statementLineFindings(db, { asOf: input.asOf, statementTolerance: input.statementTolerance })));

  return findings;
}
