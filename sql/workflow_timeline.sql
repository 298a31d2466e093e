-- Where did this workflow break? What it is about (kind, key, status, accounts, amounts in minor
-- units, hold, settlement), then its story in order: created, every step attempt with its
-- outcome, duration and full error, the transfers and holds it made, its alerts, what
-- operators did to it and why, and the jobs still pending for it.
--
--   psql "$DATABASE_URL" -v id=3f0c2a8e-5b7d-4c1e-9a6f-0d2b4e8c1a57 -f sql/workflow_timeline.sql
--
-- The workflow id is in sql/failed_jobs.sql and sql/stuck_workflows.sql.
\set ON_ERROR_STOP on
\if :{?id}
\else
do $$ begin raise exception 'sql/workflow_timeline.sql needs a workflow id: psql "$DATABASE_URL" -v id=<workflow id> -f sql/workflow_timeline.sql'; end $$;
\endif

select m.workflow_id, m.kind, m.key, m.status, m.source_account, m.source_amount, m.source_currency,
  m.target_account, m.target_amount, m.target_currency, m.hold_id, m.settlement_id
from ledgerbox.workflow_money m
where m.workflow_id = :'id';

select t.at, t.event, t.step, t.outcome, t.detail
from ledgerbox.workflow_timeline t
where t.workflow_id = :'id'
order by t.at, case t.event when 'created' then 0 when 'attempt' then 1 when 'transfer' then 2 else 3 end;
