-- Run one failed job again, once its cause is fixed. A job still in graphile-worker's queue is
-- rescheduled now with fresh attempts; a workflow step that failed for good (its job id is in
-- sql/failed_jobs.sql) resumes its workflow at that step. Recorded in
-- ledgerbox.operator_actions with your database user and the reason, shown below the result.
--
--   psql "$DATABASE_URL" -v id=1234 -v reason='mail server fixed (INC-42)' -f sql/retry_job.sql
--
-- Refused, nothing changed (psql prints the ERROR and exits 3):
--   a reason is required: say what was fixed
--   no failed job <id>
--   job <id> is running (locked by <worker> since <time>): let it finish
--   job <id> has not failed: nothing to retry
--   job <id> (step <step> of workflow <id>) is still being retried by ledgerbox: wait for it, or
--     resume the workflow once it has failed
--   workflow <id> (...) is <status>: only a failed workflow not yet compensated, or one whose
--     compensation failed, can be resumed
\set ON_ERROR_STOP on
\if :{?id}
\else
do $$ begin raise exception 'sql/retry_job.sql needs a job id: psql "$DATABASE_URL" -v id=<job id> -v reason=''what was fixed'' -f sql/retry_job.sql'; end $$;
\endif
\if :{?reason}
\else
\set reason ''
\endif

begin;
select ledgerbox.retry_job(:'id', :'reason') as result;
select a.performed_by, a.performed_at, a.action, a.target, a.reason, a.details
from ledgerbox.operator_actions a
where a.xmin = pg_current_xact_id()::xid
order by a.id;
commit;
