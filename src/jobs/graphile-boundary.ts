import { sql } from '@databases/pg';
import { array, object, string, union } from 'superstruct';
import type { Session } from '../db/handle.js';
import { CaughtDatabaseError, readRow, rebuiltDatabaseError } from '../db/rows.js';

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

const TryAddJobsAnswer = union([object({ ids: array(string()) }), object({ error: CaughtDatabaseError })]);

/**
 * addJobs in one statement that never leaves the caller's transaction failed
 * (ledgerbox.try_add_jobs, migration 0008): for inOneStatement. An error the function caught
 * (and undid) is thrown as the node-postgres error the statement would have raised.
 */
export async function tryAddJobs(db: Session, jobs: readonly JobSpec[], jobKeyMode: 'replace' | 'preserve_run_at'): Promise<string[]> {
  const [row] = await db.query(sql`
    select ledgerbox.try_add_jobs(${jobSpecsJson(jobs)}::json, ${jobKeyMode === 'preserve_run_at'}) as answer`);
  const answer = readRow(TryAddJobsAnswer, JSON.parse(readRow(object({ answer: string() }), row, 'added jobs').answer), 'added jobs');
  if ('error' in answer) throw rebuiltDatabaseError(answer.error);
  return answer.ids;
}
