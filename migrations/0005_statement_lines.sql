-- Statement lines: the transactions a bank's or processor's statement lists between its
-- balances, so reconciliation can check that the statement adds up (opening + lines = closing)
-- and match each line to the ledger transfer whose key is the line's reference.
-- Also batch runs: a fan-out named as a batch, summarised (money moved, jobs and workflows
-- completed or failed) once its last job has finished.

create table ledgerbox.statement_lines (
  statement_id bigint not null references ledgerbox.statements (id),
  line integer not null,
  account text not null,
  currency text not null references ledgerbox.currencies (code),
  -- when the bank booked it: inside the account's statement period (after its opening balance,
  -- at or before its closing one)
  as_of timestamptz(3) not null,
  -- signed minor units: positive adds to the account's balance, as the ledger's entries do
  amount bigint not null,
  -- the ledgerbox transfer key the line is matched to; null when the bank gives none
  reference text,
  description text,
  primary key (statement_id, line),
  constraint statement_line_amount_not_zero check (amount <> 0),
  constraint statement_line_reference_format check (reference is null or length(reference) between 1 and 200),
  constraint statement_line_description_length check (description is null or length(description) <= 1000)
);

-- reconciliation reads the lines of one statement and account at a time
create index statement_lines_statement_account on ledgerbox.statement_lines (statement_id, account, as_of);
create index statement_balances_statement_account on ledgerbox.statement_balances (statement_id, account, as_of);

-- a balance row may carry the bank's own words too ("opening balance")
alter table ledgerbox.statement_balances add column description text;
alter table ledgerbox.statement_balances add constraint statement_balance_description_length
  check (description is null or length(description) <= 1000);

create trigger statement_lines_append_only before update or delete on ledgerbox.statement_lines
  for each row execute function ledgerbox.refuse_change_to_workflow_record();

alter table ledgerbox.reconciliation_findings drop constraint finding_kind_known;
alter table ledgerbox.reconciliation_findings add constraint finding_kind_known check (kind in (
  'balance_drift', 'pending_drift', 'unbalanced_transfer', 'currency_not_zero', 'forbidden_overdraft',
  'failed_not_compensated', 'statement_difference', 'money_in_limbo', 'stuck_workflow',
  'failed_and_compensated', 'failed_job', 'clearing_not_zero', 'statement_difference_within_tolerance',
  'statement_lines_inconsistent', 'statement_line_not_in_ledger', 'statement_line_differs',
  'ledger_movement_not_on_statement'
));

-- A batch run: the jobs of one fanOut given a `batch` name. Its summary is written once, by
-- the first summariseBatches call that finds none of its jobs waiting or running.
create table ledgerbox.batch_runs (
  id bigint generated always as identity primary key,
  name text not null,
  task text not null,
  jobs integer not null,
  started_at timestamptz(3) not null default now(),
  -- what the database had committed when the batch was enqueued: the summary counts the
  -- transfers committed after it
  started_snapshot pg_snapshot not null default pg_current_snapshot(),
  finished_at timestamptz(3),
  completed integer,
  failed integer,
  -- per currency: minor units moved (as text) and transfers; and the workflows that ended
  movement jsonb,
  alert_id bigint references ledgerbox.alerts (id),
  constraint batch_name_format check (length(name) between 1 and 200),
  constraint batch_jobs_positive check (jobs > 0),
  constraint batch_summary_complete check ((finished_at is null) = (completed is null)
    and (finished_at is null) = (failed is null) and (finished_at is null) = (movement is null)),
  constraint batch_outcomes_add_up check (finished_at is null or completed + failed = jobs)
);

create index batch_runs_open on ledgerbox.batch_runs (id) where finished_at is null;

-- which graphile-worker jobs belong to a batch (graphile-worker deletes a job that completed)
create table ledgerbox.batch_jobs (
  batch_id bigint not null references ledgerbox.batch_runs (id),
  job_id bigint not null,
  primary key (batch_id, job_id)
);

-- Each batch job as graphile-worker has it now, read with the view owner's rights (its tables
-- are row-level secured): gone (completed), waiting or retrying, running, or failed for good.
create view ledgerbox.batch_job_states as
select bj.batch_id, bj.job_id,
  case
    when j.id is null then 'completed'
    when j.locked_at is not null then 'running'
    when j.attempts < j.max_attempts then 'waiting'
    else 'failed'
  end as state
from ledgerbox.batch_jobs bj
left join graphile_worker._private_jobs j on j.id = bj.job_id;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant select, insert on ledgerbox.statement_lines, ledgerbox.batch_runs, ledgerbox.batch_jobs to ledgerbox_app;
    grant select on ledgerbox.batch_job_states to ledgerbox_app;
    grant update (finished_at, completed, failed, movement, alert_id) on ledgerbox.batch_runs to ledgerbox_app;
  end if;
end
$$;
