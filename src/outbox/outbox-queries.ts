import { sql } from '@databases/pg';
import { object, string } from 'superstruct';
import type { Session } from '../db/handle.js';
import { readRow } from '../db/rows.js';

export interface JobSpec {
  task: string;
  payload: unknown;
  queue: string | null;
  runAt: Date | null;
  maxAttempts: number | null;
  jobKey: string | null;
  priority: number | null;
}

const JobIdRow = object({ id: string() });

/**
 * graphile-worker's own add_jobs (through ledgerbox.add_jobs, which the application role may
 * call), on the caller's connection: the jobs become visible to workers when, and only if,
 * the caller's transaction commits.
 */
/** Jobs as ledgerbox.add_jobs takes them: a JSON array of graphile-worker job specs. @internal */
export function jobSpecsJson(jobs: readonly JobSpec[]): string {
  return JSON.stringify(
    jobs.map((job) => ({
      identifier: job.task,
      payload: job.payload,
      queue_name: job.queue,
      run_at: job.runAt?.toISOString() ?? null,
      max_attempts: job.maxAttempts,
      job_key: job.jobKey,
      priority: job.priority,
    })),
  );
}

export async function addJobs(db: Session, jobs: readonly JobSpec[], jobKeyMode: 'replace' | 'preserve_run_at'): Promise<string[]> {
  const specs = jobSpecsJson(jobs);
  const rows = await db.query(sql`
    select id::text as id from ledgerbox.add_jobs(${specs}::json, ${jobKeyMode === 'preserve_run_at'}) as id`);
  return rows.map((row) => readRow(JobIdRow, row, 'job').id);
}
