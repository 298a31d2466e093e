-- Workflows run as exactly-once steps on graphile-worker: their state, every attempt of every
-- step, the outcomes of external calls, the alerts they raise, and the first workflow, the
-- currency exchange. Everything an operator needs to answer "where did it break?" is here.

create table ledgerbox.workflows (
  id uuid primary key default gen_random_uuid(),
  kind text not null,
  key text not null,
  status text not null default 'running',
  current_step text not null,
  -- identifiers of what the workflow is about (account keys, transfer ids), never amounts to reuse
  subject jsonb not null default '{}',
  failed_step text,
  failure_reason text,
  -- set by a resume: a step's attempts are counted from here, so it gets its full retries again
  resumed_at timestamptz(3),
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3) not null default now(),
  constraint workflow_key_unique unique (key),
  constraint workflow_status_known check (status in ('running', 'completed', 'failed', 'compensated', 'compensation_failed')),
  constraint workflow_failure_has_reason check ((status in ('failed', 'compensated', 'compensation_failed')) = (failure_reason is not null)),
  constraint workflow_subject_is_object check (jsonb_typeof(subject) = 'object')
);

create index workflows_unfinished on ledgerbox.workflows (updated_at) where status in ('running', 'failed');

comment on table ledgerbox.workflows is
  'One row per workflow. failed: a step failed for good and compensation is under way; compensated: the money is back where it started.';

-- A step's result is written once, in the transaction that did its work: a redelivered job
-- finds it and does nothing.
create table ledgerbox.step_results (
  workflow_id uuid not null references ledgerbox.workflows (id),
  step text not null,
  result jsonb not null,
  recorded_at timestamptz(3) not null default now(),
  primary key (workflow_id, step)
);

-- Every attempt of every step, with its full error: graphile-worker keeps only the last one.
create table ledgerbox.step_attempts (
  id bigint generated always as identity primary key,
  workflow_id uuid not null references ledgerbox.workflows (id),
  step text not null,
  attempt integer not null,
  -- the step's budget when this attempt ran: attempt = max_attempts and failed means failed for good
  max_attempts integer not null,
  job_id bigint,
  worker_id text,
  outcome text not null,
  error text,
  started_at timestamptz(3) not null,
  finished_at timestamptz(3) not null default now(),
  constraint step_attempt_outcome_known check (outcome in ('succeeded', 'failed', 'already_done')),
  constraint step_attempt_error_when_failed check ((outcome = 'failed') = (error is not null))
);

create index step_attempts_workflow on ledgerbox.step_attempts (workflow_id, id);

-- What an external provider answered, keyed by the idempotency key sent to it, recorded before
-- anything depends on it: a retry reuses the answer instead of asking again.
create table ledgerbox.provider_calls (
  idempotency_key text primary key,
  workflow_id uuid not null references ledgerbox.workflows (id),
  step text not null,
  provider text not null,
  response jsonb not null,
  recorded_at timestamptz(3) not null default now()
);

create table ledgerbox.alerts (
  id bigint generated always as identity primary key,
  severity text not null,
  kind text not null,
  workflow_id uuid references ledgerbox.workflows (id),
  message text not null,
  details jsonb not null default '{}',
  created_at timestamptz(3) not null default now(),
  constraint alert_severity_known check (severity in ('critical', 'warning', 'info'))
);

create index alerts_created_at on ledgerbox.alerts (created_at);

-- The currency exchange: what was asked, the hold that reserves the source amount, and the
-- quote, stored once and reused by every retry.
create table ledgerbox.exchanges (
  workflow_id uuid primary key references ledgerbox.workflows (id),
  source_account text not null,
  target_account text not null,
  source_currency text not null references ledgerbox.currencies (code),
  target_currency text not null references ledgerbox.currencies (code),
  source_amount bigint not null,
  hold_id uuid not null references ledgerbox.transfers (id),
  quote_id text,
  rate_amount bigint,
  rate_scale smallint,
  quote_expires_at timestamptz(3),
  target_amount bigint,
  settlement_id uuid references ledgerbox.transfers (id),
  created_at timestamptz(3) not null default now(),
  constraint exchange_amount_positive check (source_amount > 0),
  constraint exchange_currencies_differ check (source_currency <> target_currency),
  constraint exchange_rate_positive check (rate_amount is null or rate_amount > 0),
  constraint exchange_quote_whole check ((quote_id is null) = (rate_amount is null) and (rate_amount is null) = (quote_expires_at is null))
);

-- Which graphile-worker workers are alive: a worker killed with SIGKILL leaves its jobs locked
-- (graphile-worker frees them only after 4 hours); the others unlock them once its heartbeat
-- is stale.
create table ledgerbox.workers (
  worker_id text primary key,
  process text not null,
  started_at timestamptz(3) not null default now(),
  heartbeat_at timestamptz(3) not null default now()
);

-- Who holds a job now: a step checks it still holds its own before it writes (fencing against
-- a peer that took it for dead). graphile-worker's tables are row-level secured, hence a function.
create function ledgerbox.job_lock_holder(job_id bigint) returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select locked_by from graphile_worker._private_jobs where id = job_id
$$;

revoke all on function ledgerbox.job_lock_holder(bigint) from public;

create function ledgerbox.refuse_change_to_workflow_record() returns trigger
language plpgsql as $$
begin
  raise exception '%.% is append-only: % refused', tg_table_schema, tg_table_name, tg_op
    using errcode = 'insufficient_privilege';
end
$$;

create trigger step_results_append_only before update or delete on ledgerbox.step_results
  for each row execute function ledgerbox.refuse_change_to_workflow_record();
create trigger step_attempts_append_only before update or delete on ledgerbox.step_attempts
  for each row execute function ledgerbox.refuse_change_to_workflow_record();
create trigger provider_calls_append_only before update or delete on ledgerbox.provider_calls
  for each row execute function ledgerbox.refuse_change_to_workflow_record();
create trigger alerts_append_only before update or delete on ledgerbox.alerts
  for each row execute function ledgerbox.refuse_change_to_workflow_record();

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant select, insert on ledgerbox.workflows, ledgerbox.step_results, ledgerbox.step_attempts,
      ledgerbox.provider_calls, ledgerbox.alerts, ledgerbox.exchanges to ledgerbox_app;
    grant update (status, current_step, failed_step, failure_reason, resumed_at, updated_at) on ledgerbox.workflows to ledgerbox_app;
    grant update (quote_id, rate_amount, rate_scale, quote_expires_at, target_amount, settlement_id) on ledgerbox.exchanges to ledgerbox_app;
    grant select, insert, update, delete on ledgerbox.workers to ledgerbox_app;
    grant execute on function ledgerbox.job_lock_holder(bigint) to ledgerbox_app;
  end if;
end
$$;
