import { sql } from '@databases/pg';
import { nullable, number, object, record, string, unknown, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../db/rows.js';

/** One statement per function, `db` first. */

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

export const WorkflowRow = object({
  id: string(),
  kind: string(),
  key: string(),
  status: string(),
  current_step: string(),
  subject: record(string(), unknown()),
  failed_step: nullable(string()),
  failure_reason: nullable(string()),
  created_at: TimestampText,
  updated_at: TimestampText,
});
export type WorkflowRow = Infer<typeof WorkflowRow>;

const workflowColumns = sql`
  w.id::text as id, w.kind, w.key, w.status, w.current_step, w.subject, w.failed_step, w.failure_reason,
  ${iso('w.created_at')} as created_at, ${iso('w.updated_at')} as updated_at`;

export async function insertWorkflow(
  db: Session,
  workflow: { kind: string; key: string; firstStep: string; subject: Record<string, unknown> },
): Promise<WorkflowRow | undefined> {
  const [row] = await db.query(sql`
    insert into ledgerbox.workflows as w (kind, key, current_step, subject)
    values (${workflow.kind}, ${workflow.key}, ${workflow.firstStep}, ${JSON.stringify(workflow.subject)}::jsonb)
    on conflict (key) do nothing
    returning ${workflowColumns}`);
  return row === undefined ? undefined : readRow(WorkflowRow, row, 'workflow');
}

export async function selectWorkflow(db: Session, id: string, options: { lock: boolean }): Promise<WorkflowRow | undefined> {
  const [row] = await db.query(
    options.lock
      ? sql`select ${workflowColumns} from ledgerbox.workflows w where w.id = ${id}::uuid for update`
      : sql`select ${workflowColumns} from ledgerbox.workflows w where w.id = ${id}::uuid`,
  );
  return row === undefined ? undefined : readRow(WorkflowRow, row, 'workflow');
}

export async function selectWorkflowByKey(db: Session, key: string): Promise<WorkflowRow | undefined> {
  const [row] = await db.query(sql`select ${workflowColumns} from ledgerbox.workflows w where w.key = ${key}`);
  return row === undefined ? undefined : readRow(WorkflowRow, row, 'workflow');
}

export async function updateWorkflow(
  db: Session,
  id: string,
  change: { status: string; currentStep: string; failedStep?: string | null; failureReason?: string | null; resumed?: boolean },
): Promise<void> {
  await db.query(sql`
    update ledgerbox.workflows set
      status = ${change.status},
      current_step = ${change.currentStep},
      failed_step = case when ${change.failedStep === undefined} then failed_step else ${change.failedStep ?? null} end,
      failure_reason = case when ${change.failureReason === undefined} then failure_reason else ${change.failureReason ?? null} end,
      resumed_at = case when ${change.resumed === true} then now() else resumed_at end,
      updated_at = now()
    where id = ${id}::uuid`);
}

const ResultRow = object({ step: string(), result: unknown() });

export async function selectStepResults(db: Session, workflowId: string): Promise<Map<string, unknown>> {
  const rows = await db.query(sql`select step, result from ledgerbox.step_results where workflow_id = ${workflowId}::uuid`);
  return new Map(rows.map((row) => readRow(ResultRow, row, 'step result')).map((row) => [row.step, row.result]));
}

export async function insertStepResult(db: Session, workflowId: string, step: string, result: unknown): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.step_results (workflow_id, step, result)
    values (${workflowId}::uuid, ${step}, ${JSON.stringify(result)}::jsonb)`);
}

/**
 * Records an attempt; its number is the step's failures since the last resume, plus one,
 * counted in the same statement. Returns that number.
 */
export async function insertStepAttempt(
  db: Session,
  attempt: {
    workflowId: string;
    step: string;
    maxAttempts: number;
    jobId: string | null;
    workerId: string | null;
    outcome: 'succeeded' | 'failed' | 'already_done';
    error: string | null;
    startedAt: Date;
  },
): Promise<number> {
  const [row] = await db.query(sql`
    insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, job_id, worker_id, outcome, error, started_at)
    select ${attempt.workflowId}::uuid, ${attempt.step},
      1 + (select count(*)::int from ledgerbox.step_attempts a
        where a.workflow_id = w.id and a.step = ${attempt.step} and a.outcome = 'failed'
          and a.finished_at > coalesce(w.resumed_at, '-infinity')),
      ${attempt.maxAttempts}, ${attempt.jobId}::bigint, ${attempt.workerId},
      ${attempt.outcome}, ${attempt.error}, ${attempt.startedAt.toISOString()}::timestamptz
    from ledgerbox.workflows w where w.id = ${attempt.workflowId}::uuid
    returning attempt`);
  return readRow(object({ attempt: number() }), row, 'step attempt').attempt;
}

const LockHolderRow = object({ holder: nullable(string()) });

/** Locks the workflow and says who holds the step's job now, in one round trip. */
export async function lockWorkflowForJob(db: Session, id: string, jobId: string): Promise<{ workflow: WorkflowRow; holder: string | null } | undefined> {
  const [row] = await db.query(sql`
    select ${workflowColumns}, ledgerbox.job_lock_holder(${jobId}::bigint) as job_holder
    from ledgerbox.workflows w where w.id = ${id}::uuid for update`);
  if (row === undefined) return undefined;
  const { job_holder: holder, ...workflow } = row as Record<string, unknown>;
  return { workflow: readRow(WorkflowRow, workflow, 'workflow'), holder: readRow(LockHolderRow, { holder }, 'job lock').holder };
}


const ProviderCallRow = object({ response: unknown() });

export async function selectProviderCall(db: Session, idempotencyKey: string): Promise<unknown> {
  const [row] = await db.query(sql`select response from ledgerbox.provider_calls where idempotency_key = ${idempotencyKey}`);
  return row === undefined ? undefined : readRow(ProviderCallRow, row, 'provider call').response;
}

/** The first answer recorded under a key wins; a later, concurrent one is dropped. */
export async function insertProviderCall(
  db: Session,
  call: { idempotencyKey: string; workflowId: string; step: string; provider: string; response: unknown },
): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.provider_calls (idempotency_key, workflow_id, step, provider, response)
    values (${call.idempotencyKey}, ${call.workflowId}::uuid, ${call.step}, ${call.provider}, ${JSON.stringify(call.response)}::jsonb)
    on conflict (idempotency_key) do nothing`);
}

export async function insertAlert(
  db: Session,
  alert: { severity: 'critical' | 'warning' | 'info'; kind: string; workflowId: string | null; message: string; details: Record<string, unknown> },
): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.alerts (severity, kind, workflow_id, message, details)
    values (${alert.severity}, ${alert.kind}, ${alert.workflowId}::uuid, ${alert.message}, ${JSON.stringify(alert.details)}::jsonb)`);
}

export const AlertRow = object({
  id: Int8Text,
  severity: string(),
  kind: string(),
  workflow_id: nullable(string()),
  message: string(),
  created_at: TimestampText,
});
