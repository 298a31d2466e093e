import { sql } from '@databases/pg';
import { number, object, string, type Infer } from 'superstruct';
import type { Session } from '../db/handle.js';
import { Int8Text, TimestampText, readRow } from '../db/rows.js';

/** Batch runs' SQL: one statement per function, `db` first. */

const iso = (column: string) => sql.__dangerous__rawValue(`to_json(${column}) #>> '{}'`);

const IdRow = object({ id: string() });

/** A batch run and its jobs, in the fan-out's transaction: both exist only if the jobs do. */
export async function insertBatchRun(db: Session, batch: { name: string; task: string; jobIds: readonly string[] }): Promise<string> {
  const [row] = await db.query(sql`
    with run as (
      insert into ledgerbox.batch_runs (name, task, jobs) values (${batch.name}, ${batch.task}, ${batch.jobIds.length})
      returning id
    ),
    jobs as (
      insert into ledgerbox.batch_jobs (batch_id, job_id)
      select run.id, job.id from run, unnest(${[...batch.jobIds]}::bigint[]) as job(id)
      on conflict do nothing
    )
    select id::text as id from run`);
  return readRow(IdRow, row, 'batch run').id;
}

export const FinishedBatchRow = object({
  id: string(),
  name: string(),
  task: string(),
  jobs: number(),
  started_at: TimestampText,
  started_snapshot: string(),
  completed: number(),
  failed: number(),
});
export type FinishedBatchRow = Infer<typeof FinishedBatchRow>;

/**
 * Open batch runs none of whose jobs is waiting, retrying or running, locked so that two
 * summarisers never write the same summary (the other one skips it). graphile-worker deletes a
 * job that completed; a job still there with no attempts left failed for good.
 */
export async function lockFinishedBatches(db: Session, limit: number): Promise<FinishedBatchRow[]> {
  const rows = await db.query(sql`
    with finished as (
      select b.id from ledgerbox.batch_runs b
      where b.finished_at is null
        and not exists (select 1 from ledgerbox.batch_job_states s where s.batch_id = b.id and s.state in ('waiting', 'running'))
      order by b.id
      limit ${limit}
      for update of b skip locked
    )
    select b.id::text as id, b.name, b.task, b.jobs, ${iso('b.started_at')} as started_at, b.started_snapshot::text as started_snapshot,
      o.completed, o.failed
    from finished f join ledgerbox.batch_runs b on b.id = f.id
    cross join lateral (
      select count(*) filter (where s.state = 'completed')::int as completed, count(*) filter (where s.state = 'failed')::int as failed
      from ledgerbox.batch_job_states s where s.batch_id = b.id
    ) o
    order by b.id`);
  return rows.map((row) => readRow(FinishedBatchRow, row, 'finished batch'));
}

export const BatchMovementRow = object({ currency: string(), moved: Int8Text, transfers: number() });

/** Per currency, the posted money of the transfers committed since the batch was enqueued (its snapshot did not see them). */
export async function selectBatchMovement(db: Session, startedSnapshot: string): Promise<Infer<typeof BatchMovementRow>[]> {
  const rows = await db.query(sql`
    select e.currency, coalesce(sum(e.amount) filter (where e.amount > 0), 0)::text as moved, count(distinct t.id)::int as transfers
    from ledgerbox.transfers t join ledgerbox.entries e on e.transfer_id = t.id
    where e.phase = 'posted'
      and t.created_xact >= pg_snapshot_xmin(${startedSnapshot}::pg_snapshot)
      and not pg_visible_in_snapshot(t.created_xact, ${startedSnapshot}::pg_snapshot)
    group by e.currency order by e.currency`);
  return rows.map((row) => readRow(BatchMovementRow, row, 'batch movement'));
}

export const BatchWorkflowsRow = object({ completed: number(), failed: number(), compensated: number() });

/** The workflows that ended (completed, failed, compensated) since the batch was enqueued. */
export async function selectBatchWorkflows(db: Session, since: Date): Promise<Infer<typeof BatchWorkflowsRow>> {
  const [row] = await db.query(sql`
    select count(*) filter (where status = 'completed')::int as completed,
      count(*) filter (where status in ('failed', 'compensation_failed'))::int as failed,
      count(*) filter (where status = 'compensated')::int as compensated
    from ledgerbox.workflows
    where updated_at >= ${since.toISOString()}::timestamptz`);
  return readRow(BatchWorkflowsRow, row, 'batch workflows');
}

export async function finishBatch(
  db: Session,
  batch: { id: string; completed: number; failed: number; movement: unknown; alertId: string },
): Promise<Date> {
  const [row] = await db.query(sql`
    update ledgerbox.batch_runs set finished_at = now(), completed = ${batch.completed}, failed = ${batch.failed},
      movement = ${JSON.stringify(batch.movement)}::jsonb, alert_id = ${batch.alertId}::bigint
    where id = ${batch.id}::bigint and finished_at is null
    returning ${iso('finished_at')} as finished_at`);
  return readRow(object({ finished_at: TimestampText }), row, 'finished batch').finished_at;
}
