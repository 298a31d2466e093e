import { define, integer, object, optional, pattern, size, string, type Struct } from 'superstruct';
import { isStorableText, validate } from '../contracts.js';
import { describeValue } from '../errors.js';
import { limits } from '../limits.js';

/**
 * A job's name and the contract its payload must meet. The same definition is used to
 * enqueue and (by the runner) to check the payload again when the job is picked up.
 */
export interface TaskDefinition<Payload> {
  readonly name: string;
  readonly payload: Struct<Payload, unknown>;
  /** Defaults for every job of this task; per-call options override them. */
  readonly defaults: { queue?: string; maxAttempts?: number; priority?: number };
}

const TaskName = pattern(string(), /^[a-z][a-z0-9_.:-]{0,99}$/);

/** The same bounds graphile-worker's job table enforces, checked when the task is defined. */
export const JobDefaults = object({
  queue: optional(pattern(size(string(), 1, 100), /^[A-Za-z0-9_.:-]+$/)),
  maxAttempts: optional(size(integer(), 1, 32767)),
  priority: optional(size(integer(), -32768, 32767)),
});

const taskBrand = Symbol('ledgerbox.task');

/**
 * Declares a task. Payloads carry identifiers only (never state: amounts, balances, rates are
 * read from the database when the job runs), so beyond `payload` every field must be a string
 * identifier, an integer or a boolean, or an array of those.
 */
export function defineTask<Payload>(
  name: string,
  payload: Struct<Payload, unknown>,
  defaults: TaskDefinition<Payload>['defaults'] = {},
): TaskDefinition<Payload> {
  validate(TaskName, name, 'name');
  if (typeof (payload as Partial<Struct<Payload, unknown>>)?.validate !== 'function') {
    validate(define('a superstruct struct', () => false), payload, 'payload');
  }
  const checkedDefaults = validate(JobDefaults, defaults, 'defaults');
  return Object.freeze({ name, payload, defaults: Object.freeze(checkedDefaults), [taskBrand]: true });
}

/** The identifiers-only rule, applied to every payload whatever the task's own contract says. */
export const IdentifiersOnly = define<Record<string, unknown>>('a flat object of identifiers', (value) => {
  // a plain object only: a Date or a class instance would be stored as whatever JSON makes of it
  const prototype = typeof value === 'object' && value !== null ? Object.getPrototypeOf(value) : undefined;
  if (prototype !== Object.prototype && prototype !== null) return `a job payload must be a plain object, got ${describeValue(value)}`;
  for (const [field, inner] of Object.entries(value as Record<string, unknown>)) {
    const problem = Array.isArray(inner)
      ? inner.length > limits.payload_array_length_max
        ? `holds ${inner.length} items, at most ${limits.payload_array_length_max} allowed: ${describeValue(inner)}`
        : inner.map(identifierProblem).find((found) => found !== undefined)
      : identifierProblem(inner);
    if (problem !== undefined) {
      return `job payloads carry identifiers only: \`${field}\` ${problem}`;
    }
  }
  return true;
});

function identifierProblem(value: unknown): string | undefined {
  if (typeof value === 'string') {
    if (value.length > limits.payload_string_length_max) {
      return `is a string of ${value.length} characters, at most ${limits.payload_string_length_max} allowed: ${describeValue(value)}`;
    }
    return isStorableText(value) ? undefined : `is ${describeValue(value)}, which holds a NUL character or an unpaired surrogate (PostgreSQL's json cannot)`;
  }
  if (typeof value === 'number') return Number.isSafeInteger(value) ? undefined : `is ${describeValue(value)}, not an integer id`;
  if (typeof value === 'boolean') return undefined;
  return `is ${describeValue(value)}; store it in the database and pass its id`;
}

/** Checks a payload against the identifiers-only rule and the task's contract. @internal */
export function checkPayload<Payload>(task: TaskDefinition<Payload>, payload: unknown, name = 'payload'): Payload {
  validate(IdentifiersOnly, payload, name);
  return validate(task.payload, payload, name);
}

/** @internal */
export function isTaskDefinition(value: unknown): value is TaskDefinition<unknown> {
  return typeof value === 'object' && value !== null && taskBrand in value;
}
