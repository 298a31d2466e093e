-- What failed, for whom, how much money, and why? Every failed job, newest first, with the
-- money it concerns (the workflow, its source account, amount in minor units, currency and
-- hold), then how many per task and state.
--   state 'failed':   no attempts left; nothing happens until an operator acts
--                     (sql/retry_job.sql, sql/resume_workflow.sql or sql/cancel_workflow.sql)
--   state 'retrying': failed, but another attempt is scheduled
--   running:          a worker has it right now (it cannot be retried until it finishes)
-- `error` is the first line of the last error; a workflow's full errors, every attempt, are
-- in sql/workflow_timeline.sql.
--
--   psql "$DATABASE_URL" -f sql/failed_jobs.sql
--   psql "$DATABASE_URL" -v task=shop.send_receipt -f sql/failed_jobs.sql   # one task only
\set ON_ERROR_STOP on
\if :{?task}
\else
\set task ''
\endif

select
  f.job_id,
  f.task,
  f.state,
  f.attempts || '/' || f.max_attempts as attempts,
  f.running,
  f.failed_at,
  f.workflow_id,
  f.step,
  f.workflow_status,
  f.source_account,
  f.amount,
  f.currency,
  f.hold_id,
  split_part(f.last_error, E'\n', 1) as error
from ledgerbox.failed_jobs f
where f.task = coalesce(nullif(:'task', ''), f.task)
order by f.failed_at desc, f.job_id desc;

select f.task, f.state, count(*) as jobs, count(distinct f.workflow_id) as workflows
from ledgerbox.failed_jobs f
where f.task = coalesce(nullif(:'task', ''), f.task)
group by f.task, f.state
order by f.task, f.state;
