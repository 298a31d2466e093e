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
 */
export async function unlockStaleWorkers(db: Session, staleAfter_ms: number): Promise<string[]> {
  const rows = await db.query(sql`
    with stale as (
      delete from ledgerbox.workers
      where heartbeat_at < now() - make_interval(secs => ${staleAfter_ms / 1000})
      returning worker_id
    )
    select worker_id from stale`);
  const ids = rows.map((row) => readRow(WorkerIdRow, row, 'worker').worker_id);
  if (ids.length > 0) await db.query(sql`select graphile_worker.force_unlock_workers(${ids}::text[])`);
  return ids;
}
