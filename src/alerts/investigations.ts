import { validate } from '../contracts.js';
import { autocommitSession, inTransaction, type DatabaseHandle } from '../db/handle.js';
import { LedgerboxError } from '../errors.js';
import { CloseInput, ListInput } from './alert-contracts.js';
import { closeInvestigationRow, selectInvestigation, selectOpenInvestigations } from './alert-queries.js';
import type { Investigation } from './types.js';

/**
 * Closes an investigation (or a critical incident) once its cause is dealt with: from then on,
 * the same alert is sent again if it is raised again. `closedBy` defaults to the database user.
 * `investigation_not_found`; `investigation_already_closed` (its resolution is kept).
 */
export async function closeInvestigation(
  db: DatabaseHandle,
  input: { id: string; resolution: string; closedBy?: string },
): Promise<Investigation> {
  const request = validate(CloseInput, input, 'close');
  return inTransaction(db, async (db) => {
    const closed = await closeInvestigationRow(db, { id: request.id, resolution: request.resolution, closedBy: request.closedBy ?? null });
    if (closed !== undefined) return closed;
    const existing = await selectInvestigation(db, request.id);
    if (existing === undefined) {
      throw new LedgerboxError('investigation_not_found', `No investigation ${request.id}`, { details: { id: request.id } });
    }
    throw new LedgerboxError(
      'investigation_already_closed',
      `Investigation ${request.id} was already closed by ${existing.closedBy} at ${existing.closedAt?.toISOString()}: ${existing.resolution}`,
      { details: { id: request.id, closedBy: existing.closedBy, closedAt: existing.closedAt?.toISOString(), resolution: existing.resolution } },
    );
  });
}

/** Open investigations and incidents, oldest first (default 100, at most 1 000). */
export async function listOpenInvestigations(db: DatabaseHandle, options: { limit?: number } = {}): Promise<Investigation[]> {
  const request = validate(ListInput, options, 'options');
  return selectOpenInvestigations(autocommitSession(db), request.limit);
}
