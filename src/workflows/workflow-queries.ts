import { insertAlertRow } from '../alerts/alert-queries.js';
import { sql } from '@databases/pg';
import { array, boolean, enums, integer, nullable, number, object, record, string, unknown, type Infer } from 'superstruct';
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
  version: integer(),
  subject_key: nullable(string()),
  wait_step: nullable(string()),
  waiting_for: nullable(array(string())),
  wake_at: nullable(TimestampText),
  held_back: nullable(string()),
  created_at: TimestampText,
  updated_at: TimestampText,
});
export type WorkflowRow = Infer<typeof WorkflowRow>;

const workflowColumns = sql`
  w.id::text as id, w.kind, w.key, w.status, w.current_step, w.subject, w.failed_step, w.failure_reason,
  w.version, w.subject_key, w.wait_step, w.waiting_for, ${iso('w.wake_at')} as wake_at, w.held_back,
  ${iso('w.created_at')} as created_at, ${iso('w.updated_at')} as updated_at`;

export async function insertWorkflow(
  db: Session,
  workflow: { kind: string; key: string; firstStep: string; subject: Record<string, unknown>; version?: number },
): Promise<WorkflowRow | undefined> {
  const [row] = await db.query(sql`
    insert into ledgerbox.workflows as w (kind, key, current_step, subject, version)
    values (${workflow.kind}, ${workflow.key}, ${workflow.firstStep}, ${JSON.stringify(workflow.subject)}::jsonb, ${workflow.version ?? 1})
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

/** A workflow by id or key and the results its steps recorded, in one round trip (getWorkflow). */
export async function selectWorkflowWithResults(
  db: Session,
  which: { id: string } | { key: string },
): Promise<{ workflow: WorkflowRow; results: Record<string, unknown> } | undefined> {
  const [row] = await db.query(sql`
    select ${workflowColumns},
      (select coalesce(jsonb_object_agg(r.step, r.result), '{}') from ledgerbox.step_results r where r.workflow_id = w.id) as step_results
    from ledgerbox.workflows w
    where ${'id' in which ? sql`w.id = ${which.id}::uuid` : sql`w.key = ${which.key}`}`);
  if (row === undefined) return undefined;
  const { step_results: results, ...workflow } = row as Record<string, unknown>;
  return { workflow: readRow(WorkflowRow, workflow, 'workflow'), results: readRow(record(string(), unknown()), results, 'step results') };
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

/**
 * Records an attempt; its number is the step's failures since the last resume, plus one,
 * counted in the same statement. Returns that number. A succeeded attempt carries the step's
 * result (migration lean_steps: the result lives on its attempt, read as ledgerbox.step_results;
 * a second result for the step is refused by the database).
 */
export async function insertStepAttempt(
  db: Session,
  attempt: {
    workflowId: string;
    step: string;
    maxAttempts: number;
    jobId: string | null;
    workerId: string | null;
    outcome: 'succeeded' | 'failed' | 'already_done' | 'waiting';
    error: string | null;
    startedAt: Date;
    /** The step's result: given exactly when the outcome is succeeded. */
    result?: unknown;
  },
): Promise<number> {
  const result = attempt.outcome === 'succeeded' ? JSON.stringify(attempt.result ?? null) : null;
  const [row] = await db.query(sql`
    insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, job_id, worker_id, outcome, error, started_at, result)
    select ${attempt.workflowId}::uuid, ${attempt.step},
      1 + (select count(*)::int from ledgerbox.step_attempts a
        where a.workflow_id = w.id and a.step = ${attempt.step} and a.outcome = 'failed'
          and a.finished_at > coalesce(w.resumed_at, '-infinity')),
      ${attempt.maxAttempts}, ${attempt.jobId}::bigint, ${attempt.workerId},
      ${attempt.outcome}, ${attempt.error}, ${attempt.startedAt.toISOString()}::timestamptz, ${result}::jsonb
    from ledgerbox.workflows w where w.id = ${attempt.workflowId}::uuid
    returning attempt`);
  return readRow(object({ attempt: number() }), row, 'step attempt').attempt;
}

const LockHolderRow = object({ holder: nullable(string()), version: string() });


const ProviderCallRow = object({ response: unknown() });

export async function selectProviderCall(db: Session, idempotencyKey: string): Promise<unknown> {
  const [row] = await db.query(sql`select response from ledgerbox.provider_calls where idempotency_key = ${idempotencyKey}`);
  return row === undefined ? undefined : readRow(ProviderCallRow, row, 'provider call').response;
}

/** A workflow's or the worker's alert, through the one writer of alert rows (src/alerts). */
export async function insertAlert(
  db: Session,
  alert: { severity: 'critical' | 'warning' | 'info'; kind: string; workflowId: string | null; message: string; details: Record<string, unknown> },
): Promise<void> {
  await insertAlertRow(db, { ...alert, dedupeKey: null });
}

export const AlertRow = object({
  id: Int8Text,
  severity: string(),
  kind: string(),
  workflow_id: nullable(string()),
  message: string(),
  created_at: TimestampText,
});

const StepContextRow = object({ version: string(), results: record(string(), unknown()), recorded: unknown(), attempt: integer() });

/**
 * What a step needs before it starts, in one round trip: the workflow, the results recorded so
 * far, the recorded answer of the call made under `idempotencyKey` (undefined when none), and
 * which attempt of `step` this is (its failures since the last resume, plus one, as
 * insertStepAttempt counts them: for its span).
 */
export async function selectStepContext(
  db: Session,
  workflowId: string,
  idempotencyKey: string,
  step: string,
): Promise<{ workflow: WorkflowRow; version: string; results: Map<string, unknown>; recorded: unknown; attempt: number } | undefined> {
  const [row] = await db.query(sql`
    select ${workflowColumns}, w.xmin::text as row_version,
      (select coalesce(jsonb_object_agg(r.step, r.result), '{}') from ledgerbox.step_results r where r.workflow_id = w.id) as step_results,
      (select jsonb_build_array(c.response) from ledgerbox.provider_calls c where c.idempotency_key = ${idempotencyKey}) as recorded_call,
      1 + (select count(*)::int from ledgerbox.step_attempts a
        where a.workflow_id = w.id and a.step = ${step} and a.outcome = 'failed'
          and a.finished_at > coalesce(w.resumed_at, '-infinity')) as step_attempt
    from ledgerbox.workflows w where w.id = ${workflowId}::uuid`);
  if (row === undefined) return undefined;
  const { row_version: version, step_results: results, recorded_call: recorded, step_attempt: attempt, ...workflow } = row as Record<string, unknown>;
  const context = readRow(StepContextRow, { version, results, recorded, attempt }, 'step context');
  return {
    workflow: readRow(WorkflowRow, workflow, 'workflow'),
    version: context.version,
    results: new Map(Object.entries(context.results)),
    recorded: Array.isArray(context.recorded) ? context.recorded[0] : undefined,
    attempt: context.attempt,
  };
}

/**
 * Locks the workflow, says who holds the step's job now, and reads the results recorded so
 * far and the row's version (xmin), in one round trip.
 */
export async function lockWorkflowWithResults(
  db: Session,
  id: string,
  jobId: string,
): Promise<{ workflow: WorkflowRow; version: string; holder: string | null; results: Map<string, unknown> } | undefined> {
  const [row] = await db.query(sql`
    select ${workflowColumns}, w.xmin::text as row_version, ledgerbox.job_lock_holder(${jobId}::bigint) as job_holder,
      -- every transfer the step's transaction makes is this workflow's (transfers.workflow_id)
      set_config('ledgerbox.workflow_id', w.id::text, true) as tagged,
      (select coalesce(jsonb_object_agg(r.step, r.result), '{}') from ledgerbox.step_results r where r.workflow_id = w.id) as step_results
    from ledgerbox.workflows w where w.id = ${id}::uuid for update of w`);
  if (row === undefined) return undefined;
  const { job_holder: holder, row_version: version, step_results: results, tagged: _tagged, ...workflow } = row as Record<string, unknown>;
  const locked = readRow(LockHolderRow, { holder, version }, 'job lock');
  return {
    workflow: readRow(WorkflowRow, workflow, 'workflow'),
    version: locked.version,
    holder: locked.holder,
    results: new Map(Object.entries(readRow(record(string(), unknown()), results, 'step results'))),
  };
}

/** Records the first answer under a key and returns the answer that counts, in one round trip. */
export async function recordProviderCall(
  db: Session,
  call: { idempotencyKey: string; workflowId: string; step: string; provider: string; response: unknown },
): Promise<unknown> {
  const [row] = await db.query(sql`
    with added as (
      insert into ledgerbox.provider_calls (idempotency_key, workflow_id, step, provider, response)
      values (${call.idempotencyKey}, ${call.workflowId}::uuid, ${call.step}, ${call.provider}, ${JSON.stringify(call.response)}::jsonb)
      on conflict (idempotency_key) do nothing
      returning response
    )
    select response from added
    union all
    select response from ledgerbox.provider_calls where idempotency_key = ${call.idempotencyKey} and not exists (select 1 from added)`);
  // a concurrent delivery's answer committed after this statement's snapshot: read it now
  if (row === undefined) return selectProviderCall(db, call.idempotencyKey);
  return readRow(ProviderCallRow, row, 'provider call').response;
}

const FinishStepRow = object({ outcome: enums(['finished', 'changed', 'fenced', 'missing']) });

/**
 * A successful step's bookkeeping in one statement (ledgerbox.finish_step, migrations 0007 and
 * lean_steps): its attempt with its result, the workflow's new state and its jobs (the next step's, as enqueueStep
 * adds it, and the step's own), written only if, under the workflow's lock, this worker still holds the
 * job and the workflow is still the version the step read. Says what happened.
 */
export async function finishStep(
  db: Session,
  finish: {
    workflowId: string;
    step: string;
    /** The workflow row's xmin when the step read it; null when the caller holds its lock already. */
    seenVersion: string | null;
    result: unknown;
    attempt: { maxAttempts: number; jobId: string | null; workerId: string | null; startedAt: Date };
    workflow: { status: string; currentStep: string };
    /** ledgerbox.add_jobs' JSON (jobSpecsJson), or null for none. */
    jobs: string | null;
  },
): Promise<'finished' | 'changed' | 'fenced' | 'missing'> {
  const [row] = await db.query(sql`
    select ledgerbox.finish_step(
      ${finish.workflowId}::uuid, ${finish.step}, ${finish.seenVersion}::xid,
      ${finish.attempt.jobId}::bigint, ${finish.attempt.workerId}, ${finish.attempt.maxAttempts}::int,
      ${finish.attempt.startedAt.toISOString()}::timestamptz, ${JSON.stringify(finish.result)}::jsonb,
      ${finish.workflow.status}, ${finish.workflow.currentStep}, ${finish.jobs}::json) as outcome`);
  return readRow(FinishStepRow, row, 'finished step').outcome;
}

const StartedRow = object({
  workflow_id: string(),
  status: string(),
  replayed: boolean(),
  existing_kind: string(),
  existing_version: integer(),
  existing_subject: record(string(), unknown()),
  existing_subject_key: nullable(string()),
});
export type StartedRow = Infer<typeof StartedRow>;

/**
 * Starts a workflow in one statement (ledgerbox.start_workflow, migrations 0009 and 0014): inserted
 * and its first step enqueued (its payload carrying `traceparent`, when given), or queued behind
 * its subject's active workflow, or the row already under this key (replayed) for the caller to compare.
 */
export async function startWorkflowRow(
  db: Session,
  start: { kind: string; version: number; key: string; subject: Record<string, unknown>; subjectKey: string | null; firstStep: string; jobs: string | null; traceparent: string | null },
): Promise<StartedRow> {
  const [row] = await db.query(sql`
    select workflow_id::text as workflow_id, status, replayed, existing_kind, existing_version, existing_subject, existing_subject_key
    from ledgerbox.start_workflow(${start.kind}, ${start.version}::int, ${start.key}, ${JSON.stringify(start.subject)}::jsonb,
      ${start.subjectKey}, ${start.firstStep}, ${start.jobs}::json, ${start.traceparent}::text)`);
  return readRow(StartedRow, row, 'started workflow');
}

const SignalRow = object({
  signal_id: Int8Text,
  workflow_id: string(),
  outcome: enums(['delivered', 'recorded', 'late', 'duplicate', 'conflict']),
  workflow_status: string(),
  existing_name: nullable(string()),
  existing_payload: nullable(record(string(), unknown())),
});
export type SignalRow = Infer<typeof SignalRow>;

/** Records a signal and wakes its waiting step (ledgerbox.signal_workflow, migration 0009); undefined: no such workflow. */
export async function insertSignal(
  db: Session,
  signal: { workflow: string; byKey: boolean; name: string; signalKey: string; payload: Record<string, unknown> },
): Promise<SignalRow | undefined> {
  const [row] = await db.query(sql`
    select signal_id::text as signal_id, workflow_id::text as workflow_id, outcome, workflow_status, existing_name, existing_payload
    from ledgerbox.signal_workflow(${signal.workflow}, ${signal.byKey}, ${signal.name}, ${signal.signalKey}, ${JSON.stringify(signal.payload)}::jsonb)`);
  return row === undefined ? undefined : readRow(SignalRow, row, 'signal');
}

const ConsumedSignalRow = object({ id: Int8Text, name: string(), signal_key: string(), payload: record(string(), unknown()), received_at: TimestampText });
export type ConsumedSignalRow = Infer<typeof ConsumedSignalRow>;

/**
 * Takes the oldest signal of one of `names` not yet consumed, for `step`, under the workflow's
 * lock (the caller holds it): consumed in the transaction that records the step's result.
 */
export async function consumeSignal(db: Session, workflowId: string, step: string, names: readonly string[]): Promise<ConsumedSignalRow | undefined> {
  const [row] = await db.query(sql`
    update ledgerbox.workflow_signals s set consumed_step = ${step}, consumed_at = now()
    where s.id = (
      select u.id from ledgerbox.workflow_signals u
      where u.workflow_id = ${workflowId}::uuid and u.consumed_step is null and u.name = any(${names as string[]}::text[])
      order by u.id limit 1)
    returning s.id::text as id, s.name, s.signal_key, s.payload, ${iso('s.received_at')} as received_at`);
  return row === undefined ? undefined : readRow(ConsumedSignalRow, row, 'signal');
}

/**
 * A step begins or goes on waiting: what for and until when, on the workflow row (for
 * signalWorkflow to wake it, and for the operator), in the step's transaction.
 */
export async function recordWait(db: Session, workflowId: string, wait: { step: string; until: Date; signals: readonly string[] }): Promise<void> {
  await db.query(sql`
    update ledgerbox.workflows set wait_step = ${wait.step}, waiting_for = ${wait.signals as string[]}::text[],
      wake_at = ${wait.until.toISOString()}::timestamptz, updated_at = now()
    where id = ${workflowId}::uuid`);
}

/** A wait has ended (a signal came, or the deadline passed: then its names are remembered, so a later one is late). */
export async function endWait(db: Session, workflowId: string, ended: { deadlinePassed: boolean; signals: readonly string[] }): Promise<void> {
  await db.query(sql`
    update ledgerbox.workflows set wait_step = null, waiting_for = null, wake_at = null,
      ended_waits = case when ${ended.deadlinePassed} then ended_waits || ${ended.signals as string[]}::text[] else ended_waits end
    where id = ${workflowId}::uuid`);
}

/** Says on the workflow why this worker left it alone (an unknown kind or version); null clears it. */
export async function setHeldBack(db: Session, workflowId: string, reason: string | null): Promise<void> {
  await db.query(sql`update ledgerbox.workflows set held_back = ${reason} where id = ${workflowId}::uuid and held_back is distinct from ${reason}`);
}

const CompletedJobRow = object({ completed: boolean() });

/** Deletes a host task's job in the task's own transaction (ledgerbox.complete_job); false: no longer this worker's. */
export async function completeJobInTransaction(db: Session, jobId: string, workerId: string): Promise<boolean> {
  const [row] = await db.query(sql`select ledgerbox.complete_job(${jobId}::bigint, ${workerId}) as completed`);
  return readRow(CompletedJobRow, row, 'completed job').completed;
}
