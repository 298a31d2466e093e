import type pg from 'pg';
import type { DatabaseHandle, Session } from '../db/handle.js';
import type { JobSpec } from '../jobs/graphile-boundary.js';
import type { Logger } from '../logger.js';
import type { WorkflowRow } from './workflow-queries.js';

/**
 * Glossary. A *workflow* is a row in ledgerbox.workflows that moves through *steps*. A step is
 * one graphile-worker job carrying only `{ workflowId, step }`; it runs in one database
 * transaction that locks the workflow, does the step's database work, records its *result*
 * and enqueues the next step, so a redelivered job finds the result and does nothing. A step
 * may first make one *external call* (outside the transaction, with an idempotency key), whose
 * answer is recorded before anything depends on it. A step may *wait* (for a signal, or until a
 * time): it records no result yet, and its job is scheduled again for its wake time. When a
 * step fails for good, the workflow is *failed* and its *compensation* step puts the money back.
 *
 * This is the engine's own shape; hosts write theirs with defineWorkflow (define.ts), which
 * compiles to it.
 */

export type StepOutcome =
  /** Done; run `next` now. */
  | { result: unknown; next: string; jobs?: readonly JobSpec[] }
  /** Done, and so is the workflow (for the compensation step: compensated). */
  | { result: unknown; done: true; jobs?: readonly JobSpec[] }
  /** A business outcome (declined, quote expired) that ends the workflow: compensate. */
  | { result: unknown; fail: string }
  /** Not done: run this step again at `until`, or sooner when one of `signals` arrives. */
  | { wait: { until: Date; signals: readonly string[] } };

// `jobs`: jobs to add with the step's result, in the statement that records it (a pure step
// then needs no transaction of its own: see run-step.ts).

export interface StepInput<Providers> {
  workflow: WorkflowRow;
  /** Results recorded by earlier steps of this workflow. */
  results: ReadonlyMap<string, unknown>;
  /** The recorded answer of this step's external call, if it has one. */
  external: unknown;
  providers: Providers;
  logger: Logger;
  /** The connection of the step's transaction (null for a pure step): what a host's step is handed. */
  client: pg.PoolClient | pg.Client | null;
}

export interface ExternalCallInput<Providers> {
  /** For reads only, outside any transaction: the call must not hold locks while it waits. */
  db: Session;
  /** The same, as a handle a host's call can pass to ledgerbox's read functions. */
  handle: DatabaseHandle;
  workflow: WorkflowRow;
  results: ReadonlyMap<string, unknown>;
  /** `${workflowId}:${step}`: the same key on every attempt, so the provider can deduplicate. */
  idempotencyKey: string;
  /** How long to wait for the provider before its outcome counts as unknown. */
  timeout_ms: number;
  providers: Providers;
  logger: Logger;
}

export interface StepDefinition<Providers> {
  /** Attempts before the step fails for good. Default: the workflow's. */
  maxAttempts?: number;
  /**
   * false for steps after the point of no return (money has moved): failing for good leaves the
   * workflow failed, with a critical alert, for an operator to fix and resume; it does not undo
   * the money. Default true.
   */
  compensateWhenExhausted?: boolean;
  /**
   * True when `run` reads and writes nothing in the database (it decides on its inputs and the
   * recorded answer alone): its result is recorded in one statement, with no transaction. Said
   * by the definition, never guessed; a pure step that queries anyway fails its attempt.
   */
  pure?: boolean;
  /** Called outside the database transaction, at most once per successful answer. */
  external?: { provider: string; call(input: ExternalCallInput<Providers>): Promise<unknown> };
  /** The step's database work, inside the transaction that records its result. */
  run(db: Session, input: StepInput<Providers>): Promise<StepOutcome>;
}

export interface WorkflowDefinition<Providers> {
  kind: string;
  /** The definition's version: a workflow runs on the version it was started with. Default 1. */
  version?: number;
  firstStep: string;
  steps: Readonly<Record<string, StepDefinition<Providers>>>;
  /** Undoes whatever the workflow did to money; itself an exactly-once step. */
  compensate: StepDefinition<Providers>;
  /** Attempts per step unless the step says otherwise. */
  maxAttempts: number;
}

/** The step name compensation runs under. */
export const compensationStep = 'compensate';

/** Definitions by kind, then by version: what one worker knows. @internal */
export type WorkflowRegistry<Providers> = ReadonlyMap<string, ReadonlyMap<number, WorkflowDefinition<Providers>>>;

/** A registry of the given definitions; two of one kind and version are refused by the caller. @internal */
export function registryOf<Providers>(definitions: readonly WorkflowDefinition<Providers>[]): Map<string, Map<number, WorkflowDefinition<Providers>>> {
  const registry = new Map<string, Map<number, WorkflowDefinition<Providers>>>();
  for (const definition of definitions) {
    const versions = registry.get(definition.kind) ?? new Map<number, WorkflowDefinition<Providers>>();
    versions.set(definition.version ?? 1, definition);
    registry.set(definition.kind, versions);
  }
  return registry;
}
