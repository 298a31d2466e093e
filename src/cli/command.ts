import { InvalidArgumentError } from 'commander';
import pg from 'pg';
import { resolveDatabase } from '../db/connection.js';
import { isLedgerboxError } from '../errors.js';

/** Exit codes: 0 done, 1 refused or failed (unknown id, job running …), 2 bad arguments. */
export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Runs one command's work; prints `ledgerbox <name>: error [code]: message` on failure.
 * Bad input the library caught (`invalid_input`) is a usage error like commander's own.
 */
export async function runCommand(name: string, work: () => Promise<void>): Promise<number> {
  try {
    await work();
    return exitCodes.ok;
  } catch (error) {
    // `ledgerbox jobs failed: error [job_not_found]: …`: the command's name may itself end in "failed"
    const code = isLedgerboxError(error) ? ` [${error.code}]` : '';
    process.stderr.write(`ledgerbox ${name}: error${code}: ${(error as Error).message}\n`);
    return isLedgerboxError(error, 'invalid_input') ? exitCodes.usage : exitCodes.failed;
  }
}

/** The embedded server's own log lines only when asked for: its errors carry the tail anyway. */
export function verbose(): boolean {
  return ['debug', 'trace'].includes(process.env.LEDGERBOX_LOG_LEVEL ?? '');
}

/** A small pool on DATABASE_URL (or the embedded server) for one command, closed after it. */
export async function withPool(work: (pool: pg.Pool) => Promise<void>): Promise<void> {
  const database = await resolveDatabase(verbose() ? { log: (line) => process.stderr.write(`${line}\n`) } : {});
  try {
    const pool = new pg.Pool({ connectionString: database.connectionString, max: 2 });
    // an idle connection dropping while we finish up is not worth a crash: the query reports it
    pool.on('error', () => undefined);
    try {
      await work(pool);
    } finally {
      await pool.end();
    }
  } finally {
    await database.close();
  }
}

// Argument parsers: a bad value is a commander error, exit code 2, before any connection.

export function parseInteger(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return parsed;
}

export function parsePositiveInteger(value: string): number {
  const parsed = parseInteger(value);
  if (parsed === 0) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return parsed;
}

export function parseFraction(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1) throw new InvalidArgumentError(`expected a number from 0 to 1, got ${JSON.stringify(value)}`);
  return parsed;
}

const int8_max = 9_223_372_036_854_775_807n;

/** graphile-worker job ids are positive bigints; kept as strings. */
export function parseJobId(value: string): string {
  if (!/^[1-9]\d{0,18}$/.test(value) || BigInt(value) > int8_max) {
    throw new InvalidArgumentError(`expected a job id (a positive integer, as in \`ledgerbox jobs failed\`), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A workflow id, as the CLI recognises one among keys. */
export const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseWorkflowId(value: string): string {
  if (!uuid.test(value)) throw new InvalidArgumentError(`expected a workflow id (a uuid), got ${JSON.stringify(value)}`);
  return value.toLowerCase();
}

export function parseReason(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('a reason is required: say what was fixed, or why (it is recorded in ledgerbox.operator_actions)');
  if (value.length > 1_000) throw new InvalidArgumentError(`a reason is at most 1000 characters, got ${value.length}`);
  return value;
}

export function parseTimestamp(value: string): string {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new InvalidArgumentError(`expected an ISO 8601 time with a time zone, like 2026-11-21T03:00:00Z, got ${JSON.stringify(value)}`);
  }
  return value;
}
