/**
 * Every failure a caller can handle carries a stable snake_case `code`: match on the code,
 * never on the message. The list is exhaustive; a new code is a new entry here.
 */
export const errorCodes = [
  // input
  'invalid_input',
  'unknown_task',
  // money
  'unknown_currency',
  'currency_mismatch',
  'currency_exponent_mismatch',
  'currency_exists_with_different_exponent',
  'insufficient_funds',
  'amount_out_of_range',
  // accounts and transfers
  'account_not_found',
  'account_exists_with_different_request',
  'transfer_not_found',
  'exists_with_different_request',
  'transfer_not_reversible',
  'transfer_already_reversed',
  'effective_before_original',
  // holds
  'hold_not_found',
  'hold_already_resolved',
  'hold_expired',
  'post_exceeds_hold',
  // database
  'transaction_conflict',
  'host_transaction_aborted',
  'unsupported_database_handle',
  'migration_checksum_mismatch',
  'migration_unknown_to_code',
  'migration_failed',
  'migrations_pending',
  'unexpected_row',
  'database_not_configured',
  // the database itself (docs/database-errors.md)
  'database_unreachable',
  'database_authentication_failed',
  'database_not_found',
  'database_too_many_connections',
  'schema_not_migrated',
  // the embedded PostgreSQL (docs/embedded-postgres.md)
  'embedded_postgres_missing',
  'embedded_postgres_permission_denied',
  'embedded_postgres_data_directory_in_use',
  // workflows
  'workflow_not_found',
  'unknown_step',
  'workflow_not_resumable',
  'workflow_not_cancellable',
  'job_not_found',
  'job_not_retryable',
  'job_running',
  'provider_timeout',
  'provider_failed',
  // alerts
  'investigation_not_found',
  'investigation_already_closed',
  // reconciliation
  'report_send_failed',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export class LedgerboxError extends Error {
  readonly code: ErrorCode;
  /** Facts about the failure (account keys, amounts as strings, …), for logs and callers. */
  readonly details: Readonly<Record<string, unknown>>;
  /** True when the same call may succeed if simply made again (a lost serialization race). */
  readonly retryable: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LedgerboxError';
    this.code = code;
    this.details = options.details ?? {};
    this.retryable = options.retryable ?? false;
  }
}

/** Rejected before anything touched the database. `path` points at the bad field. */
export class InvalidInputError extends LedgerboxError {
  readonly path: readonly (string | number)[];
  readonly value: unknown;

  constructor(message: string, path: readonly (string | number)[], value: unknown) {
    super('invalid_input', message, { details: { path: path.join('.'), value: describeValue(value) } });
    this.name = 'InvalidInputError';
    this.path = path;
    this.value = value;
  }
}

/** The idempotency key was used before for a different request. */
export class IdempotencyConflictError extends LedgerboxError {
  readonly key: string;
  readonly field: string;

  constructor(key: string, field: string, existing: unknown, requested: unknown) {
    super(
      'exists_with_different_request',
      `Idempotency key \`${key}\` was already used for a different request: \`${field}\` was ${describeValue(existing)}, now ${describeValue(requested)}`,
      { details: { key, field, existing: describeValue(existing), requested: describeValue(requested) } },
    );
    this.name = 'IdempotencyConflictError';
    this.key = key;
    this.field = field;
  }
}

export function isLedgerboxError(error: unknown, code?: ErrorCode): error is LedgerboxError {
  return error instanceof LedgerboxError && (code === undefined || error.code === code);
}

/** Renders any value for a message: bigints keep their digits, long strings are cut. */
export function describeValue(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…` : value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value === undefined) return 'undefined';
  try {
    const text = JSON.stringify(value, (_key, inner) => (typeof inner === 'bigint' ? `${inner}n` : inner));
    return text === undefined ? String(value) : text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return String(value);
  }
}
