-- Which workflows are neither finished nor moving? Not terminal (running, failed and waiting
-- for compensation, or compensation failed) and untouched for longer than `older_than`
-- (default 15 minutes), longest stuck first, with the money they hold (minor units), their
-- last error's first line and how many jobs are still queued for them (0 for a running
-- workflow means nothing will move it: resume or cancel it), its definition version and why it
-- is listed (a worker that lacks its version held it back; a wait long past its wake time).
--
--   psql "$DATABASE_URL" -f sql/stuck_workflows.sql
--   psql "$DATABASE_URL" -v older_than='2 hours' -f sql/stuck_workflows.sql
\set ON_ERROR_STOP on
\if :{?older_than}
\else
\set older_than '15 minutes'
\endif

select
  s.workflow_id,
  s.kind,
  s.key,
  s.status,
  s.current_step,
  date_trunc('second', s.stuck_for) as stuck_for,
  s.source_account,
  s.amount,
  s.currency,
  s.pending_jobs,
  split_part(s.last_error, E'\n', 1) as last_error,
  s.version,
  s.reason
from ledgerbox.stuck_workflows(:'older_than'::interval) s;
