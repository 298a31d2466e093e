import { sql } from '@databases/pg';
import { array, boolean, number, object, string, nullable, record, union, unknown, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { CaughtDatabaseError, Int8Text, TimestampText, readRow, rebuiltDatabaseError } from '../db/rows.js';
import { jobSpecsJson, type JobSpec } from '../jobs/graphile-boundary.js';
import { fromDatabaseRefusal } from './effective-dates.js';

/** One statement per function, `db` first. Bigints travel as text in both directions. */

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

export const CurrencyRow = object({ code: string(), base: number(), exponent: number() });
export type CurrencyRow = Infer<typeof CurrencyRow>;

export async function selectCurrency(db: Session, code: string): Promise<CurrencyRow | undefined> {
  const [row] = await db.query(sql`
    select code, base::int as base, exponent::int as exponent
    from ledgerbox.currencies where code = ${code}`);
  return row === undefined ? undefined : readRow(CurrencyRow, row, 'currency');
}

export async function insertCurrency(db: Session, currency: CurrencyRow): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.currencies (code, base, exponent)
    values (${currency.code}, ${currency.base}, ${currency.exponent})
    on conflict (code) do nothing`);
}

export const AccountRow = object({
  id: Int8Text,
  key: string(),
  currency: string(),
  base: number(),
  exponent: number(),
  allow_negative: boolean(),
  clearing: boolean(),
  metadata: record(string(), unknown()),
  posted_balance: Int8Text,
  pending_incoming: Int8Text,
  pending_outgoing: Int8Text,
  version: Int8Text,
  created_at: TimestampText,
  updated_at: TimestampText,
});
export type AccountRow = Infer<typeof AccountRow>;

const accountColumns = sql`
  a.id::text as id, a.key, a.currency, c.base::int as base, c.exponent::int as exponent,
  a.allow_negative, a.clearing, a.metadata, a.posted_balance::text as posted_balance,
  a.pending_incoming::text as pending_incoming, a.pending_outgoing::text as pending_outgoing,
  a.version::text as version, ${iso('a.created_at')} as created_at, ${iso('a.updated_at')} as updated_at`;

export async function insertAccount(
  db: Session,
  account: { key: string; currency: string; allowNegative: boolean; clearing?: boolean; metadata: Record<string, unknown> },
): Promise<boolean> {
  const rows = await db.query(sql`
    insert into ledgerbox.accounts (key, currency, allow_negative, clearing, metadata)
    values (${account.key}, ${account.currency}, ${account.allowNegative}, ${account.clearing ?? false}, ${JSON.stringify(account.metadata)}::jsonb)
    on conflict (key) do nothing
    returning id`);
  return rows.length === 1;
}

export async function selectAccountsByKey(db: Session, keys: readonly string[]): Promise<AccountRow[]> {
  const rows = await db.query(sql`
    select ${accountColumns}
    from ledgerbox.accounts a join ledgerbox.currencies c on c.code = a.currency
    where a.key = any(${keys}::text[])`);
  return rows.map((row) => readRow(AccountRow, row, 'account'));
}

/** What posting reads of an account it locks: only what its checks and its answer need. */
export const LockedAccountRow = object({
  id: Int8Text,
  key: string(),
  currency: string(),
  base: number(),
  exponent: number(),
  allow_negative: boolean(),
  posted_balance: Int8Text,
  pending_incoming: Int8Text,
  pending_outgoing: Int8Text,
});
export type LockedAccountRow = Infer<typeof LockedAccountRow>;

/**
 * Locks the accounts in ascending id order: every ledgerbox call takes its locks in this one
 * order, so two calls can never wait on each other in a cycle.
 */
export async function lockAccountsByKey(db: Session, keys: readonly string[]): Promise<LockedAccountRow[]> {
  const rows = await db.query(sql`
    select a.id::text as id, a.key, a.currency, c.base::int as base, c.exponent::int as exponent, a.allow_negative,
      a.posted_balance::text as posted_balance, a.pending_incoming::text as pending_incoming, a.pending_outgoing::text as pending_outgoing
    from ledgerbox.accounts a join ledgerbox.currencies c on c.code = a.currency
    where a.key = any(${keys}::text[])
    order by a.id
    for update of a`);
  return rows.map((row) => readRow(LockedAccountRow, row, 'account'));
}

export const TransferRow = object({
  id: string(),
  key: string(),
  kind: string(),
  hold_id: nullable(string()),
  reverses_id: nullable(string()),
  void_reason: nullable(string()),
  expires_at: nullable(TimestampText),
  metadata: record(string(), unknown()),
  effective_at: TimestampText,
  created_at: TimestampText,
});
export type TransferRow = Infer<typeof TransferRow>;

const transferColumns = sql`
  t.id::text as id, t.key, t.kind, t.hold_id::text as hold_id, t.reverses_id::text as reverses_id,
  t.void_reason, ${iso('t.expires_at')} as expires_at, t.metadata,
  ${iso('t.effective_at')} as effective_at, ${iso('t.created_at')} as created_at`;

export interface NewTransfer {
  key: string;
  kind: 'posted' | 'hold' | 'post_hold' | 'void_hold' | 'reversal';
  holdId?: string;
  reversesId?: string;
  voidReason?: 'voided' | 'expired';
  expiresAt?: Date;
  metadata: Record<string, unknown>;
  effectiveAt?: Date;
}

export async function selectTransferByKey(db: Session, key: string): Promise<TransferRow | undefined> {
  const [row] = await db.query(sql`select ${transferColumns} from ledgerbox.transfers t where t.key = ${key}`);
  return row === undefined ? undefined : readRow(TransferRow, row, 'transfer');
}

export async function selectTransferById(db: Session, id: string): Promise<TransferRow | undefined> {
  const [row] = await db.query(sql`select ${transferColumns} from ledgerbox.transfers t where t.id = ${id}::uuid`);
  return row === undefined ? undefined : readRow(TransferRow, row, 'transfer');
}

/** The transfer that resolved a hold (post_hold or void_hold), or that reversed a transfer. */
export async function selectTransferReferencing(
  db: Session,
  reference: { holdId: string } | { reversesId: string },
): Promise<TransferRow | undefined> {
  const [row] = await db.query(
    'holdId' in reference
      ? sql`select ${transferColumns} from ledgerbox.transfers t where t.hold_id = ${reference.holdId}::uuid`
      : sql`select ${transferColumns} from ledgerbox.transfers t where t.reverses_id = ${reference.reversesId}::uuid`,
  );
  return row === undefined ? undefined : readRow(TransferRow, row, 'transfer');
}

export interface NewEntry {
  leg: number;
  accountId: bigint;
  currency: string;
  amount: bigint;
}

/**
 * The jobs that follow a posting (postTransfer's `jobs`), already checked as enqueue checks
 * them: added by the statement that writes the transfer's entries, so never on a replay.
 */
export interface PostingJobs {
  specs: readonly JobSpec[];
  jobKeyMode: 'replace' | 'preserve_run_at';
}

export const EntryRow = object({
  leg: number(),
  account_key: string(),
  currency: string(),
  base: number(),
  exponent: number(),
  amount: Int8Text,
});
export type EntryRow = Infer<typeof EntryRow>;

export async function selectEntriesOfTransfer(db: Session, transferId: string): Promise<EntryRow[]> {
  const rows = await db.query(sql`
    select e.leg::int as leg, a.key as account_key, e.currency, c.base::int as base, c.exponent::int as exponent,
      e.amount::text as amount
    from ledgerbox.entries e
    join ledgerbox.accounts a on a.id = e.account_id
    join ledgerbox.currencies c on c.code = e.currency
    where e.transfer_id = ${transferId}::uuid
    order by e.leg, e.amount`);
  return rows.map((row) => readRow(EntryRow, row, 'entry'));
}

export const HistoricalBalanceRow = object({
  posted: Int8Text,
  pending_incoming: Int8Text,
  pending_outgoing: Int8Text,
});

/**
 * Balances from the entries themselves as of an effective date: posted entries effective by
 * then, and holds effective by then that were not resolved by then.
 */
export async function selectBalanceAsOf(db: Session, accountId: bigint, asOf: Date) {
  const [row] = await db.query(sql`
    with visible as (
      select e.amount, e.phase, resolution.effective_at as resolved_at
      from ledgerbox.entries e
      left join ledgerbox.transfers resolution on e.phase = 'pending' and resolution.hold_id = e.transfer_id
      where e.account_id = ${accountId.toString()}::bigint and e.effective_at <= ${asOf.toISOString()}::timestamptz
    )
    select
      coalesce(sum(amount) filter (where phase = 'posted'), 0)::text as posted,
      coalesce(sum(amount) filter (where phase = 'pending' and amount > 0
        and (resolved_at is null or resolved_at > ${asOf.toISOString()}::timestamptz)), 0)::text as pending_incoming,
      coalesce(-sum(amount) filter (where phase = 'pending' and amount < 0
        and (resolved_at is null or resolved_at > ${asOf.toISOString()}::timestamptz)), 0)::text as pending_outgoing
    from visible`);
  return readRow(HistoricalBalanceRow, row, 'balance');
}

export async function selectExpiredHoldIds(db: Session, now: Date, limit: number): Promise<string[]> {
  const rows = await db.query(sql`
    select hold_id::text as id
    from ledgerbox.open_hold_expiries
    where expires_at <= ${now.toISOString()}::timestamptz
    order by expires_at, hold_id
    limit ${limit}`);
  return rows.map((row) => readRow(object({ id: string() }), row, 'hold').id);
}

export async function selectTransfersByKeys(db: Session, keys: readonly string[]): Promise<TransferRow[]> {
  const rows = await db.query(sql`select ${transferColumns} from ledgerbox.transfers t where t.key = any(${keys}::text[])`);
  return rows.map((row) => readRow(TransferRow, row, 'transfer'));
}

/**
 * The one writer of transfers and their entries: all of them in one statement, as the ledger's
 * rules require (migrations/0012_set_based_posting.sql: a transfer's entries arrive in the
 * statement that creates it, checked once per statement). A key taken meanwhile is skipped
 * (no row returned for it, and none of its entries written): the caller then replays or reports
 * a conflict. `jobs` are added by the same statement when every transfer was written, and only
 * then. An effective date left out is now, or the effective date of the hold or transfer this
 * one resolves or reverses when that is later (one dated in the future): never before it
 * (migrations/0011_effective_causality.sql), whose refusal of an explicit date is thrown as
 * `effective_before_original`.
 */
export async function insertTransfers(
  db: Session,
  transfers: readonly NewTransfer[],
  entries: readonly (NewEntry & { transferKey: string })[],
  jobs?: PostingJobs,
): Promise<TransferRow[]> {
  const withJobs = jobs !== undefined && jobs.specs.length > 0;
  const rows = await db
    .query(sql`
    with written as (
      insert into ledgerbox.transfers as t (key, kind, hold_id, reverses_id, void_reason, expires_at, metadata, effective_at)
      select r.key, r.kind, r.hold_id, r.reverses_id, r.void_reason, r.expires_at, r.metadata::jsonb,
        coalesce(r.effective_at, greatest(now(), (select o.effective_at from ledgerbox.transfers o where o.id = coalesce(r.hold_id, r.reverses_id))))
      from unnest(
        ${transfers.map((t) => t.key)}::text[],
        ${transfers.map((t) => t.kind)}::text[],
        ${transfers.map((t) => t.holdId ?? null)}::uuid[],
        ${transfers.map((t) => t.reversesId ?? null)}::uuid[],
        ${transfers.map((t) => t.voidReason ?? null)}::text[],
        ${transfers.map((t) => t.expiresAt?.toISOString() ?? null)}::timestamptz[],
        ${transfers.map((t) => JSON.stringify(t.metadata))}::text[],
        ${transfers.map((t) => t.effectiveAt?.toISOString() ?? null)}::timestamptz[]
      ) with ordinality as r(key, kind, hold_id, reverses_id, void_reason, expires_at, metadata, effective_at, position)
      order by r.position
      on conflict (key) do nothing
      returning t.*
    ), written_entries as (
      insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
      select w.id, entry.leg, entry.account_id, entry.currency, entry.amount,
        case when w.kind = 'hold' then 'pending' else 'posted' end, w.effective_at
      from unnest(
        ${entries.map((e) => e.transferKey)}::text[],
        ${entries.map((e) => e.leg)}::smallint[],
        ${entries.map((e) => e.accountId.toString())}::bigint[],
        ${entries.map((e) => e.currency)}::text[],
        ${entries.map((e) => e.amount.toString())}::bigint[]
      ) with ordinality as entry(transfer_key, leg, account_id, currency, amount, position)
      join written w on w.key = entry.transfer_key
      order by entry.position
    )${
      withJobs
        ? sql`, added_jobs as (
      select count(*) as added from ledgerbox.add_jobs(${jobSpecsJson(jobs.specs)}::json, ${jobs.jobKeyMode === 'preserve_run_at'})
      where (select count(*) from written) = ${transfers.length}
    )
    select ${transferColumns}, (select added from added_jobs) as added_jobs from written t`
        : sql`
    select ${transferColumns} from written t`
    }`)
    .catch((error: unknown) => {
      throw fromDatabaseRefusal(error);
    });
  return rows.map((row) => {
    delete row.added_jobs;
    return readRow(TransferRow, row, 'transfer');
  });
}

const FastPostingResult = object({
  transfer: TransferRow,
  legs: array(object({ from: string(), to: string(), currency: string(), amount: Int8Text })),
  currencies: array(CurrencyRow),
});
export type FastPostingResult = Infer<typeof FastPostingResult>;



const FastPostingAnswer = union([object({ posted: FastPostingResult }), object({ error: CaughtDatabaseError })]);

/**
 * The common postings in one round trip (ledgerbox.try_post_transfer, migrations/0001_ledger.sql).
 * Undefined when the function wrote nothing and left the case to the TypeScript path: a replay,
 * a refusal or anything unusual. An error the function caught (and undid) is thrown as the
 * node-postgres error the statement would have raised. Amounts travel as text, with the
 * dinero.js scale and exponent the caller gave, and are resolved to minor units on the server.
 * With `jobs`, the same round trip adds them when (and only when) it writes the transfer, all or
 * nothing (ledgerbox.try_post_transfer_with_jobs, migrations/0010_transfer_jobs.sql).
 */
export async function tryPostTransfer(
  db: Session,
  request: {
    transfer: NewTransfer;
    legs: readonly { from: string; to: string; amount: { amount: bigint; currency: string; scale?: bigint | undefined; exponent?: bigint | undefined } }[];
    jobs?: PostingJobs | undefined;
  },
): Promise<FastPostingResult | undefined> {
  const { transfer } = request;
  const body = JSON.stringify({
    key: transfer.key,
    kind: transfer.kind,
    hold_id: transfer.holdId ?? null,
    void_reason: transfer.voidReason ?? null,
    expires_at: transfer.expiresAt?.toISOString() ?? null,
    metadata: transfer.metadata,
    effective_at: transfer.effectiveAt?.toISOString() ?? null,
    legs: request.legs.map((leg) => ({
      from: leg.from,
      to: leg.to,
      currency: leg.amount.currency,
      amount: leg.amount.amount.toString(),
      scale: leg.amount.scale?.toString() ?? null,
      exponent: leg.amount.exponent?.toString() ?? null,
    })),
  });
  const { jobs } = request;
  const [row] = await db.query(
    jobs === undefined || jobs.specs.length === 0
      ? sql`select ledgerbox.try_post_transfer(${body}::jsonb) as answer`
      : sql`select ledgerbox.try_post_transfer_with_jobs(${body}::jsonb, ${jobSpecsJson(jobs.specs)}::json, ${jobs.jobKeyMode === 'preserve_run_at'}) as answer`,
  );
  const answer = readRow(object({ answer: nullable(string()) }), row, 'posting').answer;
  if (answer === null) return undefined;
  const parsed = readRow(FastPostingAnswer, JSON.parse(answer), 'posting');
  if ('error' in parsed) throw rebuiltDatabaseError(parsed.error);
  return parsed.posted;
}

