-- Resume a failed workflow once its cause is fixed (the provider is back, the data corrected):
-- its failed step runs again with its full retries, reading fresh state; a workflow whose
-- compensation failed runs its compensation again. Only before its compensation has run (see
-- the worker's compensationDelay_ms). Prints the step enqueued, the record in
-- ledgerbox.operator_actions (your database user and the reason) and the workflow's status.
--
--   psql "$DATABASE_URL" -v id=<workflow id> -v reason='FX provider back (INC-42)' -f sql/resume_workflow.sql
--
-- Refused, nothing changed (psql prints the ERROR and exits 3):
--   a reason is required: say why the workflow may run again
--   no workflow <id>
--   workflow <id> (<kind> <key>) is <status>: only a failed workflow not yet compensated, or one
--     whose compensation failed, can be resumed  (HINT: a completed workflow is corrected with
--     a reversal transfer)
\set ON_ERROR_STOP on
\if :{?id}
\else
do $$ begin raise exception 'sql/resume_workflow.sql needs a workflow id: psql "$DATABASE_URL" -v id=<workflow id> -v reason=''why it may run again'' -f sql/resume_workflow.sql'; end $$;
\endif
\if :{?reason}
\else
\set reason ''
\endif

begin;
select ledgerbox.resume_workflow(:'id', :'reason') as step;
select a.performed_by, a.performed_at, a.action, a.target, a.reason, a.details
from ledgerbox.operator_actions a
where a.xmin = pg_current_xact_id()::xid
order by a.id;
select m.workflow_id, m.kind, m.key, m.status, m.source_account, m.source_amount, m.source_currency, m.hold_id
from ledgerbox.workflow_money m
where m.workflow_id = :'id';
commit;
