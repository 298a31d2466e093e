-- A leaner step record: a step's result is kept on the attempt that produced it, so a step
-- writes one row (its attempt, result included) instead of two (a step_results row and a
-- step_attempts row, each with its own foreign-key check and indexes). See docs/steps-round3.md
-- for what it bought.
--
-- What stays as it was for every reader:
-- - ledgerbox.step_results is now a view with the same name and columns (workflow_id, step,
--   result, recorded_at) over the attempts that carry a result; every view, function and psql
--   query that read the table reads it unchanged.
-- - Exactly once: at most one result per workflow step, now by a unique index on the attempts
--   (workflow_id, step) where the result is set, as the table's primary key did before; the
--   writers still write it under the workflow's row lock, fenced by the job's holder and the
--   workflow's xmin (finish_step below, as in 0007).
-- - Append-only: the attempts refuse UPDATE and DELETE (0002's trigger); an UPDATE or DELETE
--   through the view reaches that trigger and is refused the same way. An INSERT through the
--   view is refused by name: a result is written with its attempt.
--
-- The foreign key from an attempt to its workflow stays: it is one check per step now (it was
-- two), the row it checks is the one the same statement has just locked FOR UPDATE, and it is
-- what keeps a hand-written INSERT from recording an attempt of no workflow. Measured without it
-- in docs/steps-round3.md.

alter table ledgerbox.step_attempts add column result jsonb;

comment on column ledgerbox.step_attempts.result is
  'The step''s result, on the succeeded attempt that recorded it: at most one per workflow step (step_attempts_one_result). Read as ledgerbox.step_results.';

-- The results recorded so far, moved onto their attempts. A result's attempt is the step's first
-- succeeded attempt (a step with a result never runs again: later deliveries are already_done);
-- a result without one (none is expected) keeps its own succeeded attempt, dated when it was
-- recorded, so no result is lost. The attempts are append-only for everyone but this migration.
alter table ledgerbox.step_attempts disable trigger step_attempts_append_only;

with carrier as (
  select distinct on (a.workflow_id, a.step) a.id, r.result
  from ledgerbox.step_results r
  join ledgerbox.step_attempts a on a.workflow_id = r.workflow_id and a.step = r.step and a.outcome = 'succeeded'
  order by a.workflow_id, a.step, a.id
)
update ledgerbox.step_attempts a set result = carrier.result
from carrier where a.id = carrier.id;

insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, outcome, started_at, finished_at, result)
select r.workflow_id, r.step, tried.failures + 1, greatest(tried.failures + 1, coalesce(tried.budget, 1)), 'succeeded',
  r.recorded_at, r.recorded_at, r.result
from ledgerbox.step_results r
cross join lateral (
  select count(*) filter (where a.outcome = 'failed')::int as failures, max(a.max_attempts) as budget
  from ledgerbox.step_attempts a where a.workflow_id = r.workflow_id and a.step = r.step
) tried
where not exists (
  select 1 from ledgerbox.step_attempts a where a.workflow_id = r.workflow_id and a.step = r.step and a.result is not null
);

alter table ledgerbox.step_attempts enable trigger step_attempts_append_only;

-- Exactly once, as the primary key of step_results was: a second result for a step is refused
-- (unique_violation), whoever writes it.
create unique index step_attempts_one_result on ledgerbox.step_attempts (workflow_id, step) where result is not null;

-- A result belongs to a succeeded attempt, and (from now on) every succeeded attempt carries
-- its result. NOT VALID: attempts recorded before this migration are not re-checked (a step
-- that ran twice before already_done existed has one succeeded attempt with the result and one
-- without); every new row is.
alter table ledgerbox.step_attempts add constraint step_attempt_result_when_succeeded
  check ((outcome = 'succeeded') = (result is not null)) not valid;

-- The table gives way to a view of the same name and columns. Renaming first keeps the views
-- that read it (failed_jobs) pointing at it until they are redefined over the view below.
alter table ledgerbox.step_results rename to step_results_before_lean_steps;

create view ledgerbox.step_results as
select a.workflow_id, a.step, a.result, a.finished_at as recorded_at
from ledgerbox.step_attempts a
where a.result is not null;

comment on view ledgerbox.step_results is
  'Every step''s result, once per workflow step: the result of its succeeded attempt (ledgerbox.step_attempts.result). Read-only; written by the step engine with the attempt.';

create function ledgerbox.refuse_step_result_insert() returns trigger
language plpgsql as $$
begin
  raise exception 'ledgerbox.step_results is a view of the succeeded attempts: a step''s result is written with its attempt (ledgerbox.step_attempts.result), by the step engine'
    using errcode = 'insufficient_privilege';
end
$$;

create trigger step_results_written_with_attempt instead of insert on ledgerbox.step_results
  for each row execute function ledgerbox.refuse_step_result_insert();

-- failed_jobs as in 0003, reading the view.
create or replace view ledgerbox.failed_jobs as
with worker_jobs as (
  select
    j.id as job_id,
    t.identifier as task,
    j.attempts::int as attempts,
    j.max_attempts::int as max_attempts,
    j.last_error,
    j.updated_at as failed_at,
    case when j.attempts >= j.max_attempts then 'failed' else 'retrying' end as state,
    -- guarded: one malformed payload (the very job that failed) must not break the whole view
    case when t.identifier = 'ledgerbox:step' and j.payload->>'workflowId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
      then (j.payload->>'workflowId')::uuid end as workflow_id,
    case when t.identifier = 'ledgerbox:step' then j.payload->>'step' end as step,
    j.locked_by is not null as running
  from graphile_worker._private_jobs j
  join graphile_worker._private_tasks t on t.id = j.task_id
  where j.last_error is not null
),
last_step_failures as (
  select distinct on (a.workflow_id, a.step)
    a.job_id,
    a.attempt,
    a.max_attempts,
    a.error,
    a.finished_at,
    a.workflow_id,
    a.step
  from ledgerbox.step_attempts a
  join ledgerbox.workflows w on w.id = a.workflow_id
  where a.outcome = 'failed'
    and a.finished_at > coalesce(w.resumed_at, '-infinity')
    and not exists (select 1 from ledgerbox.step_results r where r.workflow_id = a.workflow_id and r.step = a.step)
  order by a.workflow_id, a.step, a.id desc
),
step_jobs as (
  select
    f.job_id,
    'ledgerbox:step' as task,
    f.attempt as attempts,
    f.max_attempts,
    f.error as last_error,
    f.finished_at as failed_at,
    -- retrying only while ledgerbox will still run the step: attempts left and the workflow in the
    -- state that runs it (a compensated or cancelled workflow's failed step is failed for good)
    case when f.attempt < f.max_attempts and w.status = case when f.step = 'compensate' then 'failed' else 'running' end
      then 'retrying' else 'failed' end as state,
    f.workflow_id,
    f.step,
    false as running
  from last_step_failures f
  join ledgerbox.workflows w on w.id = f.workflow_id
)
select
  failed.job_id,
  failed.task,
  failed.state,
  failed.attempts,
  failed.max_attempts,
  failed.failed_at,
  failed.last_error,
  failed.workflow_id,
  failed.step,
  m.kind as workflow_kind,
  m.status as workflow_status,
  m.source_account,
  m.target_account,
  m.source_amount as amount,
  m.source_currency as currency,
  m.hold_id,
  m.settlement_id,
  failed.running
from (select * from worker_jobs union all select * from step_jobs) failed
left join ledgerbox.workflow_money m on m.workflow_id = failed.workflow_id;

drop table ledgerbox.step_results_before_lean_steps;

-- Who holds a job now (as in 0002), and the retiring of a finished step's job (as in 0007), in
-- PL/pgSQL: a SECURITY DEFINER SQL function is never inlined, and PostgreSQL 15 parses and plans
-- an SQL function's body again in every transaction that calls it; PL/pgSQL keeps its plans for
-- the session, and every step calls both.
create or replace function ledgerbox.job_lock_holder(job_id bigint) returns text
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
begin
  return (select j.locked_by from graphile_worker._private_jobs j where j.id = job_lock_holder.job_id);
end
$$;

create or replace function ledgerbox.retire_step_job(job_id bigint, worker_id text, workflow_id uuid, step text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  delete from graphile_worker._private_jobs j
  using graphile_worker._private_tasks t
  where j.id = retire_step_job.job_id
    and j.locked_by = retire_step_job.worker_id
    and j.job_queue_id is null
    and t.id = j.task_id and t.identifier = 'ledgerbox:step'
    and j.payload->>'workflowId' = retire_step_job.workflow_id::text
    and j.payload->>'step' = retire_step_job.step
    and exists (select 1 from ledgerbox.step_attempts a
                where a.workflow_id = retire_step_job.workflow_id and a.step = retire_step_job.step and a.result is not null);
  return found;
end
$$;

-- A successful step's bookkeeping, as in 0007: same arguments, same answers, the same checks
-- made under the workflow's row lock. Two things less per step:
-- - its result is on its attempt: one insert where there were two;
-- - the workflow is locked by the UPDATE that records its new state, with the checks (the job
--   is still this worker's, the row is still the version the step read) in its WHERE clause,
--   evaluated on the locked row (READ COMMITTED re-evaluates them on the newest version when a
--   concurrent writer got there first). Before, a SELECT … FOR UPDATE locked the row (a tuple
--   lock, its own WAL record) and the UPDATE then wrote it. When the UPDATE matches nothing,
--   nothing has been written, and the function says why, as before: missing, fenced, changed.
create or replace function ledgerbox.finish_step(
  workflow_id uuid,
  step text,
  seen_version xid,
  job_id bigint,
  worker_id text,
  max_attempts integer,
  started_at timestamptz,
  result jsonb,
  new_status text,
  new_current_step text,
  jobs json
) returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  resumed timestamptz;
begin
  update ledgerbox.workflows w
  set status = finish_step.new_status, current_step = finish_step.new_current_step, updated_at = now()
  where w.id = finish_step.workflow_id
    and (finish_step.seen_version is null or w.xmin = finish_step.seen_version)
    and (finish_step.worker_id is null or ledgerbox.job_lock_holder(finish_step.job_id) = finish_step.worker_id)
  returning w.resumed_at into resumed;
  if not found then
    if not exists (select 1 from ledgerbox.workflows w where w.id = finish_step.workflow_id) then
      return 'missing';
    end if;
    if finish_step.worker_id is not null and ledgerbox.job_lock_holder(finish_step.job_id) is distinct from finish_step.worker_id then
      return 'fenced';
    end if;
    return 'changed';
  end if;

  -- the attempt's number: the step's failures since the last resume, plus one; its result on it
  -- (a second result for this step is refused by step_attempts_one_result, and this whole
  -- statement with it)
  insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, job_id, worker_id, outcome, error, started_at, result)
  values (
    finish_step.workflow_id, finish_step.step,
    1 + (select count(*)::int from ledgerbox.step_attempts a
         where a.workflow_id = finish_step.workflow_id and a.step = finish_step.step and a.outcome = 'failed'
           and a.finished_at > coalesce(resumed, '-infinity')),
    finish_step.max_attempts, finish_step.job_id, finish_step.worker_id, 'succeeded', null, finish_step.started_at,
    finish_step.result);

  if finish_step.jobs is not null then
    perform ledgerbox.add_jobs(finish_step.jobs);
  end if;
  if finish_step.worker_id is not null then
    perform ledgerbox.retire_step_job(finish_step.job_id, finish_step.worker_id, finish_step.workflow_id, finish_step.step);
  end if;
  return 'finished';
end
$$;

revoke all on function ledgerbox.refuse_step_result_insert() from public;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant select on ledgerbox.step_results to ledgerbox_app;
  end if;
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_reporting') then
    grant select on ledgerbox.step_results to ledgerbox_reporting;
  end if;
end
$$;
