import pg from 'pg';
import { boolean, defaulted, integer, object, optional, size } from 'superstruct';
import { LoggerShape, Timestamp, validate } from '../contracts.js';
import { inTransaction, type Session } from '../db/handle.js';
import { pgFormat, type SQLQuery } from '@databases/pg';
import { limits } from '../limits.js';
import { defaultLogger, type Logger } from '../logger.js';
import { checkFindings } from './checks.js';
import {
  selectCurrentSnapshot,
  selectExpectedBalances,
  selectFindings,
  selectMovement,
  selectPreviousRun,
  selectTrend,
  selectWorkflowCounts,
} from './reconcile-queries.js';
import { failRun, finishRun, insertFindingAlerts, insertFindings, insertRun, saveCheckpoints } from './reconcile-writes.js';
import type { Finding, ReconciliationReport } from './types.js';

export interface ReconcileOptions {
  /** The moment the run judges "past expiry", "stuck" and statements by. Default: now. */
  asOf?: Date | string;
  /** Re-verify every entry from the beginning instead of the entries since the last run. */
  full?: boolean;
  /** Holds pending longer than this are money in limbo. Default one day. */
  limboSla_ms?: number;
  /** Running workflows untouched this long are stuck. Default 15 minutes. */
  stuckAfter_ms?: number;
  /** A statement difference up to this many minor units is a warning, beyond it critical. Default 0. */
  statementTolerance?: number;
  logger?: Logger;
}

const Options = object({
  asOf: optional(Timestamp),
  full: defaulted(boolean(), false),
  limboSla_ms: defaulted(size(integer(), 0, limits.reconcile_threshold_ms_max), 86_400_000),
  stuckAfter_ms: defaulted(size(integer(), 0, limits.reconcile_threshold_ms_max), 15 * 60_000),
  statementTolerance: defaulted(size(integer(), 0, Number.MAX_SAFE_INTEGER), 0),
  logger: optional(LoggerShape),
});

/**
 * Reconciles the ledger: expected balances (entries) against actual ones (the cached balances),
 * the ledger's invariants, workflows, jobs, holds and external statements, on one consistent
 * read-only snapshot, so posting never waits on it. Its cost follows the entries added since
 * the last run (checkpoints of verified sums); `full` re-verifies everything. Each run and its
 * findings are stored; new findings raise alerts.
 */
export async function reconcile(pool: pg.Pool, options: ReconcileOptions = {}): Promise<ReconciliationReport> {
  // a manual run has no night, so it always runs
  return (await runReconciliation(pool, { ...options, trigger: 'manual', night: null }))!;
}

/** @internal: the scheduled run of one night; undefined when that night has been reconciled already. */
export async function reconcileNight(pool: pg.Pool, night: string, options: ReconcileOptions = {}): Promise<ReconciliationReport | undefined> {
  return runReconciliation(pool, { ...options, trigger: 'schedule', night });
}

async function runReconciliation(
  pool: pg.Pool,
  input: ReconcileOptions & { trigger: 'schedule' | 'manual'; night: string | null },
): Promise<ReconciliationReport | undefined> {
  const { trigger, night, ...rest } = input;
  const { logger: givenLogger, ...options } = validate(Options, rest, 'options');
  const logger = (givenLogger ?? defaultLogger()).child({ component: 'reconcile' });
  const asOf = options.asOf ?? new Date();
  const startedAt = new Date();
  const runId = await inTransaction(pool, (db) => insertRun(db, { trigger, night, asOf, full: options.full }));
  if (runId === undefined) {
    logger.info({ night }, 'this night is reconciled already');
    return undefined;
  }
  try {
    const read = await readSnapshot(pool, options, asOf);
    const report = await inTransaction(pool, async (db) => {
      const previousFindings = read.previousRunId === null ? [] : (await selectFindings(db, read.previousRunId)).map(toFinding);
      const bySubject = new Map(previousFindings.map((finding) => [finding.subject, finding]));
      const current = new Set(read.findings.map((finding) => finding.subject));
      const comparison = {
        new: read.findings.filter((finding) => !bySubject.has(finding.subject)),
        persisting: read.findings.filter((finding) => bySubject.has(finding.subject)),
        resolved: previousFindings.filter((finding) => !current.has(finding.subject)),
      };
      const status = read.findings.some((f) => f.severity === 'critical') ? 'critical' : read.findings.length > 0 ? 'warnings' : 'clean';
      const moneyAtRisk = atRisk(read.findings);
      const headline = headlineOf(status, read.findings, moneyAtRisk);
      await insertFindings(db, runId, read.findings);
      await saveCheckpoints(db, runId, read.balances);
      await insertFindingAlerts(db, runId, comparison.new);
      await finishRun(db, runId, {
        status,
        headline,
        snapshot: read.snapshot,
        entriesChecked: read.entriesChecked,
        movement: { currencies: read.movement, workflows: read.workflows },
      });
      const trend = await selectTrend(db, runId, 14);
      return {
        runId,
        asOf,
        full: options.full || read.previousRunId === null,
        startedAt,
        finishedAt: new Date(),
        entriesChecked: read.entriesChecked,
        status,
        findings: read.findings,
        comparison,
        moneyAtRisk,
        movement: read.movement,
        workflows: read.workflows,
        trend: trend.map((row) => ({ runId: row.id, asOf: row.as_of, status: row.status, critical: row.critical, warning: row.warning })),
      } satisfies ReconciliationReport;
    });
    logger.info({ runId, status: report.status, findings: report.findings.length, entriesChecked: report.entriesChecked }, headlineOf(report.status, report.findings, report.moneyAtRisk));
    return report;
  } catch (error) {
    await inTransaction(pool, (db) => failRun(db, runId, `failed: ${(error as Error).message}`)).catch(() => undefined);
    throw error;
  }
}

/** Every read on one REPEATABLE READ READ ONLY snapshot: consistent, and never blocking writers. */
async function readSnapshot(pool: pg.Pool, options: { full: boolean; limboSla_ms: number; stuckAfter_ms: number; statementTolerance: number }, asOf: Date) {
  const client = await pool.connect();
  let broken: Error | undefined;
  // terminated while idle between reads: reported by the next query, not an uncaught 'error'
  const onError = (error: Error) => (broken ??= error);
  client.on('error', onError);
  const db: Session = {
    async query(query: SQLQuery) {
      const { text, values } = query.format(pgFormat);
      return (await client.query(text, values)).rows;
    },
  };
  try {
    await client.query('begin isolation level repeatable read read only');
    // its sorts and hashes cover a night's entries: in memory, not spilled to disk; and no JIT,
    // which costs more to compile (tens of ms per query) than it saves on these plans
    await client.query(`set local work_mem = '64MB'`);
    await client.query('set local jit = off');
    const previous = await selectPreviousRun(db);
    // without a previous run (or when asked) everything is verified from the first entry
    const previousSnapshot = options.full ? null : (previous?.snapshot ?? null);
    const snapshot = await selectCurrentSnapshot(db);
    const balances = await selectExpectedBalances(db, previousSnapshot);
    const findings: Finding[] = await checkFindings(db, { balances, previousSnapshot, asOf, ...options, compensatedSince: previous?.started_at ?? new Date(asOf.getTime() - 86_400_000) });
    const movement = (await selectMovement(db, previous?.snapshot ?? null, previous?.started_at ?? null)).map((row) => ({
      currency: row.currency,
      moved: row.moved,
      transfers: row.transfers,
    }));
    const workflows = await selectWorkflowCounts(db, previous?.started_at ?? null);
    await client.query('commit');
    return {
      previousRunId: previous?.id ?? null,
      snapshot,
      balances,
      findings,
      movement,
      workflows,
      entriesChecked: balances.reduce((sum, balance) => sum + balance.entries, 0),
    };
  } catch (error) {
    broken = error as Error;
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken !== undefined && (broken as { code?: string }).code === undefined ? broken : undefined);
  }
}

function toFinding(row: { severity: string; kind: string; subject: string; account: string | null; currency: string | null; expected: bigint | null; actual: bigint | null; difference: bigint | null; detail: string }): Finding {
  return { ...row, severity: row.severity as Finding['severity'], kind: row.kind as Finding['kind'] };
}

function atRisk(findings: readonly Finding[]): { currency: string; amount: bigint }[] {
  const totals = new Map<string, bigint>();
  for (const finding of findings) {
    if (finding.currency === null || finding.difference === null) continue;
    if (finding.severity !== 'critical' && finding.kind !== 'money_in_limbo') continue;
    const amount = finding.difference < 0n ? -finding.difference : finding.difference;
    totals.set(finding.currency, (totals.get(finding.currency) ?? 0n) + amount);
  }
  return [...totals].sort(([a], [b]) => a.localeCompare(b)).map(([currency, amount]) => ({ currency, amount }));
}

export function headlineOf(status: string, findings: readonly Finding[], moneyAtRisk: readonly { currency: string; amount: bigint }[]): string {
  if (status === 'clean') return 'clean: every balance equals its entries, nothing needs a human';
  const critical = findings.filter((f) => f.severity === 'critical').length;
  const warning = findings.length - critical;
  const risk = moneyAtRisk.map((r) => `${r.amount} ${r.currency}`).join(', ');
  return `${critical} critical, ${warning} warning${warning === 1 ? '' : 's'}${risk ? `; at risk (minor units): ${risk}` : ''}`;
}

