-- Stop a running or failed workflow and give the money back: it is marked failed ("cancelled
-- by <you>: <reason>") and its compensation (void the hold, or reverse what was posted) is
-- enqueued to run now. Prints the record in ledgerbox.operator_actions (your database user and
-- the reason) and the workflow's status; a worker then runs the compensation.
--
--   psql "$DATABASE_URL" -v id=<workflow id> -v reason='customer asked to cancel (TICKET-9)' -f sql/cancel_workflow.sql
--
-- Refused, nothing changed (psql prints the ERROR and exits 3):
--   a reason is required: say why the workflow is cancelled
--   no workflow <id>
--   workflow <id> (<kind> <key>) is <status>: only a running or failed workflow can be cancelled
--     (HINT: a completed workflow is corrected with a reversal transfer)
\set ON_ERROR_STOP on
\if :{?id}
\else
do $$ begin raise exception 'sql/cancel_workflow.sql needs a workflow id: psql "$DATABASE_URL" -v id=<workflow id> -v reason=''why'' -f sql/cancel_workflow.sql'; end $$;
\endif
\if :{?reason}
\else
\set reason ''
\endif

begin;
select ledgerbox.cancel_workflow(:'id', :'reason') as step;
select a.performed_by, a.performed_at, a.action, a.target, a.reason, a.details
from ledgerbox.operator_actions a
where a.xmin = pg_current_xact_id()::xid
order by a.id;
select m.workflow_id, m.kind, m.key, m.status, m.source_account, m.source_amount, m.source_currency, m.hold_id
from ledgerbox.workflow_money m
where m.workflow_id = :'id';
commit;
