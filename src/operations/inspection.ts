import { defaulted, integer, object, optional, size } from 'superstruct';
import { StorableText, Uuid, validate } from '../contracts.js';
import { autocommitSession, type DatabaseHandle } from '../db/handle.js';
import { LedgerboxError } from '../errors.js';
import { selectWorkflow } from '../workflows/workflow-queries.js';
import {
  selectFailedJobs,
  selectMoneyInLimbo,
  selectStuckWorkflows,
  selectTimeline,
  type FailedJobRow,
  type LimboRow,
  type StuckRow,
  type TimelineRow,
} from './operations-queries.js';

/** Failed jobs, newest first, with their money context: `state` tells `failed` (for good) from `retrying`. */
export async function listFailedJobs(db: DatabaseHandle, options: { task?: string; limit?: number } = {}): Promise<FailedJobRow[]> {
  const request = validate(object({ task: optional(size(StorableText, 1, 100)), limit: defaulted(size(integer(), 1, 10_000), 100) }), options, 'options');
  return selectFailedJobs(autocommitSession(db), request);
}

/** A workflow's story in order; `workflow_not_found` for an unknown id. */
export async function workflowTimeline(db: DatabaseHandle, workflowId: string): Promise<TimelineRow[]> {
  const id = validate(Uuid, workflowId, 'workflowId');
  const session = autocommitSession(db);
  if ((await selectWorkflow(session, id, { lock: false })) === undefined) {
    throw new LedgerboxError('workflow_not_found', `No workflow ${id}`, { details: { workflowId: id } });
  }
  return selectTimeline(session, id);
}

/** Workflows not terminal and untouched for longer than `olderThan_ms` (default 15 minutes). */
export async function stuckWorkflows(db: DatabaseHandle, options: { olderThan_ms?: number } = {}): Promise<StuckRow[]> {
  const request = validate(object({ olderThan_ms: defaulted(size(integer(), 0, 365 * 24 * 3_600_000), 15 * 60_000) }), options, 'options');
  return selectStuckWorkflows(autocommitSession(db), request.olderThan_ms);
}

/** Holds still pending past their expiry or older than `sla_ms` (default one day). */
export async function moneyInLimbo(db: DatabaseHandle, options: { sla_ms?: number } = {}): Promise<LimboRow[]> {
  const request = validate(object({ sla_ms: defaulted(size(integer(), 0, 365 * 24 * 3_600_000), 24 * 3_600_000) }), options, 'options');
  return selectMoneyInLimbo(autocommitSession(db), request.sla_ms);
}

export type { FailedJobRow, LimboRow, StuckRow, TimelineRow };
