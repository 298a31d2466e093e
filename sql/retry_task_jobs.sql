-- Run again every job of one task that failed for good (not running), optionally only those
-- that failed since a time: after an outage of what the task talks to. Prints how many were
-- rescheduled, and the record in ledgerbox.operator_actions (your database user, the reason,
-- the job ids).
-- Workflow steps (task ledgerbox:step) are resumed one workflow at a time instead, with
-- sql/resume_workflow.sql: each has its own money to check.
--
--   psql "$DATABASE_URL" -v task=shop.send_receipt -v reason='mail server fixed (INC-42)' -f sql/retry_task_jobs.sql
--   psql "$DATABASE_URL" -v task=shop.send_receipt -v reason='...' -v since='2026-11-21 03:00+00' -f sql/retry_task_jobs.sql
--
-- Refused, nothing changed (psql prints the ERROR and exits 3):
--   a reason is required: say what was fixed
\set ON_ERROR_STOP on
\if :{?task}
\else
do $$ begin raise exception 'sql/retry_task_jobs.sql needs a task: psql "$DATABASE_URL" -v task=<task> -v reason=''what was fixed'' [-v since=<time>] -f sql/retry_task_jobs.sql'; end $$;
\endif
\if :{?reason}
\else
\set reason ''
\endif
\if :{?since}
\else
\set since ''
\endif

begin;
select ledgerbox.retry_task_jobs(:'task', :'reason', nullif(:'since', '')::timestamptz) as retried;
select a.performed_by, a.performed_at, a.action, a.target, a.reason, a.details
from ledgerbox.operator_actions a
where a.xmin = pg_current_xact_id()::xid
order by a.id;
commit;
