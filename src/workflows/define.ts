import type pg from 'pg';
import { any, array, boolean, define, func, integer, literal, object, optional, pattern, record, size, string, union, type Struct } from 'superstruct';
import { Metadata, validate } from '../contracts.js';
import type { DatabaseHandle, Session } from '../db/handle.js';
import { LedgerboxError, describeValue } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TransferJob } from '../ledger/transfers.js';
import { checkJobs } from '../outbox/enqueue.js';
import { IdentifiersOnly } from '../jobs/tasks.js';
import { compensationStep, type StepDefinition, type StepInput, type StepOutcome, type WorkflowDefinition } from './definition.js';
import { consumeSignal, endWait, type WorkflowRow } from './workflow-queries.js';

/**
 * The host's side of the step engine: a workflow of its own (authorize → capture, a payout, a
 * refund), written as named steps of four explicit kinds, compiled to the engine's definition
 * (definition.ts), which runs every kind the same way: each step exactly once in effect,
 * retried with backoff, compensated when it fails for good.
 */

/** The connection of a step's transaction: pass it to any ledgerbox function, or query with it. Never commit, roll back or release it. */
export type StepDatabase = pg.PoolClient | pg.Client;

/** What every step handler is told. */
export interface WorkflowContext<Input> {
  workflowId: string;
  /** The key the workflow was started with (the host's idempotency key). */
  key: string;
  kind: string;
  version: number;
  /** The input it was started with, as its contract checked it: identifiers only. */
  input: Input;
  /** The subject key it runs one at a time for, if any. */
  subject: string | null;
  /** The results earlier steps recorded, by step name. */
  results: Readonly<Record<string, unknown>>;
  logger: Logger;
}

/** A job to add with a step's result (or a workflow's start), checked as `enqueue` checks it: the same shape a transfer's jobs take. */
export type WorkflowJob = TransferJob;

/**
 * What a step answers. `result` (JSON, default null) is recorded once and handed to every
 * later step; `jobs` are added in the statement that records it.
 * - `{ next }`: go on with that step (branch by returning different names);
 * - `{ complete: true }`: the workflow is done;
 * - `{ fail }`: a business outcome that ends the workflow (declined): its compensation runs.
 */
export type StepResult =
  | { next: string; result?: unknown; jobs?: readonly WorkflowJob[] }
  | { complete: true; result?: unknown; jobs?: readonly WorkflowJob[] }
  | { fail: string; result?: unknown };

interface StepCommon {
  /** Attempts before the step fails for good. Default: the workflow's `maxAttempts`. */
  maxAttempts?: number;
  /** false after the point of no return: failing for good raises a critical alert and leaves the workflow failed for an operator, uncompensated. Default true. */
  compensateWhenExhausted?: boolean;
}

/** Runs in the step's transaction: its writes, its result and the next step's job commit together. */
export interface DatabaseStep<Input> extends StepCommon {
  type: 'database';
  run(db: StepDatabase, context: WorkflowContext<Input>): Promise<StepResult>;
}

export interface ExternalCallContext<Input> extends WorkflowContext<Input> {
  /** `${workflowId}:${step}`: the same on every attempt; send it to the provider. */
  idempotencyKey: string;
  /** The call's budget; past it the outcome is unknown and `lookup` is asked. */
  timeout_ms: number;
  /** Aborted when the budget runs out. */
  signal: AbortSignal;
  /** For reads only (no transaction is open, and none may be held while the provider answers). */
  db: DatabaseHandle;
}

/**
 * Calls a provider outside any transaction, with the step's idempotency key. A call that
 * overruns `timeout_ms` has an unknown outcome: `lookup(idempotencyKey)` says what became of it
 * (undefined: nothing happened, and the next attempt calls again). The answer (JSON) is recorded
 * before anything uses it; a retry reuses the recorded answer and never calls again. Then
 * `decide` (pure: no database) or `record` (in the step's transaction) turns it into the
 * step's result.
 */
export interface ExternalStep<Input, Answer = unknown> extends StepCommon {
  type: 'external';
  /** Names the provider in ledgerbox.provider_calls. */
  provider: string;
  call(context: ExternalCallContext<Input>): Promise<Answer>;
  lookup?(context: ExternalCallContext<Input>): Promise<Answer | undefined>;
  /** Default: the worker's `providerTimeout_ms`. */
  timeout_ms?: number;
  decide?(context: WorkflowContext<Input> & { answer: Answer }): StepResult;
  record?(db: StepDatabase, context: WorkflowContext<Input> & { answer: Answer }): Promise<StepResult>;
}

/** A signal as the waiting step receives it. */
export interface ReceivedSignal {
  id: string;
  name: string;
  key: string;
  payload: Record<string, unknown>;
  receivedAt: Date;
}

/**
 * Waits for one of `signals` (sent with signalWorkflow), until a deadline fixed when the wait
 * begins. A signal sent before the workflow reached the wait is taken at once; one sent twice is
 * taken once. `onSignal` or, past the deadline, `onDeadline` answers, in the step's transaction.
 * Nothing polls: the step's job sleeps until the deadline, and a signal wakes it.
 */
export interface SignalStep<Input> extends StepCommon {
  type: 'signal';
  signals: readonly string[];
  deadline: { after_ms: number } | ((context: WorkflowContext<Input>) => Date);
  onSignal(db: StepDatabase, context: WorkflowContext<Input> & { signal: ReceivedSignal }): Promise<StepResult>;
  onDeadline(db: StepDatabase, context: WorkflowContext<Input>): Promise<StepResult>;
}

/** Sleeps until a time (fixed when the sleep begins), surviving restarts, then goes on with `next`. */
export interface SleepStep<Input> extends StepCommon {
  type: 'sleep';
  until(context: WorkflowContext<Input>): Date;
  next: string;
}

export type WorkflowStep<Input> = DatabaseStep<Input> | ExternalStep<Input, any> | SignalStep<Input> | SleepStep<Input>;

export interface WorkflowDefinitionInput<Input> {
  /** Stable name, as in ledgerbox.workflows.kind: `card_capture`. */
  kind: string;
  /** Bump it for a change that running workflows must not see (see docs/workflows.md, "Changing a deployed workflow safely"). */
  version: number;
  /** The contract of the start input: identifiers only (account keys, ids), read from the database when steps run. */
  input: Struct<Input, any>;
  /** The first step. Default: the first in `steps`. */
  start?: string;
  steps: Readonly<Record<string, WorkflowStep<Input>>>;
  /** Undoes what the workflow did to money, after a step failed for good or declined; itself exactly once. */
  compensate: DatabaseStep<Input>;
  /** Attempts per step unless the step says. Default 5. */
  maxAttempts?: number;
  /** At most one running workflow of this kind per `subject` given to startWorkflow; the rest wait, in order. */
  oneAtATimePerSubject?: boolean;
}

/** A workflow as startWorkflow and startWorker({ workflows }) take it. */
export interface Workflow<Input> {
  readonly kind: string;
  readonly version: number;
  readonly input: Struct<Input, any>;
  readonly oneAtATimePerSubject: boolean;
  readonly steps: readonly string[];
}

/**
 * Where a workflow keeps its compiled definition: a registered symbol, not a module's WeakMap,
 * so a workflow made by one copy of ledgerbox (the package a host imports) runs on another (a
 * worker bundled apart, the source tree in tests).
 */
const compiledKey = Symbol.for('ledgerbox.compiledWorkflow');

/** The engine's definition of a workflow made by defineWorkflow; undefined for anything else. @internal */
export function compiledWorkflow(workflow: unknown): WorkflowDefinition<unknown> | undefined {
  if (typeof workflow !== 'object' || workflow === null) return undefined;
  return (workflow as { [compiledKey]?: WorkflowDefinition<unknown> })[compiledKey];
}

const Name = pattern(string(), /^[a-z][a-z0-9_.:-]{0,99}$/);
const StepName = pattern(string(), /^[a-z][a-z0-9_]{0,62}$/);
export const SignalName = Name;
const Attempts = optional(size(integer(), 1, 1000));
const Common = { maxAttempts: Attempts, compensateWhenExhausted: optional(boolean()) };
const Struct_ = define<Struct<any, any>>('a superstruct struct', (value) => typeof (value as Partial<Struct<any, any>>)?.validate === 'function');

const StepShape = union([
  object({ type: literal('database'), run: func(), ...Common }),
  object({
    type: literal('external'),
    provider: Name,
    call: func(),
    lookup: optional(func()),
    timeout_ms: optional(size(integer(), 1, 2_147_483_647)),
    decide: optional(func()),
    record: optional(func()),
    ...Common,
  }),
  object({
    type: literal('signal'),
    signals: size(array(SignalName), 1, 20),
    deadline: union([object({ after_ms: size(integer(), 1, 2_147_483_647) }), func()]),
    onSignal: func(),
    onDeadline: func(),
    ...Common,
  }),
  object({ type: literal('sleep'), until: func(), next: StepName, ...Common }),
]);

const DefinitionShape = object({
  kind: Name,
  version: size(integer(), 1, 1_000_000),
  input: Struct_,
  start: optional(StepName),
  steps: record(StepName, any()),
  compensate: any(),
  maxAttempts: Attempts,
  oneAtATimePerSubject: optional(boolean()),
});

/**
 * Declares a workflow of the host's own. Checked whole here (names, kinds of step, every
 * `next` a sleep names, the first step), so a mistake shows at start-up, not at 3 a.m.
 */
export function defineWorkflow<Input>(definition: WorkflowDefinitionInput<Input>): Workflow<Input> {
  const checked = validate(DefinitionShape, definition, 'workflow');
  const names = Object.keys(checked.steps);
  if (names.length === 0) throw invalid('workflow.steps', 'a workflow needs at least one step', checked.steps);
  if (Object.hasOwn(checked.steps, compensationStep)) throw invalid(`workflow.steps.${compensationStep}`, `\`${compensationStep}\` is the compensation step's name: give it as \`compensate\``, compensationStep);
  for (const name of names) validate(StepShape, checked.steps[name], `workflow.steps.${name}`);
  const compensate = validate(StepShape, checked.compensate, 'workflow.compensate');
  if (compensate.type !== 'database') throw invalid('workflow.compensate.type', 'compensation is a database step', compensate.type);
  const start = checked.start ?? names[0]!;
  if (!names.includes(start)) throw invalid('workflow.start', `no step ${describeValue(start)}; the steps are ${names.join(', ')}`, start);
  for (const name of names) {
    const step = checked.steps[name] as WorkflowStep<Input>;
    if (step.type === 'sleep' && !names.includes(step.next)) throw invalid(`workflow.steps.${name}.next`, `no step ${describeValue(step.next)}`, step.next);
    if (step.type === 'external' && (step.decide === undefined) === (step.record === undefined)) {
      throw invalid(`workflow.steps.${name}`, 'an external step takes exactly one of `decide` (pure) and `record` (in a transaction)', Object.keys(step));
    }
  }
  const workflow: Workflow<Input> = {
    kind: checked.kind,
    version: checked.version,
    input: definition.input,
    oneAtATimePerSubject: checked.oneAtATimePerSubject ?? false,
    steps: Object.freeze([...names]),
  };
  const steps: Record<string, StepDefinition<unknown>> = {};
  for (const name of names) steps[name] = compileStep(workflow, name, checked.steps[name] as WorkflowStep<Input>, names);
  Object.defineProperty(workflow, compiledKey, {
    enumerable: false,
    value: {
    kind: workflow.kind,
    version: workflow.version,
    firstStep: start,
    steps,
    compensate: compileStep(workflow, compensationStep, definition.compensate, names),
    maxAttempts: checked.maxAttempts ?? 5,
    },
  });
  return Object.freeze(workflow);
}

function invalid(path: string, problem: string, value: unknown): LedgerboxError {
  return new LedgerboxError('invalid_input', `Invalid \`${path}\`: ${problem}`, { details: { path, value: describeValue(value) } });
}

function contextOf<Input>(workflow: WorkflowRow, results: ReadonlyMap<string, unknown>, logger: Logger): WorkflowContext<Input> {
  return {
    workflowId: workflow.id,
    key: workflow.key,
    kind: workflow.kind,
    version: workflow.version,
    input: workflow.subject as Input,
    subject: workflow.subject_key,
    results: Object.freeze(Object.fromEntries(results)),
    logger,
  };
}

function clientOf(input: StepInput<unknown>): StepDatabase {
  if (input.client === null) throw new Error('a database step ran without its transaction');
  return input.client;
}

/** A step's answer, checked: a known next step, JSON result, jobs checked as enqueue checks them. */
function outcomeOf(answer: unknown, step: string, names: readonly string[]): StepOutcome {
  const path = `steps.${step} answer`;
  const shape = validate(
    union([
      object({ next: StepName, result: optional(any()), jobs: optional(array(any())) }),
      object({ complete: literal(true), result: optional(any()), jobs: optional(array(any())) }),
      object({ fail: size(string(), 1, 2000), result: optional(any()) }),
    ]),
    answer,
    path,
  );
  const result = shape.result === undefined ? null : jsonOf(shape.result, `${path}.result`);
  if ('fail' in shape) return { result, fail: shape.fail };
  const jobs = shape.jobs === undefined || shape.jobs.length === 0 ? undefined : checkJobs(shape.jobs as WorkflowJob[], (index) => `${path}.jobs.${index}.`);
  if ('next' in shape) {
    if (!names.includes(shape.next)) throw invalid(`${path}.next`, `no step ${describeValue(shape.next)}; the steps are ${names.join(', ')}`, shape.next);
    return { result, next: shape.next, ...(jobs ? { jobs } : {}) };
  }
  return { result, done: true, ...(jobs ? { jobs } : {}) };
}

/** A value as the database will keep it (JSON), or a clear refusal (a bigint, a cycle). */
function jsonOf(value: unknown, path: string): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return validate(Metadata, value, path);
  try {
    const text = JSON.stringify(value);
    return text === undefined ? null : JSON.parse(text);
  } catch (error) {
    throw invalid(path, `must be JSON (amounts as strings of minor units, not bigint): ${(error as Error).message}`, value);
  }
}

function compileStep<Input>(workflow: Workflow<Input>, name: string, step: WorkflowStep<Input>, names: readonly string[]): StepDefinition<unknown> {
  const common = {
    ...(step.maxAttempts === undefined ? {} : { maxAttempts: step.maxAttempts }),
    ...(step.compensateWhenExhausted === undefined ? {} : { compensateWhenExhausted: step.compensateWhenExhausted }),
  };
  switch (step.type) {
    case 'database':
      return {
        ...common,
        async run(_session, input) {
          return outcomeOf(await step.run(clientOf(input), contextOf<Input>(input.workflow, input.results, input.logger)), name, names);
        },
      };
    case 'external':
      return {
        ...common,
        pure: step.decide !== undefined,
        external: {
          provider: step.provider,
          async call(input) {
            const budget_ms = step.timeout_ms ?? input.timeout_ms;
            const controller = new AbortController();
            const context: ExternalCallContext<Input> = {
              ...contextOf<Input>(input.workflow, input.results, input.logger),
              idempotencyKey: input.idempotencyKey,
              timeout_ms: budget_ms,
              signal: controller.signal,
              db: input.handle,
            };
            const answer = await callWithLookup(
              () => step.call(context),
              step.lookup === undefined ? undefined : () => step.lookup!(context),
              `the ${step.provider} provider (${workflow.kind} step ${name})`,
              budget_ms,
              controller,
            );
            return jsonOf(answer, `steps.${name} answer of ${step.provider}`);
          },
        },
        async run(_session, input) {
          const context = { ...contextOf<Input>(input.workflow, input.results, input.logger), answer: input.external };
          if (step.decide !== undefined) return outcomeOf(step.decide(context), name, names);
          return outcomeOf(await step.record!(clientOf(input), context), name, names);
        },
      };
    case 'signal':
      return {
        ...common,
        async run(session, input) {
          const { workflow: row } = input;
          const context = contextOf<Input>(row, input.results, input.logger);
          const signal = await consumeSignal(session, row.id, name, step.signals);
          if (signal !== undefined) {
            await endWait(session, row.id, { deadlinePassed: false, signals: step.signals });
            const received: ReceivedSignal = { id: signal.id.toString(), name: signal.name, key: signal.signal_key, payload: signal.payload, receivedAt: signal.received_at };
            return outcomeOf(await step.onSignal(clientOf(input), { ...context, signal: received }), name, names);
          }
          const until = waitingSince(row, name) ?? deadlineOf(step, context);
          if (until.getTime() > Date.now()) return { wait: { until, signals: step.signals } };
          await endWait(session, row.id, { deadlinePassed: true, signals: step.signals });
          return outcomeOf(await step.onDeadline(clientOf(input), context), name, names);
        },
      };
    case 'sleep':
      return {
        ...common,
        async run(session: Session, input) {
          const { workflow: row } = input;
          const until = waitingSince(row, name) ?? checkedDate(step.until(contextOf<Input>(row, input.results, input.logger)), `steps.${name}.until`);
          if (until.getTime() > Date.now()) return { wait: { until, signals: [] } };
          if (row.wait_step !== null) await endWait(session, row.id, { deadlinePassed: false, signals: [] });
          return { result: { sleptUntil: until.toISOString() }, next: step.next };
        },
      };
  }
}

/** The wake time a wait of this step already fixed (a retry or a wake-up must not move it). */
function waitingSince(workflow: WorkflowRow, step: string): Date | undefined {
  return workflow.wait_step === step && workflow.wake_at !== null ? workflow.wake_at : undefined;
}

function deadlineOf<Input>(step: SignalStep<Input>, context: WorkflowContext<Input>): Date {
  if (typeof step.deadline === 'function') return checkedDate(step.deadline(context), 'deadline');
  return new Date(Date.now() + step.deadline.after_ms);
}

function checkedDate(value: unknown, path: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalid(path, 'must return a valid Date', value);
  return value;
}

/**
 * Asks once; past the budget the outcome is unknown: asks the provider what became of the key
 * (lookup) instead of asking again blindly. Without a lookup, or when the lookup knows nothing,
 * the attempt fails as provider_timeout and the next attempt calls again with the same key.
 */
async function callWithLookup<T>(call: () => Promise<T>, lookup: (() => Promise<T | undefined>) | undefined, what: string, timeout_ms: number, controller: AbortController): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      call(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          controller.abort();
          reject(new LedgerboxError('provider_timeout', `${what} did not answer in ${timeout_ms} ms`, { retryable: true }));
        }, timeout_ms);
      }),
    ]);
  } catch (error) {
    // by code, not class: a provider may throw the timeout of another copy of ledgerbox
    if ((error as { code?: unknown })?.code !== 'provider_timeout' || lookup === undefined) throw error;
    const known = await lookup();
    if (known === undefined) throw error; // it never happened: the next attempt may ask again
    return known;
  } finally {
    clearTimeout(timer);
  }
}

/** Checks a start input: the identifiers-only rule, then the workflow's own contract. @internal */
export function checkInput<Input>(workflow: Workflow<Input>, input: unknown): Input {
  validate(IdentifiersOnly, input, 'input');
  return validate(workflow.input, input, 'input');
}
