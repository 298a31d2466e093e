import { object, string } from 'superstruct';
import { LedgerboxError, describeValue } from '../errors.js';

/**
 * Causality of effective dates: a hold's post or void is never effective before the hold, a
 * reversal never before the transfer it reverses. The database enforces it for every writer
 * (migrations/0011_effective_causality.sql, constraint `effective_not_before_original`); these
 * give the API's error first, with both dates. A date left out defaults to now or, when the
 * original is dated later than now, to the original's own date (insertTransfer), so only an
 * explicit date can be refused.
 */

/** The name the database's refusal carries (SQLSTATE 23514). @internal */
export const effectiveCausalityConstraint = 'effective_not_before_original';

/**
 * The fields of a transfer row this check reads: a structural type, so this module needs nothing
 * from ledger-queries.ts (which imports it) and the two form no import cycle.
 */
type OriginalTransfer = { id: string; kind: string; effective_at: Date };

/** Refuses an explicit `effectiveAt` earlier than the hold or transfer it resolves or reverses. @internal */
export function assertEffectiveNotBefore(effectiveAt: Date | undefined, original: OriginalTransfer, action: 'post' | 'reversal'): void {
  if (effectiveAt === undefined || effectiveAt.getTime() >= original.effective_at.getTime()) return;
  const what = action === 'reversal' ? `reverse transfer ${original.id}` : `post hold ${original.id}`;
  throw new LedgerboxError(
    'effective_before_original',
    `Cannot ${what} effective at ${effectiveAt.toISOString()}: the ${original.kind === 'hold' ? 'hold' : 'transfer'} is effective at ${original.effective_at.toISOString()}, and a ${action === 'reversal' ? 'reversal' : 'resolution'} is never effective before it`,
    {
      details: {
        [action === 'reversal' ? 'transferId' : 'holdId']: original.id,
        effectiveAt: effectiveAt.toISOString(),
        originalEffectiveAt: original.effective_at.toISOString(),
      },
    },
  );
}

/** True for the database's refusal (a node-postgres error, or one rebuilt from a caught one). @internal */
export function isEffectiveCausalityViolation(error: unknown): boolean {
  const fields = error as { code?: unknown; constraint?: unknown } | null;
  return typeof fields === 'object' && fields !== null && fields.code === '23514' && fields.constraint === effectiveCausalityConstraint;
}

const RefusalDetail = object({
  key: string(),
  kind: string(),
  originalId: string(),
  originalKind: string(),
  effectiveAt: string(),
  originalEffectiveAt: string(),
});

/**
 * The database's refusal as the API's error: same code, both dates (from the error's detail,
 * which the trigger writes as JSON). Anything else is returned as it is. @internal
 */
export function fromDatabaseRefusal(error: unknown): unknown {
  if (!isEffectiveCausalityViolation(error)) return error;
  const message = (error as Error).message;
  let detail: unknown;
  try {
    detail = JSON.parse(String((error as { detail?: unknown }).detail));
  } catch {
    detail = undefined;
  }
  if (!RefusalDetail.is(detail)) {
    return new LedgerboxError('effective_before_original', message, { cause: error, details: { constraint: effectiveCausalityConstraint } });
  }
  const reversal = detail.kind === 'reversal';
  return new LedgerboxError(
    'effective_before_original',
    `Transfer ${describeValue(detail.key)} (${detail.kind}) is effective at ${detail.effectiveAt}, before the ${detail.originalKind} it ${reversal ? 'reverses' : 'resolves'}, ${detail.originalId}, effective at ${detail.originalEffectiveAt}`,
    {
      cause: error,
      details: {
        [reversal ? 'transferId' : 'holdId']: detail.originalId,
        effectiveAt: detail.effectiveAt,
        originalEffectiveAt: detail.originalEffectiveAt,
      },
    },
  );
}
