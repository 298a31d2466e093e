-- The on-call engineer's view: what failed, for whom, how much money, and why, one query away;
-- and the fix one function call away, with a record of who did what and why.

create table ledgerbox.operator_actions (
  id bigint generated always as identity primary key,
  action text not null,
  target text not null,
  reason text not null,
  performed_by text not null default current_user,
  performed_at timestamptz(3) not null default now(),
  details jsonb not null default '{}',
  constraint operator_action_known check (action in ('retry_job', 'retry_task_jobs', 'resume_workflow', 'cancel_workflow')),
  constraint operator_action_has_reason check (length(btrim(reason)) > 0)
);

create trigger operator_actions_append_only before update or delete on ledgerbox.operator_actions
  for each row execute function ledgerbox.refuse_change_to_workflow_record();

comment on table ledgerbox.operator_actions is 'Append-only audit of every recovery: who (database user), when, what and why.';

-- What money a workflow is about, for joining into every other view.
create view ledgerbox.workflow_money as
select
  w.id as workflow_id,
  w.kind,
  w.key,
  w.status,
  x.source_account,
  x.target_account,
  x.source_amount,
  x.source_currency,
  x.target_amount,
  x.target_currency,
  x.hold_id,
  x.settlement_id
from ledgerbox.workflows w
left join ledgerbox.exchanges x on x.workflow_id = w.id;

-- Every job that has failed, with its money context. Two sources: graphile-worker jobs with an
-- error (host tasks, infrastructure), and workflow steps, whose retries ledgerbox schedules
-- itself. state: 'failed' (no attempts left) or 'retrying'.
create view ledgerbox.failed_jobs as
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

comment on view ledgerbox.failed_jobs is
  'Jobs that failed: graphile-worker jobs with an error and workflow steps with failed attempts, told apart by state (failed | retrying), with the money they concern.';

-- A workflow's story, in order: created, every step attempt (with its full error), the
-- transfers and holds it made, alerts, operator actions, and the jobs still pending for it.
create view ledgerbox.workflow_timeline as
select w.id as workflow_id, w.created_at as at, 'created' as event, null::text as step, null::text as outcome,
  format('%s %s started', w.kind, w.key) as detail
from ledgerbox.workflows w
union all
select a.workflow_id, a.finished_at, 'attempt', a.step, a.outcome,
  format('attempt %s of %s, %s ms%s', a.attempt, a.max_attempts,
    (extract(epoch from a.finished_at - a.started_at) * 1000)::bigint,
    case when a.error is not null then E'\n' || a.error else '' end)
from ledgerbox.step_attempts a
union all
select w.id, t.created_at, 'transfer', t.kind, null,
  format('%s %s: %s', t.kind, t.key,
    (select string_agg(format('%s %s %s', acc.key, e.amount, e.currency), ', ' order by e.leg, e.amount)
     from ledgerbox.entries e join ledgerbox.accounts acc on acc.id = e.account_id where e.transfer_id = t.id))
from ledgerbox.workflows w
-- starts_with, not like: a key's _ and % are characters, not wildcards matching other workflows' transfers
join ledgerbox.transfers t on starts_with(t.key, w.key || ':')
union all
select al.workflow_id, al.created_at, 'alert', al.kind, al.severity, al.message
from ledgerbox.alerts al
where al.workflow_id is not null
union all
select o.target::uuid, o.performed_at, 'operator', o.action, null, format('%s by %s: %s', o.action, o.performed_by, o.reason)
from ledgerbox.operator_actions o
where o.action in ('resume_workflow', 'cancel_workflow')
union all
select (j.payload->>'workflowId')::uuid, j.run_at, 'pending job', j.payload->>'step',
  case when j.locked_by is not null then 'running' else 'waiting' end,
  format('job %s, attempt %s of %s, runs at %s', j.id, j.attempts, j.max_attempts, j.run_at)
from graphile_worker._private_jobs j
join graphile_worker._private_tasks t on t.id = j.task_id
where t.identifier = 'ledgerbox:step'
  and j.payload->>'workflowId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

-- Workflows neither finished nor moving: not terminal, untouched for longer than `older_than`.
-- SECURITY DEFINER so the application and reporting roles, which may not read graphile-worker's
-- tables, can still count a workflow's pending jobs; it only reads.
create function ledgerbox.stuck_workflows(older_than interval default interval '15 minutes')
returns table (workflow_id uuid, kind text, key text, status text, current_step text, stuck_for interval,
  last_error text, source_account text, amount bigint, currency text, pending_jobs bigint)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select w.id, w.kind, w.key, w.status, w.current_step, now() - w.updated_at,
    (select a.error from ledgerbox.step_attempts a where a.workflow_id = w.id and a.error is not null order by a.id desc limit 1),
    m.source_account, m.source_amount, m.source_currency,
    (select count(*) from graphile_worker._private_jobs j where j.payload->>'workflowId' = w.id::text)
  from ledgerbox.workflows w
  join ledgerbox.workflow_money m on m.workflow_id = w.id
  where w.status in ('running', 'failed', 'compensation_failed') and w.updated_at < now() - older_than
  order by w.updated_at
$$;

-- Money in limbo is looked for among the open holds, not among every hold ever made: holds
-- without an expiry are kept in open_hold_expiries too (expires_at null), and leave it when
-- resolved like the others (track_holds deletes by hold id). The expiry task ignores them.
alter table ledgerbox.open_hold_expiries alter column expires_at drop not null;

comment on table ledgerbox.open_hold_expiries is
  'Maintained by triggers on transfers: a row per pending hold (expires_at null when it has no expiry), deleted when the hold is resolved.';

create function ledgerbox.track_holds_without_expiry() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  insert into ledgerbox.open_hold_expiries (hold_id, expires_at)
  select id, null from inserted where kind = 'hold' and expires_at is null;
  return null;
end
$$;

create trigger transfers_track_holds_without_expiry after insert on ledgerbox.transfers
  referencing new table as inserted
  for each statement execute function ledgerbox.track_holds_without_expiry();

-- Reconciliation counts the workflows that finished since its last run and lists the failed
-- ones: by these, not by reading every workflow ever run.
create index workflows_updated_at on ledgerbox.workflows (updated_at);
create index workflows_failed on ledgerbox.workflows (updated_at) where status in ('failed', 'compensation_failed');

-- The workflow that made a hold, for the few holds in limbo.
create index exchanges_hold_id on ledgerbox.exchanges (hold_id);

-- Money reserved and not moving: holds still pending past their expiry, or older than the SLA.
create function ledgerbox.money_in_limbo(sla interval default interval '1 day')
returns table (hold_id uuid, key text, from_account text, to_account text, amount bigint, currency text,
  created_at timestamptz, expires_at timestamptz, age interval, why text, workflow_id uuid, workflow_status text)
language sql stable as $$
  select h.id, h.key, h.from_account, h.to_account, h.amount, h.currency, h.created_at, h.expires_at, now() - h.created_at,
    case when h.expires_at <= now() then 'past its expiry' else format('pending longer than %s', sla) end,
    m.workflow_id, m.status
  from ledgerbox.open_hold_expiries open_hold
  join ledgerbox.holds h on h.id = open_hold.hold_id
  left join ledgerbox.workflow_money m on m.hold_id = h.id
  where h.status = 'pending' and (open_hold.expires_at <= now() or h.created_at < now() - sla)
  order by h.created_at
$$;

-- Recovery. Each function takes a reason, records who and why, and refuses what it must not do.

create function ledgerbox.enqueue_step(workflow_id uuid, step text) returns void
language sql security definer set search_path = pg_catalog, pg_temp as $$
  select from graphile_worker.add_job('ledgerbox:step', json_build_object('workflowId', workflow_id, 'step', step),
    max_attempts => 25, job_key => format('ledgerbox:step:%s:%s', workflow_id, step));
$$;

revoke all on function ledgerbox.enqueue_step(uuid, text) from public;

create function ledgerbox.resume_workflow(workflow_id uuid, reason text)
returns text language plpgsql as $$
declare
  workflow ledgerbox.workflows;
  compensated boolean;
  step text;
begin
  if reason is null or btrim(reason) = '' then
    raise exception 'a reason is required: say why the workflow may run again' using errcode = 'invalid_parameter_value';
  end if;
  select * into workflow from ledgerbox.workflows w where w.id = resume_workflow.workflow_id for update;
  if not found then
    raise exception 'no workflow %', workflow_id using errcode = 'no_data_found';
  end if;
  compensated := exists (select 1 from ledgerbox.step_results r where r.workflow_id = workflow.id and r.step = 'compensate');
  if workflow.status = 'failed' and exists (
    select 1 from ledgerbox.step_results r where r.workflow_id = workflow.id and r.step = workflow.failed_step
  ) then
    -- a decision, not an error (compliance declined, quote expired): running the step again cannot change it
    raise exception 'workflow % (% %) failed on a recorded outcome of step %: % — it cannot be resumed; let its compensation run',
      workflow.id, workflow.kind, workflow.key, workflow.failed_step, workflow.failure_reason
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  if workflow.status = 'failed' and not compensated and workflow.failed_step is not null then
    step := workflow.failed_step;
    update ledgerbox.workflows w set status = 'running', current_step = step, failed_step = null, failure_reason = null,
      resumed_at = now(), updated_at = now() where w.id = workflow.id;
    -- the compensation waiting out its delay must not fire later and release the money
    perform graphile_worker.remove_job(format('ledgerbox:step:%s:compensate', workflow.id));
  elsif workflow.status = 'compensation_failed' then
    step := 'compensate';
    update ledgerbox.workflows w set status = 'failed', current_step = step, resumed_at = now(), updated_at = now() where w.id = workflow.id;
  else
    raise exception 'workflow % (% %) is %: only a failed workflow not yet compensated, or one whose compensation failed, can be resumed',
      workflow.id, workflow.kind, workflow.key, workflow.status || case when compensated then ' and compensated' else '' end
      using errcode = 'object_not_in_prerequisite_state', hint = 'a completed workflow is corrected with a reversal transfer';
  end if;
  perform ledgerbox.enqueue_step(workflow.id, step);
  insert into ledgerbox.operator_actions (action, target, reason, details)
  values ('resume_workflow', workflow.id::text, reason, jsonb_build_object('step', step, 'previous_failure', workflow.failure_reason));
  return step;
end
$$;

create function ledgerbox.cancel_workflow(workflow_id uuid, reason text)
returns text language plpgsql as $$
declare
  workflow ledgerbox.workflows;
begin
  if reason is null or btrim(reason) = '' then
    raise exception 'a reason is required: say why the workflow is cancelled' using errcode = 'invalid_parameter_value';
  end if;
  select * into workflow from ledgerbox.workflows w where w.id = cancel_workflow.workflow_id for update;
  if not found then
    raise exception 'no workflow %', workflow_id using errcode = 'no_data_found';
  end if;
  if workflow.status not in ('running', 'failed') then
    raise exception 'workflow % (% %) is %: only a running or failed workflow can be cancelled', workflow.id, workflow.kind, workflow.key, workflow.status
      using errcode = 'object_not_in_prerequisite_state', hint = 'a completed workflow is corrected with a reversal transfer';
  end if;
  update ledgerbox.workflows w set status = 'failed', current_step = 'compensate',
    failed_step = coalesce(workflow.failed_step, workflow.current_step),
    failure_reason = format('cancelled by %s: %s', current_user, reason), updated_at = now()
  where w.id = workflow.id;
  perform ledgerbox.enqueue_step(workflow.id, 'compensate');
  insert into ledgerbox.operator_actions (action, target, reason, details)
  values ('cancel_workflow', workflow.id::text, reason, jsonb_build_object('status', workflow.status, 'step', workflow.current_step));
  return 'compensate';
end
$$;

create function ledgerbox.retry_job(job_id bigint, reason text)
returns text language plpgsql as $$
declare
  job graphile_worker._private_jobs;
  failure record;
begin
  if reason is null or btrim(reason) = '' then
    raise exception 'a reason is required: say what was fixed' using errcode = 'invalid_parameter_value';
  end if;
  select * into job from graphile_worker._private_jobs j where j.id = retry_job.job_id for update;
  if found then
    if job.locked_by is not null then
      raise exception 'job % is running (locked by % since %): let it finish', job_id, job.locked_by, job.locked_at
        using errcode = 'object_in_use';
    end if;
    if job.last_error is null then
      raise exception 'job % has not failed: nothing to retry', job_id using errcode = 'object_not_in_prerequisite_state';
    end if;
    perform graphile_worker.reschedule_jobs(array[job_id], run_at => now(), attempts => 0);
    insert into ledgerbox.operator_actions (action, target, reason, details)
    values ('retry_job', job_id::text, reason, jsonb_build_object('last_error', job.last_error, 'attempts', job.attempts));
    return 'rescheduled';
  end if;
  -- a workflow step's job is gone once its failure was recorded: retrying it resumes the workflow
  select * into failure from ledgerbox.failed_jobs f where f.job_id = retry_job.job_id and f.task = 'ledgerbox:step';
  if not found then
    raise exception 'no failed job %', job_id using errcode = 'no_data_found';
  end if;
  if failure.state = 'retrying' then
    raise exception 'job % (step % of workflow %) is still being retried by ledgerbox: wait for it, or resume the workflow once it has failed', job_id, failure.step, failure.workflow_id
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  insert into ledgerbox.operator_actions (action, target, reason, details)
  values ('retry_job', job_id::text, reason, jsonb_build_object('workflow_id', failure.workflow_id, 'step', failure.step));
  return 'resumed ' || ledgerbox.resume_workflow(failure.workflow_id, reason);
end
$$;

create function ledgerbox.retry_task_jobs(task text, reason text, since timestamptz default null)
returns integer language plpgsql as $$
declare
  ids bigint[];
begin
  if reason is null or btrim(reason) = '' then
    raise exception 'a reason is required: say what was fixed' using errcode = 'invalid_parameter_value';
  end if;
  select coalesce(array_agg(f.job_id), '{}') into ids
  from ledgerbox.failed_jobs f
  join graphile_worker._private_jobs j on j.id = f.job_id
  where f.task = retry_task_jobs.task and f.state = 'failed' and not f.running
    and (since is null or f.failed_at >= since);
  perform graphile_worker.reschedule_jobs(ids, run_at => now(), attempts => 0);
  insert into ledgerbox.operator_actions (action, target, reason, details)
  values ('retry_task_jobs', task, reason, jsonb_build_object('jobs', to_jsonb(ids), 'since', since));
  return coalesce(array_length(ids, 1), 0);
end
$$;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant select on ledgerbox.operator_actions, ledgerbox.workflow_money, ledgerbox.failed_jobs, ledgerbox.workflow_timeline to ledgerbox_app;
    revoke all on function ledgerbox.enqueue_step(uuid, text) from public;
    grant execute on function ledgerbox.enqueue_step(uuid, text) to ledgerbox_app;
  end if;
end
$$;
