-- The step engine for every workflow, not only the exchange: versions, waits for signals from
-- the outside world with a deadline, durable timers, one workflow at a time per subject, and
-- the money a workflow moved found through the transfers it made (transfers.workflow_id), so
-- the operator's views know nothing of any one kind of workflow. Host tasks may complete their
-- job in their own transaction (complete_job). See docs in README "Workflows".

-- What version of its definition a workflow runs; a worker that lacks that version leaves it
-- alone (held_back says why) instead of running steps it does not know.
alter table ledgerbox.workflows
  add column version integer not null default 1,
  -- at most one running workflow per subject key (one payout per merchant at a time); the
  -- rest are 'queued', in queue_seq order
  add column subject_key text,
  add column queue_seq bigint,
  -- the step waiting (for a signal or a time), what it waits for, and until when
  add column wait_step text,
  add column waiting_for text[],
  add column wake_at timestamptz(3),
  -- signal names whose wait ended at its deadline: a signal of that name arriving later is late
  add column ended_waits text[] not null default '{}',
  -- set by a worker that does not know this workflow's kind or version
  add column held_back text,
  add constraint workflow_version_positive check (version >= 1),
  add constraint workflow_subject_key_format check (subject_key is null or length(subject_key) between 1 and 200);

alter table ledgerbox.workflows drop constraint workflow_status_known;
alter table ledgerbox.workflows add constraint workflow_status_known
  check (status in ('queued', 'running', 'completed', 'failed', 'compensated', 'compensation_failed'));

comment on column ledgerbox.workflows.subject is 'The workflow''s input: identifiers only (account keys, ids), checked by its definition''s contract.';
comment on column ledgerbox.workflows.subject_key is 'One running workflow per subject key at a time when set; the others wait as queued.';

create sequence ledgerbox.workflow_queue_seq;

-- The guard behind the queueing below: two active workflows of one subject cannot both exist.
create unique index workflows_one_active_per_subject on ledgerbox.workflows (subject_key)
  where subject_key is not null and status in ('running', 'failed', 'compensation_failed');
create index workflows_queued on ledgerbox.workflows (subject_key, queue_seq) where status = 'queued';
create index workflows_held_back on ledgerbox.workflows (updated_at) where held_back is not null;

alter table ledgerbox.step_attempts drop constraint step_attempt_outcome_known;
alter table ledgerbox.step_attempts add constraint step_attempt_outcome_known
  check (outcome in ('succeeded', 'failed', 'already_done', 'waiting'));

-- The workflow whose step posted a transfer: the step's transaction says so with
-- set_config('ledgerbox.workflow_id', …, true), so every hold and transfer a step makes through
-- the ledger API is its workflow's without the step saying anything. A column default, not a
-- trigger: nothing runs per row. No foreign key (transfers come before workflows); the index
-- finds a workflow's money.
alter table ledgerbox.transfers
  add column workflow_id uuid default nullif(current_setting('ledgerbox.workflow_id', true), '')::uuid;
create index transfers_workflow_id on ledgerbox.transfers (workflow_id) where workflow_id is not null;

-- The exchanges made before this migration: their holds, settlements, voids and reversals.
alter table ledgerbox.transfers disable trigger transfers_append_only;
update ledgerbox.transfers t set workflow_id = w.id
from ledgerbox.workflows w
where w.kind = 'exchange' and t.key in (w.key || ':hold', w.key || ':settle', w.key || ':void', w.key || ':reverse');
alter table ledgerbox.transfers enable trigger transfers_append_only;

-- Signals from the outside world (a processor's webhook, a bank file), one row per distinct
-- signal: a webhook delivered twice is one row (signal_key). A wait consumes it in the step's
-- transaction that records its result, so it is delivered exactly once.
create table ledgerbox.workflow_signals (
  id bigint generated always as identity primary key,
  workflow_id uuid not null references ledgerbox.workflows (id),
  name text not null,
  signal_key text not null,
  payload jsonb not null default '{}',
  received_at timestamptz(3) not null default now(),
  consumed_step text,
  consumed_at timestamptz(3),
  constraint workflow_signal_once unique (workflow_id, signal_key),
  constraint workflow_signal_name_format check (name ~ '^[a-z][a-z0-9_.:-]{0,99}$'),
  constraint workflow_signal_payload_is_object check (jsonb_typeof(payload) = 'object'),
  constraint workflow_signal_consumed_whole check ((consumed_step is null) = (consumed_at is null))
);

create index workflow_signals_unconsumed on ledgerbox.workflow_signals (workflow_id, name) where consumed_step is null;

comment on table ledgerbox.workflow_signals is
  'Signals sent to workflows (signalWorkflow). consumed_step: the wait that took it, in the transaction that recorded its result.';

create function ledgerbox.refuse_signal_change() returns trigger
language plpgsql as $$
begin
  if tg_op = 'DELETE' or old.consumed_step is not null
     or (new.id, new.workflow_id, new.name, new.signal_key, new.payload, new.received_at)
        is distinct from (old.id, old.workflow_id, old.name, old.signal_key, old.payload, old.received_at) then
    raise exception 'ledgerbox.workflow_signals: a signal is consumed once and never changed or removed: % refused', tg_op
      using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;

create trigger workflow_signals_consumed_once before update or delete on ledgerbox.workflow_signals
  for each row execute function ledgerbox.refuse_signal_change();

-- The money a workflow is about, for every kind: its first hold (or first transfer) is the
-- source, its last posting (a posted transfer or a posted hold) the settlement, whose last
-- leg's credit is the target. Same columns as before, so every view built on it stands.
create or replace view ledgerbox.workflow_money as
select
  w.id as workflow_id,
  w.kind,
  w.key,
  w.status,
  source.account as source_account,
  target.account as target_account,
  source.amount as source_amount,
  source.currency as source_currency,
  target.amount as target_amount,
  target.currency as target_currency,
  first_hold.id as hold_id,
  settlement.id as settlement_id
from ledgerbox.workflows w
left join lateral (
  select t.id from ledgerbox.transfers t
  where t.workflow_id = w.id and t.kind = 'hold' order by t.created_at, t.id limit 1
) first_hold on true
left join lateral (
  select t.id from ledgerbox.transfers t
  where t.workflow_id = w.id order by (t.kind = 'hold') desc, t.created_at, t.id limit 1
) first_transfer on true
left join lateral (
  select a.key as account, -e.amount as amount, e.currency from ledgerbox.entries e
  join ledgerbox.accounts a on a.id = e.account_id
  where e.transfer_id = first_transfer.id and e.amount < 0 order by e.leg, e.id limit 1
) source on true
left join lateral (
  select t.id from ledgerbox.transfers t
  where t.workflow_id = w.id and t.kind in ('posted', 'post_hold') order by t.created_at desc, t.id desc limit 1
) settlement on true
left join lateral (
  select a.key as account, e.amount, e.currency from ledgerbox.entries e
  join ledgerbox.accounts a on a.id = e.account_id
  where e.transfer_id = settlement.id and e.amount > 0 order by e.leg desc, e.id desc limit 1
) target on true;

comment on view ledgerbox.workflow_money is
  'What money each workflow is about, whatever its kind: found through the transfers its steps made (transfers.workflow_id).';

-- A workflow's story: the same events as before, its transfers found by workflow id, and the
-- signals it received.
create or replace view ledgerbox.workflow_timeline as
select w.id as workflow_id, w.created_at as at, 'created' as event, null::text as step, null::text as outcome,
  format('%s %s%s started%s', w.kind, w.key, case when w.version > 1 then format(' (version %s)', w.version) else '' end,
    case when w.subject_key is null then '' else format(' for subject %s', w.subject_key) end) as detail
from ledgerbox.workflows w
union all
select a.workflow_id, a.finished_at, 'attempt', a.step, a.outcome,
  format('attempt %s of %s, %s ms%s', a.attempt, a.max_attempts,
    (extract(epoch from a.finished_at - a.started_at) * 1000)::bigint,
    case when a.error is not null then E'\n' || a.error else '' end)
from ledgerbox.step_attempts a
union all
select t.workflow_id, t.created_at, 'transfer', t.kind, null,
  format('%s %s: %s', t.kind, t.key,
    (select string_agg(format('%s %s %s', acc.key, e.amount, e.currency), ', ' order by e.leg, e.amount)
     from ledgerbox.entries e join ledgerbox.accounts acc on acc.id = e.account_id where e.transfer_id = t.id))
from ledgerbox.transfers t
where t.workflow_id is not null
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
  and j.payload->>'workflowId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
union all
select s.workflow_id, s.received_at, 'signal', s.consumed_step,
  case when s.consumed_step is not null then 'consumed' else 'not consumed' end,
  format('%s (key %s)%s', s.name, s.signal_key, coalesce(format(', consumed by %s at %s', s.consumed_step, s.consumed_at), ''))
from ledgerbox.workflow_signals s;

-- Workflows neither finished nor moving. A step waiting for a signal or a time is moving until
-- its wake time has passed by `older_than`; a workflow held back by workers that lack its
-- version is listed at once, with why.
drop function ledgerbox.stuck_workflows(interval);
create function ledgerbox.stuck_workflows(older_than interval default interval '15 minutes')
returns table (workflow_id uuid, kind text, key text, status text, current_step text, stuck_for interval,
  last_error text, source_account text, amount bigint, currency text, pending_jobs bigint,
  version integer, reason text)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select w.id, w.kind, w.key, w.status, w.current_step, now() - coalesce(greatest(w.updated_at, w.wake_at), w.updated_at),
    (select a.error from ledgerbox.step_attempts a where a.workflow_id = w.id and a.error is not null order by a.id desc limit 1),
    m.source_account, m.source_amount, m.source_currency,
    (select count(*) from graphile_worker._private_jobs j where j.payload->>'workflowId' = w.id::text),
    w.version,
    coalesce(w.held_back,
      case when w.wake_at is not null and w.status = 'running' then format('%s waited until %s and has not moved since', w.wait_step, w.wake_at)
           else format('untouched since %s', w.updated_at) end)
  from ledgerbox.workflows w
  join ledgerbox.workflow_money m on m.workflow_id = w.id
  where w.status in ('running', 'failed', 'compensation_failed')
    and (w.held_back is not null or coalesce(greatest(w.updated_at, w.wake_at), w.updated_at) < now() - older_than)
  order by w.updated_at
$$;

-- Money in limbo: the workflow that made the hold, by the hold's own workflow id.
create or replace function ledgerbox.money_in_limbo(sla interval default interval '1 day')
returns table (hold_id uuid, key text, from_account text, to_account text, amount bigint, currency text,
  created_at timestamptz, expires_at timestamptz, age interval, why text, workflow_id uuid, workflow_status text)
language sql stable as $$
  select h.id, h.key, h.from_account, h.to_account, h.amount, h.currency, h.created_at, h.expires_at, now() - h.created_at,
    case when h.expires_at <= now() then 'past its expiry' else format('pending longer than %s', sla) end,
    w.id, w.status
  from ledgerbox.open_hold_expiries open_hold
  join ledgerbox.holds h on h.id = open_hold.hold_id
  join ledgerbox.transfers t on t.id = h.id
  left join ledgerbox.workflows w on w.id = t.workflow_id
  where h.status = 'pending' and (open_hold.expires_at <= now() or h.created_at < now() - sla)
  order by h.created_at
$$;

-- Starts a workflow in the caller's transaction, in one statement: the same key returns the
-- workflow it started (replayed), a different request under that key is for the caller to
-- refuse (the existing row comes back), a subject with a workflow already active queues this
-- one. The advisory lock orders starts and promotions of one subject: without it a start that
-- saw the active workflow still running could queue after that workflow's promotion looked
-- for queued ones, and wait for ever.
create function ledgerbox.start_workflow(
  kind text, version integer, key text, subject jsonb, subject_key text, first_step text, jobs json
) returns table (workflow_id uuid, status text, replayed boolean, existing_kind text, existing_version integer,
  existing_subject jsonb, existing_subject_key text)
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  found_row ledgerbox.workflows;
  new_id uuid := gen_random_uuid();
  new_status text := 'running';
begin
  select * into found_row from ledgerbox.workflows w where w.key = start_workflow.key;
  if found then
    return query select found_row.id, found_row.status, true, found_row.kind, found_row.version, found_row.subject, found_row.subject_key;
    return;
  end if;
  if start_workflow.subject_key is not null then
    perform pg_advisory_xact_lock(hashtextextended('ledgerbox:subject:' || start_workflow.subject_key, 0));
    if exists (select 1 from ledgerbox.workflows w where w.subject_key = start_workflow.subject_key
               and w.status in ('queued', 'running', 'failed', 'compensation_failed')) then
      new_status := 'queued';
    end if;
  end if;
  insert into ledgerbox.workflows as w (id, kind, version, key, status, current_step, subject, subject_key, queue_seq)
  values (new_id, start_workflow.kind, start_workflow.version, start_workflow.key, new_status, start_workflow.first_step,
    start_workflow.subject, start_workflow.subject_key,
    case when new_status = 'queued' then nextval('ledgerbox.workflow_queue_seq') end)
  on conflict on constraint workflow_key_unique do nothing;
  if not found then
    -- started concurrently under the same key: the other transaction committed first
    select * into found_row from ledgerbox.workflows w where w.key = start_workflow.key;
    return query select found_row.id, found_row.status, true, found_row.kind, found_row.version, found_row.subject, found_row.subject_key;
    return;
  end if;
  if new_status = 'running' then
    perform ledgerbox.add_jobs(json_build_array(json_build_object(
      'identifier', 'ledgerbox:step', 'payload', json_build_object('workflowId', new_id, 'step', start_workflow.first_step),
      'max_attempts', 25, 'job_key', format('ledgerbox:step:%s:%s', new_id, start_workflow.first_step))));
  end if;
  if start_workflow.jobs is not null then
    perform ledgerbox.add_jobs(start_workflow.jobs);
  end if;
  return query select new_id, new_status, false, start_workflow.kind, start_workflow.version, start_workflow.subject, start_workflow.subject_key;
end
$$;

-- When a subject's active workflow ends (completed, compensated, or cancelled to its end), the
-- next queued one of that subject starts: in the transaction that ended the first, whoever
-- ended it (a step, compensation, an operator).
create function ledgerbox.start_next_of_subject() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  next_id uuid;
  next_step text;
begin
  perform pg_advisory_xact_lock(hashtextextended('ledgerbox:subject:' || new.subject_key, 0));
  if exists (select 1 from ledgerbox.workflows w where w.subject_key = new.subject_key
             and w.status in ('running', 'failed', 'compensation_failed')) then
    return null;
  end if;
  select w.id, w.current_step into next_id, next_step from ledgerbox.workflows w
  where w.subject_key = new.subject_key and w.status = 'queued'
  order by w.queue_seq limit 1 for update;
  if next_id is null then
    return null;
  end if;
  update ledgerbox.workflows w set status = 'running', updated_at = now() where w.id = next_id;
  perform ledgerbox.enqueue_step(next_id, next_step);
  return null;
end
$$;

create trigger workflows_start_next_of_subject after update of status on ledgerbox.workflows
  for each row
  when (new.subject_key is not null and old.status in ('running', 'failed', 'compensation_failed')
        and new.status in ('completed', 'compensated'))
  execute function ledgerbox.start_next_of_subject();

-- A signal, in the sender's transaction: recorded once per signal key, and the waiting step
-- woken now (its job replaces the one waiting for the deadline) when it waits for this name.
-- Answers the signal's id and what became of it:
--   delivered  the workflow waits for it: its step runs now and consumes it
--   recorded   kept for a wait the workflow has not reached yet
--   late       the workflow has finished, or its wait for this name ended at the deadline;
--              kept, never consumed, and a warning alert is raised in this transaction
--   duplicate  the same signal key was sent before with the same name and payload: nothing new
--   conflict   the same signal key was sent before with another name or payload: nothing new
-- or null when there is no such workflow.
create function ledgerbox.signal_workflow(workflow_ref text, by_key boolean, name text, signal_key text, payload jsonb)
returns table (signal_id bigint, workflow_id uuid, outcome text, workflow_status text, existing_name text, existing_payload jsonb)
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  workflow ledgerbox.workflows;
  added_id bigint;
  earlier ledgerbox.workflow_signals;
  answer text;
begin
  if by_key then
    select * into workflow from ledgerbox.workflows w where w.key = workflow_ref for update;
  elsif workflow_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select * into workflow from ledgerbox.workflows w where w.id = workflow_ref::uuid for update;
  end if;
  if workflow.id is null then
    return;
  end if;
  insert into ledgerbox.workflow_signals as s (workflow_id, name, signal_key, payload)
  values (workflow.id, signal_workflow.name, signal_workflow.signal_key, signal_workflow.payload)
  on conflict on constraint workflow_signal_once do nothing
  returning s.id into added_id;
  if added_id is null then
    select * into earlier from ledgerbox.workflow_signals s where s.workflow_id = workflow.id and s.signal_key = signal_workflow.signal_key;
    return query select earlier.id, workflow.id,
      case when earlier.name = signal_workflow.name and earlier.payload = signal_workflow.payload then 'duplicate' else 'conflict' end,
      workflow.status, earlier.name, earlier.payload;
    return;
  end if;
  if workflow.status in ('completed', 'compensated') or (workflow.status <> 'queued' and signal_workflow.name = any(workflow.ended_waits)
       and not coalesce(signal_workflow.name = any(workflow.waiting_for), false)) then
    answer := 'late';
    insert into ledgerbox.alerts (severity, kind, workflow_id, message, details)
    values ('warning', 'signal_too_late', workflow.id,
      format('Signal %s for %s %s arrived after its wait ended (workflow %s): not delivered. Check what the sender did with the money.',
        signal_workflow.name, workflow.kind, workflow.key, workflow.status),
      jsonb_build_object('signal', signal_workflow.name, 'signalKey', signal_workflow.signal_key, 'signalId', added_id));
  elsif workflow.status = 'running' and signal_workflow.name = any(workflow.waiting_for) then
    answer := 'delivered';
    perform ledgerbox.enqueue_step(workflow.id, workflow.current_step);
  else
    answer := 'recorded';
  end if;
  return query select added_id, workflow.id, answer, workflow.status, null::text, null::jsonb;
end
$$;

-- A host task's job completed in the task's own transaction (River's JobCompleteTx): deleted
-- only while this worker still holds it, with its named queue unlocked as graphile-worker
-- would; graphile-worker's own completion afterwards finds nothing left to delete. False when
-- the job is no longer this worker's (taken for dead and handed on): the caller rolls back.
create function ledgerbox.complete_job(job_id bigint, worker_id text) returns boolean
language sql security definer set search_path = pg_catalog, pg_temp as $$
  with completed as (
    delete from graphile_worker._private_jobs j
    where j.id = complete_job.job_id and j.locked_by = complete_job.worker_id
    returning j.job_queue_id
  ), unlocked as (
    update graphile_worker._private_job_queues q set locked_by = null, locked_at = null
    from completed c where q.id = c.job_queue_id and q.locked_by = complete_job.worker_id
    returning 1
  )
  select exists (select 1 from completed)
$$;

revoke all on function ledgerbox.complete_job(bigint, text) from public;
revoke all on function ledgerbox.start_next_of_subject() from public;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant select, insert on ledgerbox.workflow_signals to ledgerbox_app;
    grant update (consumed_step, consumed_at) on ledgerbox.workflow_signals to ledgerbox_app;
    grant update (wait_step, waiting_for, wake_at, ended_waits, held_back, status) on ledgerbox.workflows to ledgerbox_app;
    grant usage on sequence ledgerbox.workflow_queue_seq to ledgerbox_app;
    grant execute on function ledgerbox.start_workflow(text, integer, text, jsonb, text, text, json) to ledgerbox_app;
    grant execute on function ledgerbox.signal_workflow(text, boolean, text, text, jsonb) to ledgerbox_app;
    grant execute on function ledgerbox.complete_job(bigint, text) to ledgerbox_app;
    grant select on ledgerbox.workflow_money, ledgerbox.workflow_timeline to ledgerbox_app;
  end if;
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_reporting') then
    grant select on ledgerbox.workflow_signals to ledgerbox_reporting;
  end if;
end
$$;

-- Cancelling: as before for a running or failed workflow (compensation runs); a queued one has
-- done nothing yet, so it ends at once, compensated with nothing to undo, and never starts.
create or replace function ledgerbox.cancel_workflow(workflow_id uuid, reason text)
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
  if workflow.status = 'queued' then
    update ledgerbox.workflows w set status = 'compensated', failed_step = workflow.current_step,
      failure_reason = format('cancelled by %s before it started: %s', current_user, reason), updated_at = now()
    where w.id = workflow.id;
    insert into ledgerbox.operator_actions (action, target, reason, details)
    values ('cancel_workflow', workflow.id::text, reason, jsonb_build_object('status', workflow.status, 'step', workflow.current_step));
    return 'dequeued';
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
