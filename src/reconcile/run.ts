import pg from 'pg';
import { boolean, defaulted, integer, object, optional, size } from 'superstruct';
import { LoggerShape, Timestamp, validate } from '../contracts.js';
import { inOneStatement, inTransaction, type Session } from '../db/handle.js';
import { pgFormat, type SQLQuery } from '@databases/pg';
import { limits } from '../limits.js';
import { defaultLogger, type Logger } from '../logger.js';
import { balanceFindings, otherFindings, type OtherCheckInput } from './checks.js';
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
  // one statement, its own transaction: no BEGIN and COMMIT round trips
  const runId = await inOneStatement(pool, (db) => insertRun(db, { trigger, night, asOf, full: options.full }));
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
        trend: trend.map((row) => ({
          runId: row.id,
          asOf: row.as_of,
          status: row.status,
          critical: row.critical,
          warning: row.warning,
          moneyAtRisk: row.money_at_risk,
        })),
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
  const main = await reader(pool);
  let helper: Reader | undefined;
  let others: Promise<OtherReads> | undefined;
  try {
    await main.client.query('begin isolation level repeatable read read only');
    await main.client.query(readerSettings);
    const previous = await selectPreviousRun(main.db);
    // without a previous run (or when asked) everything is verified from the first entry
    const previousSnapshot = options.full ? null : (previous?.snapshot ?? null);
    // The checks that read what is open (holds, workflows, jobs, statements: a few ms each, a
    // round trip each) run on a second connection at the same time as the pass over the
    // entries, on this transaction's snapshot (exported, then imported there), when the pool
    // has an idle connection right away; otherwise after the pass, on this one.
    helper = await idleReader(pool);
    const { snapshot, exported } = await selectCurrentSnapshot(main.db, { exported: helper !== undefined });
    const otherInput = {
      asOf,
      ...options,
      compensatedSince: previous?.started_at ?? new Date(asOf.getTime() - 86_400_000),
      previousSnapshot: previous?.snapshot ?? null,
      previousStartedAt: previous?.started_at ?? null,
    };
    if (helper !== undefined && exported !== null) {
      others = readOthersOnSnapshot(helper, exported, otherInput);
      others.catch(() => undefined); // awaited below; a failure there is reported there
    }
    const balances = await selectExpectedBalances(main.db, previousSnapshot);
    const findings: Finding[] = await balanceFindings(main.db, { balances, previousSnapshot, asOf });
    const rest = others === undefined ? await readOthers(main.db, otherInput) : await others;
    await main.client.query('commit');
    return {
      previousRunId: previous?.id ?? null,
      snapshot,
      balances,
      findings: [...findings, ...rest.findings],
      movement: rest.movement,
      workflows: rest.workflows,
      entriesChecked: balances.reduce((sum, balance) => sum + balance.entries, 0),
    };
  } catch (error) {
    main.fail(error as Error);
    await main.client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    // the helper's transaction ends before the one whose snapshot it imported
    if (others !== undefined) await others.catch(() => undefined);
    helper?.release();
    main.release();
  }
}

const readerSettings =
  // its sorts and hashes cover a night's entries: in memory, not spilled to disk; and no JIT,
  // which costs more to compile (tens of ms per query) than it saves on these plans
  `set local work_mem = '64MB'; set local jit = off`;

interface OtherReads {
  findings: Finding[];
  movement: { currency: string; moved: bigint; transfers: number }[];
  workflows: { completed: number; failed: number; compensated: number };
}

type OtherInput = OtherCheckInput & { previousSnapshot: string | null; previousStartedAt: Date | null };

async function readOthers(db: Session, input: OtherInput): Promise<OtherReads> {
  const findings = await otherFindings(db, input);
  const movement = (await selectMovement(db, input.previousSnapshot, input.previousStartedAt)).map((row) => ({
    currency: row.currency,
    moved: row.moved,
    transfers: row.transfers,
  }));
  const workflows = await selectWorkflowCounts(db, input.previousStartedAt);
  return { findings, movement, workflows };
}

async function readOthersOnSnapshot(helper: Reader, exported: string, input: OtherInput): Promise<OtherReads> {
  try {
    await helper.client.query('begin isolation level repeatable read read only');
    await helper.client.query(setSnapshot(exported));
    await helper.client.query(readerSettings);
    const reads = await readOthers(helper.db, input);
    await helper.client.query('commit');
    return reads;
  } catch (error) {
    helper.fail(error as Error);
    await helper.client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/** SET takes no parameters: pg_export_snapshot's id (hex digits and dashes) as a literal, checked. */
function setSnapshot(exported: string): string {
  if (!/^[0-9A-F]+(-[0-9A-F]+)+$/i.test(exported)) throw new Error(`Unexpected snapshot id from pg_export_snapshot: ${JSON.stringify(exported)}`);
  return `set transaction snapshot '${exported}'`;
}

interface Reader {
  client: pg.PoolClient;
  db: Session;
  fail(error: Error): void;
  release(): void;
}

async function reader(pool: pg.Pool): Promise<Reader> {
  return readerOf(await pool.connect());
}

function readerOf(client: pg.PoolClient): Reader {
  let broken: Error | undefined;
  // terminated while idle between reads: reported by the next query, not an uncaught 'error'
  const onError = (error: Error) => (broken ??= error);
  client.on('error', onError);
  return {
    client,
    db: {
      async query(query: SQLQuery) {
        const { text, values } = query.format(pgFormat);
        return (await client.query(text, values)).rows;
      },
    },
    fail: (error) => (broken = error),
    release() {
      client.off('error', onError);
      client.release(broken !== undefined && (broken as { code?: string }).code === undefined ? broken : undefined);
    },
  };
}

/**
 * A second connection when the pool has one idle now, else undefined: never waits for one (the
 * run holds a connection already, and a pool of one, or one another run shares, would wait forever).
 */
async function idleReader(pool: pg.Pool): Promise<Reader | undefined> {
  if (pool.idleCount === 0) return undefined;
  const connecting = pool.connect();
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 50)));
  const client = await Promise.race([connecting, gaveUp]).catch(() => undefined);
  clearTimeout(timer);
  if (client === undefined) {
    // taken by someone else meanwhile: when it comes, it goes straight back
    connecting.then((late) => late.release(), () => undefined);
    return undefined;
  }
  return readerOf(client);
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

