import { autocommitSession, inOneStatement, inTransaction, type DatabaseHandle, type Row, type Session } from '../db/handle.js';
import { LedgerboxError } from '../errors.js';
import type { Logger } from '../logger.js';
import { compensationStep, type StepDefinition, type StepOutcome, type WorkflowDefinition, type WorkflowRegistry } from './definition.js';
import { jobSpecsJson } from '../jobs/graphile-boundary.js';
import { enqueueStep, stepJobSpec } from './step-job.js';
import { activeSpan, recordActiveSpanError, withSpan } from '../tracing/tracer.js';
import type { StepOutcomeLabel, StepRecorder } from '../metrics/process.js';
import { alertSeverity } from '../severities.js';
import {
  finishStep,
  insertAlert,
  insertStepAttempt,
  lockWorkflowWithResults,
  recordProviderCall,
  recordWait,
  selectStepContext,
  setHeldBack,
  updateWorkflow,
  type WorkflowRow,
} from './workflow-queries.js';

export interface RetryPolicy {
  /** Backoff before the second attempt; doubled for each further one, with full jitter. */
  base_ms: number;
  /** No backoff is longer than this. */
  max_ms: number;
}

export interface StepEnvironment<Providers> {
  db: DatabaseHandle;
  /** What this worker can run: definitions by kind and version. */
  workflows: WorkflowRegistry<Providers>;
  /** How long a workflow of a kind or version this worker lacks waits before it is offered again. Default 60 s. */
  heldBackRetry_ms?: number;
  providers: Providers;
  retry: RetryPolicy;
  /** Budget of one external call; past it the outcome is unknown and is looked up. */
  providerTimeout_ms: number;
  /** How long a failed workflow waits before compensation runs: a window to fix data and resume. */
  compensationDelay_ms: number;
  logger: Logger;
  /** Counts each delivery's outcome and duration (the worker's metrics); none by default. */
  recorder?: StepRecorder;
}

export interface StepJob {
  id: string;
  /** Who graphile-worker says holds the job (a worker's or its pool's id), when it was fetched. */
  workerId: string | null;
}

/**
 * Another worker holds this job now (ours was taken for dead): stand down, write nothing, and
 * do not let graphile-worker complete the job. Completing deletes the job row whoever holds it,
 * which would take the job from under its new holder and leave the workflow with no job at all;
 * failing it is guarded by the holder (`locked_by`), so it leaves the new holder's job alone.
 * runStep rejects with this; the task wrapper logs it as a stand-down, not a failure.
 * @internal
 */
export class JobTakenOver extends Error {
  override readonly name = 'JobTakenOver';
}

/**
 * Runs one step of one workflow, exactly once in effect however often its job is delivered:
 * 1. the external call, if any, outside any transaction; its answer recorded under the
 *    idempotency key before anything depends on it (a retry reuses it);
 * 2. one transaction: lock the workflow, stop if the step has a result, do the work, record
 *    the attempt with its result, enqueue the next step; a step its definition declares pure
 *    (it touches no table) needs no transaction: it runs once, and its result is recorded in
 *    one statement that checks, under the workflow's lock, that nothing changed since the step
 *    read it (finishWithoutTransaction);
 * 3. on failure, another transaction records the attempt and its full error, then schedules a
 *    retry with backoff, or, on the last attempt, fails the workflow, enqueues compensation
 *    and raises a critical alert.
 * The job itself succeeds in every handled case: retries are ledgerbox's, not graphile-worker's.
 * It runs in a span `ledgerbox.step <kind>.<step>`; a failed attempt is recorded on it.
 */
export async function runStep<Providers>(
  environment: StepEnvironment<Providers>,
  payload: { workflowId: string; step: string },
  job: StepJob,
): Promise<void> {
  const attributes = { 'ledgerbox.workflow.id': payload.workflowId, 'ledgerbox.workflow.step': payload.step, 'ledgerbox.job.id': job.id };
  return withSpan(`ledgerbox.step ${payload.step}`, attributes, () => runStepInSpan(environment, payload, job));
}

async function runStepInSpan<Providers>(
  environment: StepEnvironment<Providers>,
  payload: { workflowId: string; step: string },
  job: StepJob,
): Promise<void> {
  const startedAt = new Date();
  const read = autocommitSession(environment.db);
  // the workflow, its results and this step's recorded call, in one round trip
  const context = await selectStepContext(read, payload.workflowId, externalKey(payload.workflowId, payload.step), payload.step);
  if (context === undefined) {
    throw new LedgerboxError('workflow_not_found', `No workflow ${payload.workflowId}`, { details: payload });
  }
  const { workflow } = context;
  nameStepSpan(workflow, payload.step, context.attempt);
  const record = (outcome: StepOutcomeLabel) => environment.recorder?.step(workflow.kind, payload.step, outcome, startedAt);
  const definition = environment.workflows.get(workflow.kind)?.get(workflow.version);
  if (definition === undefined) {
    // a late or duplicate job of a step no longer due is nothing to hold back: it has no work
    if (isDue(workflow, payload.step) && !context.results.has(payload.step)) {
      await holdBack(environment, workflow, payload.step, job);
      record('held_back');
    } else record('already_done');
    return;
  }
  const step = payload.step === compensationStep ? definition.compensate : Object.hasOwn(definition.steps, payload.step) ? definition.steps[payload.step] : undefined;
  if (step === undefined) {
    throw new LedgerboxError('unknown_step', `Workflow kind ${workflow.kind} (version ${workflow.version}) has no step ${payload.step}`, { details: payload });
  }
  // a worker that knows this version again: the note of an older worker's refusal goes
  if (workflow.held_back !== null) await setHeldBack(read, workflow.id, null);
  const logger = environment.logger.child({ workflowId: workflow.id, kind: workflow.kind, step: payload.step, jobId: job.id });
  const maxAttempts = step.maxAttempts ?? definition.maxAttempts;
  const due = !context.results.has(payload.step) && isDue(workflow, payload.step);
  try {
    // before an external call, make sure it is still needed; a database-only step checks under the lock
    if (step.external !== undefined && !due) {
      logger.debug({ status: workflow.status, currentStep: workflow.current_step }, 'step already done or no longer due');
      record('already_done');
      return;
    }
    const external = await externalAnswer(environment, step, context, payload.step, logger);
    const attempt = { maxAttempts, jobId: job.id, workerId: job.workerId, startedAt };
    // a due pure step is finished in one statement; anything else (a step that works in the
    // database, a late or duplicate delivery) runs under the workflow's lock
    let decided: Decided | undefined;
    if (due && step.pure === true) {
      decided = await finishWithoutTransaction(environment, step, context, payload.step, external, attempt, logger);
      if (decided === 'finished') {
        logger.info('step succeeded');
        record('succeeded');
        return;
      }
    }
    // what the transaction did, counted once it has committed
    let committed: StepOutcomeLabel = 'succeeded';
    await inTransaction(environment.db, async (db, client) => {
      const { workflow: locked, version, results: current } = await lockHeld(db, workflow.id, job);
      if (current.has(payload.step) || !isDue(locked, payload.step)) {
        await recordAttempt(db, payload, maxAttempts, job, 'already_done', null, startedAt);
        committed = 'already_done';
        return;
      }
      // a pure step that failed or waits on the row as it is now has decided already: it is a
      // function of that row (its version covers the results) and its recorded answer, so it
      // is not run a second time; on a row that changed since, it runs again on what is there
      const outcome =
        decided !== undefined && decided !== 'finished' && decided !== 'changed' && decided.version === version
          ? decided.outcome
          : await step.run(step.pure === true ? refusingSession : db, {
              workflow: locked,
              results: current,
              external,
              providers: environment.providers,
              logger,
              client: step.pure === true ? null : (client ?? null),
            });
      if ('wait' in outcome) {
        // not done: say what it waits for, and come back at its wake time (or when signalled)
        await recordWait(db, workflow.id, { step: payload.step, until: outcome.wait.until, signals: outcome.wait.signals });
        await recordAttempt(db, payload, maxAttempts, job, 'waiting', null, startedAt);
        await enqueueStep(db, workflow.id, payload.step, outcome.wait.until);
        committed = 'waiting';
        return;
      }
      if ('next' in outcome || 'done' in outcome) {
        // result, attempt, workflow state and the next step's job in one statement; the lock
        // is ours and the holder checked, so anything but finished is a bug, not a race
        const finished = await finishStep(db, finishing(workflow.id, payload.step, null, outcome, attempt));
        // the workflow is ours, but the job may have been handed on while the step ran
        if (finished === 'fenced') throw new JobTakenOver(`job ${job.id} is no longer held by ${job.workerId}`);
        if (finished !== 'finished') throw new Error(`finish_step answered ${finished} under this step's own lock`);
      } else {
        // a declining step's result is recorded like any other, on its attempt
        await recordAttempt(db, payload, maxAttempts, job, 'succeeded', null, startedAt, outcome.result);
        await failWorkflow(db, locked, payload.step, outcome.fail, 'workflow_declined', 0);
        committed = 'declined';
      }
    });
    logger.info('step succeeded');
    record(committed);
  } catch (error) {
    if (error instanceof JobTakenOver) {
      logger.warn('another worker took this job over; standing down');
      record('taken_over');
      throw error;
    }
    logger.warn({ err: error }, 'step attempt failed');
    recordActiveSpanError(error);
    await recordFailure(environment, definition, step, workflow, payload, job, error, startedAt);
    record('failed');
  }
}

/** What finishStep writes for a step that succeeded (next or done). */
function finishing(
  workflowId: string,
  step: string,
  seenVersion: string | null,
  outcome: Extract<StepOutcome, { next: string } | { done: true }>,
  attempt: { maxAttempts: number; jobId: string | null; workerId: string | null; startedAt: Date },
): Parameters<typeof finishStep>[1] {
  const own = outcome.jobs ?? [];
  if ('next' in outcome) {
    const jobs = jobSpecsJson([stepJobSpec(workflowId, outcome.next), ...own]);
    return { workflowId, step, seenVersion, result: outcome.result, attempt, workflow: { status: 'running', currentStep: outcome.next }, jobs };
  }
  const status = step === compensationStep ? 'compensated' : 'completed';
  return { workflowId, step, seenVersion, result: outcome.result, attempt, workflow: { status, currentStep: step }, jobs: own.length > 0 ? jobSpecsJson(own) : null };
}

/** What a pure step is given as its database: any query is a mistake in its definition. */
const refusingSession: Session = {
  query(): Promise<Row[]> {
    return Promise.reject(new LedgerboxError('invalid_input', 'A pure step (one that says it reads and writes nothing) queried the database: declare it a database step'));
  },
};

/**
 * What finishing a pure step without a transaction came to: finished; the workflow changed
 * since the step read it (run it again under the lock); or an outcome that is not finished in
 * one statement (it fails the workflow, or waits), decided on the row of `version`, for the
 * transaction to write.
 */
type Decided = 'finished' | 'changed' | { version: string; outcome: Extract<StepOutcome, { fail: string } | { wait: unknown }> };

/**
 * Finishes a due pure step with no transaction: runs it (it reads and writes nothing) and
 * records its result, attempt, the workflow's state and next job in one statement that locks
 * the workflow and writes only if this worker still holds the job and the workflow is the
 * version the step read (so the step's inputs were current). A step that calls out and decides
 * on the answer, and every no-op step, go this way: two statements (the read before and this
 * one) instead of five.
 *
 * A step that ends the workflow (the failure path writes more) or waits is left for the
 * transaction, with its outcome: it is not run again there unless the workflow changed.
 */
async function finishWithoutTransaction<Providers>(
  environment: StepEnvironment<Providers>,
  step: StepDefinition<Providers>,
  context: { workflow: WorkflowRow; version: string; results: Map<string, unknown> },
  stepName: string,
  external: unknown,
  attempt: { maxAttempts: number; jobId: string | null; workerId: string | null; startedAt: Date },
  logger: Logger,
): Promise<Decided> {
  const outcome = await step.run(refusingSession, { workflow: context.workflow, results: context.results, external, providers: environment.providers, logger, client: null });
  if ('fail' in outcome || 'wait' in outcome) return { version: context.version, outcome };
  const finished = await inOneStatement(environment.db, (db) => finishStep(db, finishing(context.workflow.id, stepName, context.version, outcome, attempt)));
  if (finished === 'fenced') throw new JobTakenOver(`job ${attempt.jobId} is no longer held by ${attempt.workerId}`);
  if (finished === 'missing') throw new LedgerboxError('workflow_not_found', `No workflow ${context.workflow.id}`, { details: { workflowId: context.workflow.id } });
  if (finished === 'changed') logger.debug('the workflow changed since the step read it; running the step under its lock');
  return finished;
}

/**
 * A workflow of a kind or version this worker does not know: left alone (nothing of it runs
 * here), said so on the workflow row (held_back, which stuckWorkflows lists) and in the log,
 * and its step offered again later, to this worker or to one that knows the version.
 */
async function holdBack<Providers>(environment: StepEnvironment<Providers>, workflow: WorkflowRow, step: string, job: StepJob): Promise<void> {
  const known = [...(environment.workflows.get(workflow.kind)?.keys() ?? [])];
  const reason =
    known.length === 0
      ? `no worker here knows workflow kind ${workflow.kind} (version ${workflow.version}); left alone`
      : `workflow ${workflow.kind} is version ${workflow.version}; the worker knows version ${known.join(', ')}: left alone until a worker with version ${workflow.version} runs it`;
  environment.logger.warn({ workflowId: workflow.id, kind: workflow.kind, version: workflow.version, knownVersions: known, step, jobId: job.id, code: 'unknown_workflow_version' }, reason);
  const retry_ms = environment.heldBackRetry_ms ?? 60_000;
  await inTransaction(environment.db, async (db) => {
    await setHeldBack(db, workflow.id, reason);
    // the same job key: replaces this step's pending job (this one is retired when it returns)
    await enqueueStep(db, workflow.id, step, new Date(Date.now() + retry_ms));
  });
}

/** The idempotency key of a step's external call: the same on every attempt. */
function externalKey(workflowId: string, step: string): string {
  return `${workflowId}:${step}`;
}

/**
 * A step is due while the workflow runs and stands at that step; compensation once it has
 * failed. A late or duplicate job for any other step finds it not due and does nothing.
 */
function isDue(workflow: WorkflowRow, step: string): boolean {
  if (step === compensationStep) return workflow.status === 'failed' && workflow.current_step === compensationStep;
  return workflow.status === 'running' && workflow.current_step === step;
}

/**
 * Locks the workflow and checks, in the same statement, that this worker still holds the job
 * (fencing): the peers of a worker that looked dead may have unlocked its job and handed it to
 * another worker. Under the workflow lock, so of two runs at most one writes.
 */
async function lockHeld(db: Session, workflowId: string, job: StepJob): Promise<{ workflow: WorkflowRow; version: string; results: Map<string, unknown> }> {
  const locked = await lockWorkflowWithResults(db, workflowId, job.id);
  if (locked === undefined) throw new LedgerboxError('workflow_not_found', `No workflow ${workflowId}`, { details: { workflowId } });
  if (job.workerId !== null && locked.holder !== job.workerId) throw new JobTakenOver(`job ${job.id} is no longer held by ${job.workerId}`);
  return locked;
}

async function externalAnswer<Providers>(
  environment: StepEnvironment<Providers>,
  step: StepDefinition<Providers>,
  context: { workflow: WorkflowRow; results: Map<string, unknown>; recorded: unknown },
  stepName: string,
  logger: Logger,
): Promise<unknown> {
  if (step.external === undefined) return undefined;
  const { workflow, results, recorded } = context;
  if (recorded !== undefined) return recorded;
  const idempotencyKey = externalKey(workflow.id, stepName);
  const read = autocommitSession(environment.db);
  const external = step.external;
  const attributes = { 'ledgerbox.workflow.id': workflow.id, 'ledgerbox.workflow.step': stepName, 'ledgerbox.provider': external.provider };
  const response = await withSpan(`ledgerbox.external_call ${stepName}`, attributes, () => external.call({
    db: read,
    handle: environment.db,
    workflow,
    results,
    idempotencyKey,
    timeout_ms: environment.providerTimeout_ms,
    providers: environment.providers,
    logger,
  }), 'client');
  // if another delivery recorded an answer first, that one is the answer
  return recordProviderCall(read, { idempotencyKey, workflowId: workflow.id, step: stepName, provider: external.provider, response });
}

/** The step's span, once its workflow is read: named by kind and step, with its attempt (the step's failures since the last resume, plus one). */
function nameStepSpan(workflow: WorkflowRow, step: string, attempt: number): void {
  const span = activeSpan();
  span.updateName(`ledgerbox.step ${workflow.kind}.${step}`);
  span.setAttribute('ledgerbox.workflow.kind', workflow.kind);
  span.setAttribute('ledgerbox.step.attempt', attempt);
}

async function recordAttempt(
  db: Session,
  payload: { workflowId: string; step: string },
  maxAttempts: number,
  job: StepJob,
  outcome: 'succeeded' | 'failed' | 'already_done' | 'waiting',
  error: string | null,
  startedAt: Date,
  result?: unknown,
): Promise<number> {
  return insertStepAttempt(db, {
    workflowId: payload.workflowId,
    step: payload.step,
    maxAttempts,
    jobId: job.id,
    workerId: job.workerId,
    outcome,
    error,
    startedAt,
    result,
  });
}

async function recordFailure<Providers>(
  environment: StepEnvironment<Providers>,
  definition: WorkflowDefinition<Providers>,
  step: StepDefinition<Providers>,
  workflow: WorkflowRow,
  payload: { workflowId: string; step: string },
  job: StepJob,
  error: unknown,
  startedAt: Date,
): Promise<void> {
  const maxAttempts = step.maxAttempts ?? definition.maxAttempts;
  await inTransaction(environment.db, async (db) => {
    const { workflow: locked, results } = await lockHeld(db, workflow.id, job);
    const failures = await recordAttempt(db, payload, maxAttempts, job, 'failed', describeError(error), startedAt);
    // a duplicate or late run of a step that has since succeeded, or that the workflow has
    // moved past, must not fail the workflow: its failure is history, nothing more
    if (!isDue(locked, payload.step) || results.has(payload.step)) return;
    if (failures < maxAttempts) {
      const backoff_ms = Math.min(environment.retry.max_ms, environment.retry.base_ms * 2 ** (failures - 1));
      await enqueueStep(db, workflow.id, payload.step, new Date(Date.now() + Math.random() * backoff_ms));
      return;
    }
    const reason = `${payload.step} failed ${failures} times: ${error instanceof Error ? error.message : String(error)}`;
    if (payload.step === compensationStep) {
      await updateWorkflow(db, workflow.id, { status: 'compensation_failed', currentStep: payload.step });
      await insertAlert(db, {
        severity: alertSeverity('compensation_failed'),
        kind: 'compensation_failed',
        workflowId: workflow.id,
        message: `Compensation of ${workflow.kind} ${workflow.key} failed for good: money may be held or moved without its workflow. ${reason}`,
        details: { failedStep: locked.failed_step, reason: locked.failure_reason },
      });
      return;
    }
    if (step.compensateWhenExhausted === false) {
      await updateWorkflow(db, workflow.id, { status: 'failed', currentStep: payload.step, failedStep: payload.step, failureReason: reason });
      await insertAlert(db, {
        severity: alertSeverity('workflow_failed'),
        kind: 'workflow_failed',
        workflowId: workflow.id,
        message: `${workflow.kind} ${workflow.key} failed at ${payload.step}, after its money moved: not compensated. Fix the cause and resume it. ${reason}`,
        details: { step: payload.step, subject: workflow.subject },
      });
      return;
    }
    await failWorkflow(db, locked, payload.step, reason, 'workflow_failed', environment.compensationDelay_ms);
  });
}

/** Marks the workflow failed, enqueues its compensation and raises an alert, in one transaction. */
async function failWorkflow(
  db: Session,
  workflow: WorkflowRow,
  step: string,
  reason: string,
  kind: 'workflow_failed' | 'workflow_declined',
  compensationDelay_ms: number,
): Promise<void> {
  await updateWorkflow(db, workflow.id, { status: 'failed', currentStep: compensationStep, failedStep: step, failureReason: reason });
  await enqueueStep(db, workflow.id, compensationStep, compensationDelay_ms > 0 ? new Date(Date.now() + compensationDelay_ms) : null);
  await insertAlert(db, {
    severity: alertSeverity(kind),
    kind,
    workflowId: workflow.id,
    message: `${workflow.kind} ${workflow.key} failed at ${step}: ${reason}. Compensation is enqueued.`,
    details: { step, subject: workflow.subject },
  });
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${code ? `[${String(code)}] ` : ''}${error.stack ?? error.message}`;
  }
  return String(error);
}
