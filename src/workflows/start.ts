import { any, array, object, optional, record, size, string, union, unknown } from 'superstruct';
import { IdempotencyKey, StorableText, Uuid, validate } from '../contracts.js';
import { autocommitSession, inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import { IdempotencyConflictError, LedgerboxError, describeValue } from '../errors.js';
import { canonicalJson } from '../ledger/canonical-json.js';
import { limits } from '../limits.js';
import { checkJobs } from '../outbox/enqueue.js';
import { jobSpecsJson } from '../jobs/graphile-boundary.js';
import { IdentifiersOnly } from '../jobs/tasks.js';
import { checkInput, compiledWorkflow, SignalName, type Workflow, type WorkflowJob } from './define.js';
import { insertSignal, selectWorkflowWithResults, startWorkflowRow, type WorkflowRow } from './workflow-queries.js';
import { currentTraceparent, withSpan } from '../tracing/tracer.js';

export interface StartedWorkflow {
  workflowId: string;
  /** running, or queued behind its subject's running workflow (oneAtATimePerSubject); for a replay, whatever it is now. */
  status: string;
  /** True when this key had already started this workflow: nothing new was written. */
  replayed: boolean;
}

const StartOptions = object({
  key: IdempotencyKey,
  input: unknown(),
  subject: optional(size(StorableText, 1, limits.key_length_max)),
  jobs: optional(size(array(any()), 1, limits.enqueue_batch_max)),
});

/**
 * Starts a workflow inside the caller's transaction: rolled back with it, committed with it.
 * The same key returns the workflow it started (`replayed`, nothing added, not even `jobs`); a
 * different request under that key is an IdempotencyConflictError. `jobs` are added only when
 * the workflow is first started. With `oneAtATimePerSubject`, `subject` is required and a
 * workflow whose subject has one running is `queued` and starts when that one ends.
 * Traced as a span `ledgerbox.startWorkflow`, the parent of the first step's job (and of `jobs`).
 */
export async function startWorkflow<Input>(
  db: DatabaseHandle,
  workflow: Workflow<Input>,
  options: { key: string; input: Input; subject?: string; jobs?: readonly WorkflowJob[] },
): Promise<StartedWorkflow> {
  const named = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const attributes = { 'ledgerbox.workflow.kind': named((workflow as { kind?: unknown } | null)?.kind), 'ledgerbox.workflow.key': named((options as { key?: unknown } | null)?.key) };
  return withSpan('ledgerbox.startWorkflow', attributes, async (span) => {
    const started = await startChecked(db, workflow, options);
    span.setAttribute('ledgerbox.workflow.id', started.workflowId);
    span.setAttribute('ledgerbox.workflow.status', started.status);
    span.setAttribute('ledgerbox.workflow.replayed', started.replayed);
    return started;
  }, 'producer');
}

async function startChecked<Input>(
  db: DatabaseHandle,
  workflow: Workflow<Input>,
  options: { key: string; input: Input; subject?: string; jobs?: readonly WorkflowJob[] },
): Promise<StartedWorkflow> {
  const compiled = compiledWorkflow(workflow);
  if (compiled === undefined) {
    throw new LedgerboxError('invalid_input', `Expected \`workflow\` to be a workflow made by defineWorkflow, got ${describeValue(workflow)}`, { details: { path: 'workflow' } });
  }
  const start = validate(StartOptions, options, 'options');
  const input = checkInput(workflow, start.input) as Record<string, unknown>;
  if (workflow.oneAtATimePerSubject && start.subject === undefined) {
    throw new LedgerboxError('invalid_input', `Invalid \`options.subject\`: ${workflow.kind} runs one at a time per subject; say which subject`, { details: { path: 'options.subject' } });
  }
  if (!workflow.oneAtATimePerSubject && start.subject !== undefined) {
    throw new LedgerboxError('invalid_input', `Invalid \`options.subject\`: ${workflow.kind} is not defined with oneAtATimePerSubject, so a subject would change nothing; got ${describeValue(start.subject)}`, {
      details: { path: 'options.subject' },
    });
  }
  const jobs = start.jobs === undefined ? null : jobSpecsJson(checkJobs(start.jobs as WorkflowJob[], (index) => `options.jobs.${index}.`));
  return inTransaction(db, (session) => startInSession(session, workflow, { key: start.key, input, subject: start.subject ?? null, jobs, firstStep: compiled.firstStep }));
}

/** startWorkflow's writes, for a caller that has checked its input and holds a transaction (the exchange). @internal */
export async function startInSession<Input>(
  db: Session,
  workflow: Workflow<Input>,
  start: { key: string; input: Record<string, unknown>; subject: string | null; jobs: string | null; firstStep: string },
): Promise<StartedWorkflow> {
  const row = await startWorkflowRow(db, {
    kind: workflow.kind,
    version: workflow.version,
    key: start.key,
    subject: start.input,
    subjectKey: start.subject,
    firstStep: start.firstStep,
    jobs: start.jobs,
    // the first step's job continues the trace of the span active now (startWorkflow's)
    traceparent: currentTraceparent() ?? null,
  });
  if (row.replayed) {
    // a retried request after a deploy of a newer version is the same request: not compared
    const fields: [string, unknown, unknown][] = [
      ['kind', row.existing_kind, workflow.kind],
      ['input', canonicalJson(row.existing_subject), canonicalJson(start.input)],
      ['subject', row.existing_subject_key, start.subject],
    ];
    for (const [field, existing, requested] of fields) {
      if (existing !== requested) throw new IdempotencyConflictError(start.key, field, existing, requested);
    }
  }
  return { workflowId: row.workflow_id, status: row.status, replayed: row.replayed };
}

export interface WorkflowState {
  id: string;
  key: string;
  kind: string;
  version: number;
  /** queued, running, completed, failed (compensation under way), compensated, compensation_failed */
  status: string;
  currentStep: string;
  input: Record<string, unknown>;
  subject: string | null;
  /** Recorded step results, by step. */
  results: Record<string, unknown>;
  /** While a step waits: which signals it waits for (empty for a sleep) and until when. */
  waiting: { step: string; signals: string[]; until: Date } | null;
  failedStep: string | null;
  failureReason: string | null;
  /** Why no worker runs it, when one lacked its kind or version. */
  heldBack: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Reads a workflow by id or key and where it stands; `workflow_not_found` when there is none. */
export async function getWorkflow(db: DatabaseHandle, workflow: { id: string } | { key: string }): Promise<WorkflowState> {
  const which = validate(WorkflowRef, workflow, 'workflow');
  const found = await selectWorkflowWithResults(autocommitSession(db), which);
  if (found === undefined) throw notFound(which);
  return stateOf(found.workflow, found.results);
}

/** Exactly one of id and key. */
const WorkflowRef = union([object({ id: Uuid }), object({ key: IdempotencyKey })]);

function stateOf(row: WorkflowRow, results: Record<string, unknown>): WorkflowState {
  return {
    id: row.id,
    key: row.key,
    kind: row.kind,
    version: row.version,
    status: row.status,
    currentStep: row.current_step,
    input: row.subject,
    subject: row.subject_key,
    results,
    waiting: row.wait_step !== null && row.wake_at !== null ? { step: row.wait_step, signals: row.waiting_for ?? [], until: row.wake_at } : null,
    failedStep: row.failed_step,
    failureReason: row.failure_reason,
    heldBack: row.held_back,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function notFound(which: { id: string } | { key: string }): LedgerboxError {
  if ('id' in which) return new LedgerboxError('workflow_not_found', `No workflow ${which.id}`, { details: { id: which.id } });
  return new LedgerboxError('workflow_not_found', `No workflow with key ${describeValue(which.key)}`, { details: { key: which.key } });
}

export interface SignalOutcome {
  signalId: string;
  workflowId: string;
  /**
   * delivered: the workflow waits for it and its step runs now; recorded: kept for a wait the
   * workflow has not reached yet; late: the workflow has finished, or its wait for this name
   * ended at the deadline: kept, never delivered, and a warning alert raised; duplicate: this
   * signal (same key, name and payload) was sent before: nothing new.
   */
  outcome: 'delivered' | 'recorded' | 'late' | 'duplicate';
}

const SignalOptions = union([
  object({ workflowId: Uuid, name: SignalName, payload: optional(record(string(), unknown())), signalKey: optional(size(StorableText, 1, limits.key_length_max)) }),
  object({ key: IdempotencyKey, name: SignalName, payload: optional(record(string(), unknown())), signalKey: optional(size(StorableText, 1, limits.key_length_max)) }),
]);

/**
 * Sends a signal to a workflow inside the caller's transaction (a webhook handler's): recorded
 * once per `signalKey` (default: the name, so a webhook delivered twice is one signal; give the
 * provider's event id when one workflow may get several of a name), and the step waiting for it
 * woken. Delivered exactly once to the waiting step: consumed in the transaction that records
 * that step's result. The payload is identifiers only (amounts as strings of minor units).
 * Errors: workflow_not_found, exists_with_different_request (same signal key, other name or payload).
 */
export async function signalWorkflow(
  db: DatabaseHandle,
  signal: ({ workflowId: string } | { key: string }) & { name: string; payload?: Record<string, unknown>; signalKey?: string },
): Promise<SignalOutcome> {
  const checked = validate(SignalOptions, signal, 'signal');
  const payload = validate(IdentifiersOnly, checked.payload ?? {}, 'signal.payload');
  const byKey = 'key' in checked;
  const reference = byKey ? checked.key : checked.workflowId;
  const signalKey = checked.signalKey ?? checked.name;
  const row = await inTransaction(db, (session) => insertSignal(session, { workflow: reference, byKey, name: checked.name, signalKey, payload }));
  if (row === undefined) throw notFound(byKey ? { key: reference } : { id: reference });
  if (row.outcome === 'conflict') {
    const [field, existing, requested] =
      row.existing_name !== checked.name ? ['name', row.existing_name, checked.name] : ['payload', canonicalJson(row.existing_payload), canonicalJson(payload)];
    throw new IdempotencyConflictError(`signal ${signalKey} of workflow ${row.workflow_id}`, field, existing, requested);
  }
  return { signalId: row.signal_id.toString(), workflowId: row.workflow_id, outcome: row.outcome };
}
