import { sql } from '@databases/pg';
import { boolean, nullable, number, object, string, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../db/rows.js';

/** Reads of the operator views and calls of the recovery functions (migrations/0003_operations.sql). */

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

export const FailedJobRow = object({
  job_id: string(),
  task: string(),
  state: string(),
  attempts: number(),
  max_attempts: number(),
  failed_at: TimestampText,
  last_error: nullable(string()),
  workflow_id: nullable(string()),
  step: nullable(string()),
  workflow_kind: nullable(string()),
  workflow_status: nullable(string()),
  source_account: nullable(string()),
  target_account: nullable(string()),
  amount: nullable(Int8Text),
  currency: nullable(string()),
  hold_id: nullable(string()),
  settlement_id: nullable(string()),
  running: boolean(),
});
export type FailedJobRow = Infer<typeof FailedJobRow>;

export async function selectFailedJobs(db: Session, filter: { task?: string | undefined; limit: number }): Promise<FailedJobRow[]> {
  const rows = await db.query(sql`
    select job_id::text as job_id, task, state, attempts, max_attempts, ${iso('failed_at')} as failed_at, last_error,
      workflow_id::text as workflow_id, step, workflow_kind, workflow_status, source_account, target_account,
      amount::text as amount, currency, hold_id::text as hold_id, settlement_id::text as settlement_id, running
    from ledgerbox.failed_jobs
    where ${filter.task === undefined ? sql`true` : sql`task = ${filter.task}`}
    order by failed_at desc
    limit ${filter.limit}`);
  return rows.map((row) => readRow(FailedJobRow, row, 'failed job'));
}

export const TimelineRow = object({
  at: TimestampText,
  event: string(),
  step: nullable(string()),
  outcome: nullable(string()),
  detail: nullable(string()),
});
export type TimelineRow = Infer<typeof TimelineRow>;

export async function selectTimeline(db: Session, workflowId: string): Promise<TimelineRow[]> {
  const rows = await db.query(sql`
    select ${iso('at')} as at, event, step, outcome, detail
    from ledgerbox.workflow_timeline where workflow_id = ${workflowId}::uuid
    order by at, case event when 'created' then 0 when 'attempt' then 1 when 'transfer' then 2 else 3 end`);
  return rows.map((row) => readRow(TimelineRow, row, 'timeline'));
}

export const StuckRow = object({
  workflow_id: string(),
  kind: string(),
  key: string(),
  status: string(),
  current_step: string(),
  stuck_for_ms: number(),
  last_error: nullable(string()),
  source_account: nullable(string()),
  amount: nullable(Int8Text),
  currency: nullable(string()),
  pending_jobs: number(),
  /** The definition version it runs on. */
  version: number(),
  /** Why it is listed: held back by workers that lack its version, a wait long past, or untouched since when. */
  reason: string(),
});
export type StuckRow = Infer<typeof StuckRow>;

export async function selectStuckWorkflows(db: Session, olderThan_ms: number): Promise<StuckRow[]> {
  const rows = await db.query(sql`
    select workflow_id::text as workflow_id, kind, key, status, current_step,
      (extract(epoch from stuck_for) * 1000)::float8 as stuck_for_ms, last_error, source_account,
      amount::text as amount, currency, pending_jobs::int as pending_jobs, version, reason
    from ledgerbox.stuck_workflows(make_interval(secs => ${olderThan_ms / 1000}))`);
  return rows.map((row) => readRow(StuckRow, row, 'stuck workflow'));
}

export const LimboRow = object({
  hold_id: string(),
  key: string(),
  from_account: string(),
  to_account: string(),
  amount: Int8Text,
  currency: string(),
  created_at: TimestampText,
  expires_at: nullable(TimestampText),
  why: string(),
  workflow_id: nullable(string()),
  workflow_status: nullable(string()),
});
export type LimboRow = Infer<typeof LimboRow>;

export async function selectMoneyInLimbo(db: Session, sla_ms: number): Promise<LimboRow[]> {
  const rows = await db.query(sql`
    select hold_id::text as hold_id, key, from_account, to_account, amount::text as amount, currency,
      ${iso('created_at')} as created_at, ${iso('expires_at')} as expires_at, why,
      workflow_id::text as workflow_id, workflow_status
    from ledgerbox.money_in_limbo(make_interval(secs => ${sla_ms / 1000}))`);
  return rows.map((row) => readRow(LimboRow, row, 'hold in limbo'));
}

const TextResult = object({ result: string() });
const CountResult = object({ result: number() });

export async function callResumeWorkflow(db: Session, workflowId: string, reason: string): Promise<string> {
  const [row] = await db.query(sql`select ledgerbox.resume_workflow(${workflowId}::uuid, ${reason}) as result`);
  return readRow(TextResult, row, 'resume').result;
}

export async function callCancelWorkflow(db: Session, workflowId: string, reason: string): Promise<string> {
  const [row] = await db.query(sql`select ledgerbox.cancel_workflow(${workflowId}::uuid, ${reason}) as result`);
  return readRow(TextResult, row, 'cancel').result;
}

export async function callRetryJob(db: Session, jobId: string, reason: string): Promise<string> {
  const [row] = await db.query(sql`select ledgerbox.retry_job(${jobId}::bigint, ${reason}) as result`);
  return readRow(TextResult, row, 'retry').result;
}

export async function callRetryTaskJobs(db: Session, task: string, reason: string, since: Date | null): Promise<number> {
  const [row] = await db.query(sql`select ledgerbox.retry_task_jobs(${task}, ${reason}, ${since?.toISOString() ?? null}::timestamptz) as result`);
  return readRow(CountResult, row, 'retry').result;
}
