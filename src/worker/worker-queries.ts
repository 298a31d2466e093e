import { sql } from '@databases/pg';
import { object, string } from 'superstruct';
import type { Session } from '../db/handle.js';
import { readRow } from '../db/rows.js';

export async function heartbeat(db: Session, workerIds: readonly string[], process: string): Promise<void> {
  await db.query(sql`
    insert into ledgerbox.workers (worker_id, process)
    select id, ${process} from unnest(${workerIds}::text[]) as id
    on conflict (worker_id) do update set heartbeat_at = now()`);
}

export async function forgetWorkers(db: Session, workerIds: readonly string[]): Promise<void> {
  await db.query(sql`delete from ledgerbox.workers where worker_id = any(${workerIds}::text[])`);
}

const WorkerIdRow = object({ worker_id: string() });

/**
 * Unlocks the jobs of workers whose heartbeat stopped (a process killed with SIGKILL), so they
 * run again now rather than after graphile-worker's four-hour lock timeout. Returns their ids.
 *
 * A worker is registered by its first heartbeat, a moment after graphile-worker has started
 * taking jobs: one killed in between never appears here. So a holder that is not registered
 * and has held one of ledgerbox's own jobs (`ledgerbox:*`) for longer than the stale delay is
 * taken for dead too. Only ledgerbox's tasks count as evidence: a job of another task may be
 * held by some other graphile-worker deployment sharing the schema, which ledgerbox must not
 * second-guess. Re-running a step whose worker was alive is safe anyway (steps are fenced).
 */
export async function unlockStaleWorkers(db: Session, staleAfter_ms: number): Promise<string[]> {
  const rows = await db.query(sql`
    with stale as (
      delete from ledgerbox.workers
      where heartbeat_at < now() - make_interval(secs => ${staleAfter_ms / 1000})
      returning worker_id
    ),
    never_registered as (
      select distinct j.locked_by as worker_id
      from graphile_worker._private_jobs j
      join graphile_worker._private_tasks t on t.id = j.task_id
      where j.locked_by is not null
        and j.locked_at < now() - make_interval(secs => ${staleAfter_ms / 1000})
        and t.identifier like 'ledgerbox:%'
        and not exists (select 1 from ledgerbox.workers w where w.worker_id = j.locked_by)
    )
    select worker_id from stale
    union
    select worker_id from never_registered`);
  const ids = rows.map((row) => readRow(WorkerIdRow, row, 'worker').worker_id);
  if (ids.length > 0) await db.query(sql`select graphile_worker.force_unlock_workers(${ids}::text[])`);
  return ids;
}
