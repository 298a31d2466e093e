-- ledgerbox schema, pg_dump 15; regenerate with `npm run schema:dump`, do not edit
--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: ledgerbox; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA ledgerbox;


--
-- Name: add_jobs(json, boolean); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.add_jobs(specs json, job_key_preserve_run_at boolean DEFAULT false) RETURNS SETOF bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  pending graphile_worker.job_spec[];
  added_keys text[];
  job record;
  round int := 0;
begin
  pending := array(
    select (
      spec->>'identifier', spec->'payload', spec->>'queue_name', (spec->>'run_at')::timestamptz,
      (spec->>'max_attempts')::smallint, spec->>'job_key', (spec->>'priority')::smallint, null
    )::graphile_worker.job_spec
    from json_array_elements(specs) with ordinality as specs(spec, position)
    order by position
  );
  loop
    round := round + 1;
    added_keys := '{}';
    for job in select * from graphile_worker.add_jobs(pending, job_key_preserve_run_at) loop
      return next job.id;
      if job.key is not null then
        added_keys := added_keys || job.key;
      end if;
    end loop;
    -- keyless jobs are always added; a keyed one is missing only when it lost that race
    pending := array(select p from unnest(pending) p where p.job_key is not null and p.job_key <> all(added_keys));
    exit when cardinality(pending) = 0;
    if round = 5 then
      raise exception 'ledgerbox.add_jobs: the jobs keyed % were not added, their keys stay locked', array(select p.job_key from unnest(pending) p)
        using errcode = '40001';
    end if;
  end loop;
end
$$;


--
-- Name: cancel_workflow(uuid, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.cancel_workflow(workflow_id uuid, reason text) RETURNS text
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: complete_job(bigint, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.complete_job(job_id bigint, worker_id text) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: enqueue_step(uuid, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.enqueue_step(workflow_id uuid, step text) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  select from graphile_worker.add_job('ledgerbox:step', json_build_object('workflowId', workflow_id, 'step', step),
    max_attempts => 25, job_key => format('ledgerbox:step:%s:%s', workflow_id, step));
$$;


--
-- Name: entries_check_and_apply(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.entries_check_and_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  bad record;
  updated bigint;
begin
  -- each entry against its transfer
  select e.transfer_id, t.id is not null as exists, t.kind, t.created_xact = pg_current_xact_id() as ours,
    e.phase, e.effective_at, t.effective_at as transfer_effective_at
  into bad
  from inserted e
  left join ledgerbox.transfers t on t.id = e.transfer_id
  where t.id is null
    or t.kind = 'void_hold'
    or t.created_xact <> pg_current_xact_id()
    or e.phase <> case when t.kind = 'hold' then 'pending' else 'posted' end
    or e.effective_at <> t.effective_at
  limit 1;
  if found then
    if not bad.exists then
      raise exception 'insert or update on table "entries" violates foreign key constraint "entries_transfer_id_fkey"'
        using errcode = 'foreign_key_violation', constraint = 'entries_transfer_id_fkey',
          detail = format('Key (transfer_id)=(%s) is not present in table "transfers".', bad.transfer_id);
    elsif not bad.ours then
      raise exception 'transfer % is committed: entries cannot be added to it (post a new transfer)', bad.transfer_id
        using errcode = 'insufficient_privilege', constraint = 'entries_only_with_their_transfer';
    elsif bad.kind = 'void_hold' then
      raise exception 'a void_hold transfer has no entries (transfer %)', bad.transfer_id
        using errcode = 'check_violation', constraint = 'void_hold_has_no_entries';
    else
      raise exception 'an entry of transfer % (%) says phase % effective at %; its transfer''s are % and %',
        bad.transfer_id, bad.kind, bad.phase, bad.effective_at,
        case when bad.kind = 'hold' then 'pending' else 'posted' end, bad.transfer_effective_at
        using errcode = 'check_violation', constraint = 'entries_follow_their_transfer';
    end if;
  end if;

  -- every entry of each transfer arrives in this statement: none was written before it
  select i.transfer_id into bad
  from (select transfer_id, min(id) as first_id from inserted group by transfer_id) i
  where exists (select 1 from ledgerbox.entries e where e.transfer_id = i.transfer_id and e.id < i.first_id)
  limit 1;
  if found then
    raise exception 'entries of transfer % are inserted by the statement that creates the transfer, all of them (insert the transfer and its entries in one statement, with a CTE)', bad.transfer_id
      using errcode = 'insufficient_privilege', constraint = 'entries_only_with_their_transfer';
  end if;

  -- so the statement's rows are all of each transfer's entries
  select transfer_id, currency, sum(amount) as total into bad
  from inserted
  group by transfer_id, currency
  having sum(amount) <> 0
  limit 1;
  if found then
    raise exception 'transfer % does not balance in %: its entries sum to %', bad.transfer_id, bad.currency, bad.total
      using errcode = 'check_violation', constraint = 'transfer_balanced_per_currency';
  end if;

  -- cached balances follow the entries (account_available_not_negative checks each row), and
  -- an account is updated only in its own currency: every (account, currency) of the statement
  -- must have matched one
  update ledgerbox.accounts a set
    posted_balance = a.posted_balance + change.posted,
    pending_incoming = a.pending_incoming + change.pending_incoming,
    pending_outgoing = a.pending_outgoing + change.pending_outgoing,
    version = a.version + 1,
    updated_at = now()
  from (
    select account_id, currency,
      coalesce(sum(amount) filter (where phase = 'posted'), 0) as posted,
      coalesce(sum(amount) filter (where phase = 'pending' and amount > 0), 0) as pending_incoming,
      coalesce(-sum(amount) filter (where phase = 'pending' and amount < 0), 0) as pending_outgoing
    from inserted
    group by account_id, currency
  ) change
  where a.id = change.account_id and a.currency = change.currency;
  get diagnostics updated = row_count;
  if updated <> (select count(*) from (select distinct account_id, currency from inserted) pairs) then
    select e.account_id, e.currency into bad
    from inserted e
    where not exists (select 1 from ledgerbox.accounts a where a.id = e.account_id and a.currency = e.currency)
    limit 1;
    raise exception 'insert or update on table "entries" violates foreign key constraint "entry_account_currency_fk"'
      using errcode = 'foreign_key_violation', constraint = 'entry_account_currency_fk',
        detail = format('Key (account_id, currency)=(%s, %s) is not present in table "accounts".', bad.account_id, bad.currency);
  end if;
  return null;
end
$$;


--
-- Name: entries_take_from_transfer(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.entries_take_from_transfer() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
declare
  transfer record;
begin
  select kind, effective_at into transfer from ledgerbox.transfers where id = new.transfer_id;
  if found then
    new.phase := coalesce(new.phase, case when transfer.kind = 'hold' then 'pending' else 'posted' end);
    new.effective_at := coalesce(new.effective_at, transfer.effective_at);
  end if;
  return new; -- a missing transfer is the statement check's to report
end
$$;


--
-- Name: finish_step(uuid, text, xid, bigint, text, integer, timestamp with time zone, jsonb, text, text, json); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.finish_step(workflow_id uuid, step text, seen_version xid, job_id bigint, worker_id text, max_attempts integer, started_at timestamp with time zone, result jsonb, new_status text, new_current_step text, jobs json) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: FUNCTION finish_step(workflow_id uuid, step text, seen_version xid, job_id bigint, worker_id text, max_attempts integer, started_at timestamp with time zone, result jsonb, new_status text, new_current_step text, jobs json); Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON FUNCTION ledgerbox.finish_step(workflow_id uuid, step text, seen_version xid, job_id bigint, worker_id text, max_attempts integer, started_at timestamp with time zone, result jsonb, new_status text, new_current_step text, jobs json) IS 'A successful step''s result, attempt, workflow state and jobs in one statement, checked under the workflow''s lock (see migrations/0007_finish_step.sql).';


--
-- Name: guard_account_row(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.guard_account_row() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if tg_op = 'INSERT' then
    if new.posted_balance <> 0 or new.pending_incoming <> 0 or new.pending_outgoing <> 0 or new.version <> 0 then
      raise exception 'account % must open with zero balances; money arrives by transfer', new.key
        using errcode = 'insufficient_privilege';
    end if;
    return new;
  end if;
  if new.id <> old.id or new.key <> old.key or new.currency <> old.currency then
    raise exception 'account % keeps its key and currency (% -> %)', old.key, old.currency, new.currency
      using errcode = 'insufficient_privilege';
  end if;
  if pg_trigger_depth() < 2 and (new.posted_balance, new.pending_incoming, new.pending_outgoing, new.version)
      is distinct from (old.posted_balance, old.pending_incoming, old.pending_outgoing, old.version) then
    raise exception 'the balances of account % follow its entries and cannot be set directly (post a transfer)', old.key
      using errcode = 'insufficient_privilege';
  end if;
  return new;
end
$$;


--
-- Name: job_lock_holder(bigint); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.job_lock_holder(job_id bigint) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
begin
  return (select j.locked_by from graphile_worker._private_jobs j where j.id = job_lock_holder.job_id);
end
$$;


--
-- Name: money_in_limbo(interval); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.money_in_limbo(sla interval DEFAULT '1 day'::interval) RETURNS TABLE(hold_id uuid, key text, from_account text, to_account text, amount bigint, currency text, created_at timestamp with time zone, expires_at timestamp with time zone, age interval, why text, workflow_id uuid, workflow_status text)
    LANGUAGE sql STABLE
    AS $$
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


--
-- Name: refuse_change_to_accounting_record(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.refuse_change_to_accounting_record() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  raise exception '%.% is append-only: % refused (post a reversal transfer instead)',
    tg_table_schema, tg_table_name, tg_op
    using errcode = 'insufficient_privilege';
end
$$;


--
-- Name: refuse_change_to_workflow_record(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.refuse_change_to_workflow_record() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  raise exception '%.% is append-only: % refused', tg_table_schema, tg_table_name, tg_op
    using errcode = 'insufficient_privilege';
end
$$;


--
-- Name: refuse_rewriting_closed_investigation(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.refuse_rewriting_closed_investigation() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if old.closed_at is not null
    or (new.id, new.dedupe_key, new.severity, new.title, new.opened_at) is distinct from (old.id, old.dedupe_key, old.severity, old.title, old.opened_at) then
    raise exception 'investigation %: only an open investigation may be closed, and only its closing is written', old.id
      using errcode = 'check_violation', constraint = 'closed_investigation_is_history';
  end if;
  return new;
end
$$;


--
-- Name: refuse_rewriting_finished_run(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.refuse_rewriting_finished_run() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if old.status <> 'running' and (
    (new.trigger, new.night, new.as_of, new.full_verification, new.status, new.headline, new.snapshot::text,
     new.entries_checked, new.movement, new.started_at, new.finished_at)
    is distinct from
    (old.trigger, old.night, old.as_of, old.full_verification, old.status, old.headline, old.snapshot::text,
     old.entries_checked, old.movement, old.started_at, old.finished_at)
    or (old.report_text is not null and (new.report_subject, new.report_text, new.report_html) is distinct from (old.report_subject, old.report_text, old.report_html))
    or (old.report_sent_at is not null and (new.report_sent_at, new.report_path) is distinct from (old.report_sent_at, old.report_path))
  ) then
    raise exception 'reconciliation run % has finished (%): its outcome is history and cannot be changed', old.id, old.status
      using errcode = 'check_violation', constraint = 'finished_run_is_history';
  end if;
  return new;
end
$$;


--
-- Name: refuse_signal_change(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.refuse_signal_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: refuse_step_result_insert(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.refuse_step_result_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  raise exception 'ledgerbox.step_results is a view of the succeeded attempts: a step''s result is written with its attempt (ledgerbox.step_attempts.result), by the step engine'
    using errcode = 'insufficient_privilege';
end
$$;


--
-- Name: resume_workflow(uuid, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.resume_workflow(workflow_id uuid, reason text) RETURNS text
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: retire_step_job(bigint, text, uuid, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.retire_step_job(job_id bigint, worker_id text, workflow_id uuid, step text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: retry_job(bigint, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.retry_job(job_id bigint, reason text) RETURNS text
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: retry_task_jobs(text, text, timestamp with time zone); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.retry_task_jobs(task text, reason text, since timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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


--
-- Name: signal_workflow(text, boolean, text, text, jsonb); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.signal_workflow(workflow_ref text, by_key boolean, name text, signal_key text, payload jsonb) RETURNS TABLE(signal_id bigint, workflow_id uuid, outcome text, workflow_status text, existing_name text, existing_payload jsonb)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
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
$_$;


--
-- Name: start_next_of_subject(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.start_next_of_subject() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: start_workflow(text, integer, text, jsonb, text, text, json); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.start_workflow(kind text, version integer, key text, subject jsonb, subject_key text, first_step text, jobs json) RETURNS TABLE(workflow_id uuid, status text, replayed boolean, existing_kind text, existing_version integer, existing_subject jsonb, existing_subject_key text)
    LANGUAGE sql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
  select * from ledgerbox.start_workflow(kind, version, key, subject, subject_key, first_step, jobs, null::text)
$$;


--
-- Name: start_workflow(text, integer, text, jsonb, text, text, json, text); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.start_workflow(kind text, version integer, key text, subject jsonb, subject_key text, first_step text, jobs json, traceparent text) RETURNS TABLE(workflow_id uuid, status text, replayed boolean, existing_kind text, existing_version integer, existing_subject jsonb, existing_subject_key text)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $_$
declare
  found_row ledgerbox.workflows;
  new_id uuid := gen_random_uuid();
  new_status text := 'running';
begin
  if start_workflow.traceparent is not null
     and start_workflow.traceparent !~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' then
    raise exception 'traceparent must be a W3C traceparent of version 00, got %', left(start_workflow.traceparent, 100)
      using errcode = '22023';
  end if;
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
      'identifier', 'ledgerbox:step',
      'payload', case when start_workflow.traceparent is null
        then json_build_object('workflowId', new_id, 'step', start_workflow.first_step)
        else json_build_object('workflowId', new_id, 'step', start_workflow.first_step, 'traceparent', start_workflow.traceparent) end,
      'max_attempts', 25, 'job_key', format('ledgerbox:step:%s:%s', new_id, start_workflow.first_step))));
  end if;
  if start_workflow.jobs is not null then
    perform ledgerbox.add_jobs(start_workflow.jobs);
  end if;
  return query select new_id, new_status, false, start_workflow.kind, start_workflow.version, start_workflow.subject, start_workflow.subject_key;
end
$_$;


--
-- Name: stuck_workflows(interval); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.stuck_workflows(older_than interval DEFAULT '00:15:00'::interval) RETURNS TABLE(workflow_id uuid, kind text, key text, status text, current_step text, stuck_for interval, last_error text, source_account text, amount bigint, currency text, pending_jobs bigint, version integer, reason text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
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


--
-- Name: transfers_check_and_track(); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.transfers_check_and_track() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  bad record;
begin
  -- a resolution or a reversal is not effective before what it resolves or reverses (0011)
  select
    r.id, r.key, r.kind, o.id as original_id, o.kind as original_kind,
    to_char(r.effective_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as effective_at,
    to_char(o.effective_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as original_effective_at
  into bad
  from inserted r
  join ledgerbox.transfers o on o.id = coalesce(r.hold_id, r.reverses_id)
  where r.effective_at < o.effective_at
  order by r.effective_at, r.id
  limit 1;
  if found then
    raise exception 'transfer % (%) is effective at %, before the % it %, % (effective at %)',
      bad.key, bad.kind, bad.effective_at, bad.original_kind,
      case when bad.kind = 'reversal' then 'reverses' else 'resolves' end,
      bad.original_id, bad.original_effective_at
      using errcode = 'check_violation', constraint = 'effective_not_before_original',
        detail = json_build_object(
          'key', bad.key, 'kind', bad.kind, 'originalId', bad.original_id, 'originalKind', bad.original_kind,
          'effectiveAt', bad.effective_at, 'originalEffectiveAt', bad.original_effective_at
        )::text;
  end if;

  -- every transfer but a void brings its entries in this statement
  select r.id, r.kind into bad
  from inserted r
  where r.kind <> 'void_hold' and not exists (select 1 from ledgerbox.entries e where e.transfer_id = r.id)
  limit 1;
  if found then
    raise exception 'transfer % (%) has no entries: a transfer''s entries are inserted by the statement that creates it (with a CTE)', bad.id, bad.kind
      using errcode = 'check_violation', constraint = 'transfer_has_entries';
  end if;

  -- most statements add posted transfers only: the holds' bookkeeping does not concern them
  if not exists (select 1 from inserted where kind in ('hold', 'post_hold', 'void_hold')) then
    return null;
  end if;
  if exists (
    select 1 from inserted r join ledgerbox.transfers hold on hold.id = r.hold_id
    where r.kind in ('post_hold', 'void_hold') and hold.kind <> 'hold'
  ) then
    raise exception 'only a hold can be posted or voided'
      using errcode = 'check_violation', constraint = 'resolution_of_a_hold';
  end if;

  -- every open hold, with its expiry or without one (0003)
  -- a hold past its expiry can only be voided (expireHolds voids it)
  select r.key, hold.id, to_char(hold.expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as expires_at into bad
  from inserted r join ledgerbox.transfers hold on hold.id = r.hold_id
  where r.kind = 'post_hold' and hold.expires_at <= clock_timestamp()
  limit 1;
  if found then
    raise exception 'hold % expired at %; it can only be voided (transfer %)', bad.id, bad.expires_at, bad.key
      using errcode = 'check_violation', constraint = 'hold_not_expired';
  end if;

  insert into ledgerbox.open_hold_expiries (hold_id, expires_at)
  select id, expires_at from inserted where kind = 'hold';

  -- a resolution releases what its hold reserved
  update ledgerbox.accounts a set
    pending_incoming = a.pending_incoming - released.pending_incoming,
    pending_outgoing = a.pending_outgoing - released.pending_outgoing,
    version = a.version + 1,
    updated_at = now()
  from (
    select e.account_id,
      coalesce(sum(e.amount) filter (where e.amount > 0), 0) as pending_incoming,
      coalesce(-sum(e.amount) filter (where e.amount < 0), 0) as pending_outgoing
    from inserted resolution
    join ledgerbox.entries e on e.transfer_id = resolution.hold_id
    where resolution.kind in ('post_hold', 'void_hold')
    group by e.account_id
  ) released
  where a.id = released.account_id;

  delete from ledgerbox.open_hold_expiries open_hold
  using inserted resolution
  where open_hold.hold_id = resolution.hold_id and resolution.kind in ('post_hold', 'void_hold');
  return null;
end
$$;


--
-- Name: FUNCTION transfers_check_and_track(); Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON FUNCTION ledgerbox.transfers_check_and_track() IS 'Statement trigger on transfers: resolutions and reversals not effective before their original, only holds resolved, entries with every transfer but a void; then open hold expiries and released reservations.';


--
-- Name: try_add_jobs(json, boolean); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.try_add_jobs(specs json, job_key_preserve_run_at boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'pg_temp'
    AS $$
declare
  added bigint[];
  ordered jsonb;
  error_code text;
  error_message text;
  error_detail text;
  error_hint text;
  error_constraint text;
  error_table text;
  error_schema text;
  error_column text;
begin
  added := array(select id from ledgerbox.add_jobs(specs, job_key_preserve_run_at) as id);
  -- one job (enqueue, the common call) has one order: nothing to match
  if cardinality(added) <= 1 then
    return jsonb_build_object('ids', (select coalesce(jsonb_agg(id::text), '[]'::jsonb) from unnest(added) as id))::text;
  end if;
  with wanted as (
    select s.position, s.spec->>'identifier' as task, coalesce(s.spec->'payload', '{}')::jsonb as payload, s.spec->>'job_key' as key,
      row_number() over (partition by s.spec->>'identifier', coalesce(s.spec->'payload', '{}')::jsonb, s.spec->>'job_key' order by s.position) as nth
    from json_array_elements(specs) with ordinality as s(spec, position)
  ), made as (
    select j.id, t.identifier as task, j.payload::jsonb as payload, j.key,
      row_number() over (partition by t.identifier, j.payload::jsonb, j.key order by j.id) as nth
    from graphile_worker._private_jobs j
    join graphile_worker._private_tasks t on t.id = j.task_id
    where j.id = any(added)
  )
  select jsonb_agg(m.id::text order by w.position) into ordered
  from wanted w
  join made m on m.task = w.task and m.payload = w.payload and m.key is not distinct from w.key and m.nth = w.nth;
  -- matched one for one, or (jobs changed in ways not foreseen here) the ids as add_jobs gave them
  if coalesce(jsonb_array_length(ordered), 0) <> cardinality(added) then
    ordered := (select coalesce(jsonb_agg(id::text order by position), '[]'::jsonb) from unnest(added) with ordinality as a(id, position));
  end if;
  return jsonb_build_object('ids', ordered)::text;
exception when others then
  get stacked diagnostics
    error_code = returned_sqlstate, error_message = message_text, error_detail = pg_exception_detail,
    error_hint = pg_exception_hint, error_constraint = constraint_name, error_table = table_name,
    error_schema = schema_name, error_column = column_name;
  return jsonb_build_object('error', jsonb_build_object(
    'code', error_code, 'message', error_message, 'detail', nullif(error_detail, ''), 'hint', nullif(error_hint, ''),
    'constraint', nullif(error_constraint, ''), 'table', nullif(error_table, ''), 'schema', nullif(error_schema, ''),
    'column', nullif(error_column, '')
  ))::text;
end
$$;


--
-- Name: try_post_transfer(jsonb); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.try_post_transfer(request jsonb) RETURNS text
    LANGUAGE plpgsql
    AS $$
declare
  kind text := request->>'kind';
  pending boolean := request->>'kind' = 'hold';
  hold ledgerbox.transfers;
  release jsonb;
  legs jsonb := '[]';
  leg jsonb;
  currency ledgerbox.currencies;
  scale numeric;
  amount numeric;
  factor numeric;
  keys text[] := '{}';
  locked int;
  accounts jsonb;
  transfer ledgerbox.transfers;
  error_code text;
  error_message text;
  error_detail text;
  error_hint text;
  error_constraint text;
  error_table text;
  error_schema text;
  error_column text;
begin
  if kind not in ('posted', 'hold', 'post_hold', 'void_hold') then
    return null;
  end if;
  -- a post or void resolves a hold: its one leg is released, and posted in full by a post
  if kind in ('post_hold', 'void_hold') then
    select * into hold from ledgerbox.transfers t where t.id = (request->>'hold_id')::uuid;
    if not found or hold.kind <> 'hold' then
      return null;
    end if;
    select jsonb_build_object('from', source.key, 'to', destination.key, 'currency', credit.currency, 'amount', credit.amount::text)
    into release
    from ledgerbox.entries credit
    join ledgerbox.entries debit on debit.transfer_id = credit.transfer_id and debit.leg = credit.leg and debit.amount < 0
    join ledgerbox.accounts source on source.id = debit.account_id
    join ledgerbox.accounts destination on destination.id = credit.account_id
    where credit.transfer_id = hold.id and credit.amount > 0;
    if release is null then
      return null;
    end if;
    keys := array[release->>'from', release->>'to'];
    if kind = 'post_hold' then
      legs := jsonb_build_array(release);
    end if;
  end if;

  -- amounts to the ledger's minor units, as toLedgerMinorUnits does
  for leg in select value from jsonb_array_elements(coalesce(request->'legs', '[]')) loop
    select * into currency from ledgerbox.currencies c where c.code = leg->>'currency';
    if not found or (leg->>'exponent' is not null and (leg->>'exponent')::numeric <> currency.exponent) then
      return null;
    end if;
    scale := coalesce((leg->>'scale')::numeric, currency.exponent);
    amount := (leg->>'amount')::numeric;
    if scale < currency.exponent then
      amount := amount * power(currency.base::numeric, currency.exponent - scale);
    elsif scale > currency.exponent then
      factor := power(currency.base::numeric, scale - currency.exponent);
      if mod(amount, factor) <> 0 then
        return null;
      end if;
      amount := div(amount, factor);
    end if;
    if amount <= 0 or amount > 9223372036854775807 then
      return null;
    end if;
    legs := legs || jsonb_build_object('from', leg->>'from', 'to', leg->>'to', 'currency', currency.code, 'amount', amount::bigint::text);
    keys := keys || array[leg->>'from', leg->>'to'];
  end loop;

  -- every account once, in ascending id order (the one lock order of every writer)
  select count(*), jsonb_object_agg(l.key, jsonb_build_object('id', l.id, 'currency', l.currency))
  into locked, accounts
  from (
    select a.key, a.id, a.currency from ledgerbox.accounts a where a.key = any(keys) order by a.id for update of a
  ) l;
  if locked <> (select count(distinct k) from unnest(keys) k) then
    return null;
  end if;

  -- No check of its own past this point: the database's rules (a replay is a key taken, a
  -- resolved hold is hold_resolved_once, an expired one hold_not_expired, a currency mismatch
  -- entry_account_currency_fk, the funds account_available_not_negative, a balance past bigint
  -- numeric_value_out_of_range) refuse the write below, and the exception block answers null
  -- for them: the TypeScript path then explains the refusal with its exact error.
  -- the transfer and its entries in one statement, as every writer writes them (0012)
  with written as (
    insert into ledgerbox.transfers as t (key, kind, hold_id, void_reason, expires_at, metadata, effective_at)
    values (
      request->>'key', kind, hold.id, request->>'void_reason', (request->>'expires_at')::timestamptz,
      coalesce(request->'metadata', '{}'), coalesce((request->>'effective_at')::timestamptz, now())
    )
    on conflict (key) do nothing
    returning *
  ), written_entries as (
    insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
    select w.id, (l.position - 1)::smallint, (accounts->side.key->>'id')::bigint, l.leg->>'currency', side.amount,
      case when pending then 'pending' else 'posted' end, w.effective_at
    from written w
    cross join jsonb_array_elements(legs) with ordinality as l(leg, position)
    cross join lateral (values
      (1, l.leg->>'from', -(l.leg->>'amount')::bigint),
      (2, l.leg->>'to', (l.leg->>'amount')::bigint)
    ) side(n, key, amount)
    order by l.position, side.n
  )
  select * into transfer from written;
  if not found then
    return null;
  end if;

  return jsonb_build_object('posted', jsonb_build_object(
    'transfer', jsonb_build_object(
      'id', transfer.id::text, 'key', transfer.key, 'kind', transfer.kind, 'hold_id', transfer.hold_id::text,
      'reverses_id', null, 'void_reason', transfer.void_reason,
      'expires_at', to_json(transfer.expires_at) #>> '{}', 'metadata', transfer.metadata,
      'effective_at', to_json(transfer.effective_at) #>> '{}', 'created_at', to_json(transfer.created_at) #>> '{}'
    ),
    'legs', legs,
    'currencies', (
      select jsonb_agg(jsonb_build_object('code', c.code, 'base', c.base, 'exponent', c.exponent))
      from ledgerbox.currencies c
      where c.code in (select a.value->>'currency' from jsonb_each(accounts) a)
    )
  ))::text;
exception when others then
  get stacked diagnostics
    error_code = returned_sqlstate, error_message = message_text, error_detail = pg_exception_detail,
    error_hint = pg_exception_hint, error_constraint = constraint_name, error_table = table_name,
    error_schema = schema_name, error_column = column_name;
  if error_code = '22003' or error_constraint in (
    'hold_resolved_once', 'transfer_reversed_once', 'hold_not_expired', 'entry_account_currency_fk',
    'account_available_not_negative', 'effective_not_before_original'
  ) then
    return null;
  end if;
  return jsonb_build_object('error', jsonb_build_object(
    'code', error_code, 'message', error_message, 'detail', nullif(error_detail, ''), 'hint', nullif(error_hint, ''),
    'constraint', nullif(error_constraint, ''), 'table', nullif(error_table, ''), 'schema', nullif(error_schema, ''),
    'column', nullif(error_column, '')
  ))::text;
end
$$;


--
-- Name: try_post_transfer_with_jobs(jsonb, json, boolean); Type: FUNCTION; Schema: ledgerbox; Owner: -
--

CREATE FUNCTION ledgerbox.try_post_transfer_with_jobs(request jsonb, specs json, job_key_preserve_run_at boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql
    AS $$
declare
  answer text;
  error_code text;
  error_message text;
  error_detail text;
  error_hint text;
  error_constraint text;
  error_table text;
  error_schema text;
  error_column text;
begin
  answer := ledgerbox.try_post_transfer(request);
  if answer is not null and answer::jsonb ? 'posted' then
    perform count(*) from ledgerbox.add_jobs(specs, job_key_preserve_run_at);
  end if;
  return answer;
exception when others then
  get stacked diagnostics
    error_code = returned_sqlstate, error_message = message_text, error_detail = pg_exception_detail,
    error_hint = pg_exception_hint, error_constraint = constraint_name, error_table = table_name,
    error_schema = schema_name, error_column = column_name;
  return jsonb_build_object('error', jsonb_build_object(
    'code', error_code, 'message', error_message, 'detail', nullif(error_detail, ''), 'hint', nullif(error_hint, ''),
    'constraint', nullif(error_constraint, ''), 'table', nullif(error_table, ''), 'schema', nullif(error_schema, ''),
    'column', nullif(error_column, '')
  ))::text;
end
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: accounts; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.accounts (
    id bigint NOT NULL,
    key text NOT NULL,
    currency text NOT NULL,
    allow_negative boolean DEFAULT false NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    posted_balance bigint DEFAULT 0 NOT NULL,
    pending_incoming bigint DEFAULT 0 NOT NULL,
    pending_outgoing bigint DEFAULT 0 NOT NULL,
    version bigint DEFAULT 0 NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    updated_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    clearing boolean DEFAULT false NOT NULL,
    CONSTRAINT account_available_not_negative CHECK ((allow_negative OR ((posted_balance - pending_outgoing) >= 0))),
    CONSTRAINT account_key_format CHECK (((length(key) >= 1) AND (length(key) <= 200))),
    CONSTRAINT account_metadata_is_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT account_pending_not_negative CHECK (((pending_incoming >= 0) AND (pending_outgoing >= 0)))
);


--
-- Name: TABLE accounts; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.accounts IS 'posted_balance, pending_incoming and pending_outgoing are cached ("actual") balances; the sum of entries is the "expected" one. available = posted_balance - pending_outgoing.';


--
-- Name: accounts_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.accounts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.accounts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: alert_deliveries; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.alert_deliveries (
    alert_id bigint NOT NULL,
    channel text NOT NULL,
    delivered_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    outcome text NOT NULL,
    CONSTRAINT alert_delivery_outcome_known CHECK ((outcome = ANY (ARRAY['sent'::text, 'logged'::text, 'suppressed_duplicate'::text, 'no_channel'::text])))
);


--
-- Name: alerts; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.alerts (
    id bigint NOT NULL,
    severity text NOT NULL,
    kind text NOT NULL,
    workflow_id uuid,
    message text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    dedupe_key text,
    CONSTRAINT alert_severity_known CHECK ((severity = ANY (ARRAY['critical'::text, 'warning'::text, 'info'::text])))
);


--
-- Name: alerts_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.alerts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.alerts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: balance_checkpoints; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.balance_checkpoints (
    account_id bigint NOT NULL,
    posted bigint NOT NULL,
    pending_incoming bigint NOT NULL,
    pending_outgoing bigint NOT NULL,
    run_id bigint NOT NULL,
    verified_at timestamp(3) with time zone DEFAULT now() NOT NULL
);


--
-- Name: batch_jobs; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.batch_jobs (
    batch_id bigint NOT NULL,
    job_id bigint NOT NULL
);


--
-- Name: batch_job_states; Type: VIEW; Schema: ledgerbox; Owner: -
--

CREATE VIEW ledgerbox.batch_job_states AS
 SELECT bj.batch_id,
    bj.job_id,
        CASE
            WHEN (j.id IS NULL) THEN 'completed'::text
            WHEN (j.locked_at IS NOT NULL) THEN 'running'::text
            WHEN (j.attempts < j.max_attempts) THEN 'waiting'::text
            ELSE 'failed'::text
        END AS state
   FROM (ledgerbox.batch_jobs bj
     LEFT JOIN graphile_worker._private_jobs j ON ((j.id = bj.job_id)));


--
-- Name: batch_runs; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.batch_runs (
    id bigint NOT NULL,
    name text NOT NULL,
    task text NOT NULL,
    jobs integer NOT NULL,
    started_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    started_snapshot pg_snapshot DEFAULT pg_current_snapshot() NOT NULL,
    finished_at timestamp(3) with time zone,
    completed integer,
    failed integer,
    movement jsonb,
    alert_id bigint,
    CONSTRAINT batch_jobs_positive CHECK ((jobs > 0)),
    CONSTRAINT batch_name_format CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT batch_outcomes_add_up CHECK (((finished_at IS NULL) OR ((completed + failed) = jobs))),
    CONSTRAINT batch_summary_complete CHECK ((((finished_at IS NULL) = (completed IS NULL)) AND ((finished_at IS NULL) = (failed IS NULL)) AND ((finished_at IS NULL) = (movement IS NULL))))
);


--
-- Name: batch_runs_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.batch_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.batch_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: currencies; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.currencies (
    code text NOT NULL,
    base smallint DEFAULT 10 NOT NULL,
    exponent smallint NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    CONSTRAINT currency_base_in_range CHECK (((base >= 2) AND (base <= 100))),
    CONSTRAINT currency_code_format CHECK ((code ~ '^[A-Z][A-Z0-9_]{1,15}$'::text)),
    CONSTRAINT currency_exponent_in_range CHECK (((exponent >= 0) AND (exponent <= 18)))
);


--
-- Name: TABLE currencies; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.currencies IS 'ISO 4217 currencies (seeded) and custom ones (defineCurrency): amounts are bigint minor units, exponent says how many minor units make a major one.';


--
-- Name: entries; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.entries (
    id bigint NOT NULL,
    transfer_id uuid NOT NULL,
    leg smallint NOT NULL,
    account_id bigint NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL,
    phase text NOT NULL,
    effective_at timestamp(3) with time zone NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    created_xact bigint DEFAULT ((pg_current_xact_id())::text)::bigint NOT NULL,
    CONSTRAINT entry_amount_not_zero CHECK ((amount <> 0)),
    CONSTRAINT entry_phase_known CHECK ((phase = ANY (ARRAY['posted'::text, 'pending'::text])))
);


--
-- Name: TABLE entries; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.entries IS 'Append-only. amount > 0 moves money into the account, < 0 out of it. phase pending: reserved by an unresolved hold; posted: counts in posted_balance.';


--
-- Name: entries_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.entries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.entries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: exchanges; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.exchanges (
    workflow_id uuid NOT NULL,
    source_account text NOT NULL,
    target_account text NOT NULL,
    source_currency text NOT NULL,
    target_currency text NOT NULL,
    source_amount bigint NOT NULL,
    hold_id uuid NOT NULL,
    quote_id text,
    rate_amount bigint,
    rate_scale smallint,
    quote_expires_at timestamp(3) with time zone,
    target_amount bigint,
    settlement_id uuid,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    CONSTRAINT exchange_amount_positive CHECK ((source_amount > 0)),
    CONSTRAINT exchange_currencies_differ CHECK ((source_currency <> target_currency)),
    CONSTRAINT exchange_quote_whole CHECK ((((quote_id IS NULL) = (rate_amount IS NULL)) AND ((rate_amount IS NULL) = (quote_expires_at IS NULL)))),
    CONSTRAINT exchange_rate_positive CHECK (((rate_amount IS NULL) OR (rate_amount > 0)))
);


--
-- Name: step_attempts; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.step_attempts (
    id bigint NOT NULL,
    workflow_id uuid NOT NULL,
    step text NOT NULL,
    attempt integer NOT NULL,
    max_attempts integer NOT NULL,
    job_id bigint,
    worker_id text,
    outcome text NOT NULL,
    error text,
    started_at timestamp(3) with time zone NOT NULL,
    finished_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    result jsonb,
    CONSTRAINT step_attempt_error_when_failed CHECK (((outcome = 'failed'::text) = (error IS NOT NULL))),
    CONSTRAINT step_attempt_outcome_known CHECK ((outcome = ANY (ARRAY['succeeded'::text, 'failed'::text, 'already_done'::text, 'waiting'::text])))
);


--
-- Name: COLUMN step_attempts.result; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON COLUMN ledgerbox.step_attempts.result IS 'The step''s result, on the succeeded attempt that recorded it: at most one per workflow step (step_attempts_one_result). Read as ledgerbox.step_results.';


--
-- Name: step_results; Type: VIEW; Schema: ledgerbox; Owner: -
--

CREATE VIEW ledgerbox.step_results AS
 SELECT a.workflow_id,
    a.step,
    a.result,
    a.finished_at AS recorded_at
   FROM ledgerbox.step_attempts a
  WHERE (a.result IS NOT NULL);


--
-- Name: VIEW step_results; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON VIEW ledgerbox.step_results IS 'Every step''s result, once per workflow step: the result of its succeeded attempt (ledgerbox.step_attempts.result). Read-only; written by the step engine with the attempt.';


--
-- Name: transfers; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.transfers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    key text NOT NULL,
    kind text NOT NULL,
    hold_id uuid,
    reverses_id uuid,
    void_reason text,
    expires_at timestamp(3) with time zone,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    effective_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    created_xact xid8 DEFAULT pg_current_xact_id() NOT NULL,
    workflow_id uuid DEFAULT (NULLIF(current_setting('ledgerbox.workflow_id'::text, true), ''::text))::uuid,
    CONSTRAINT transfer_expiry_only_on_holds CHECK (((expires_at IS NULL) OR (kind = 'hold'::text))),
    CONSTRAINT transfer_hold_reference_matches_kind CHECK (((kind = ANY (ARRAY['post_hold'::text, 'void_hold'::text])) = (hold_id IS NOT NULL))),
    CONSTRAINT transfer_key_format CHECK (((length(key) >= 1) AND (length(key) <= 200))),
    CONSTRAINT transfer_kind_known CHECK ((kind = ANY (ARRAY['posted'::text, 'hold'::text, 'post_hold'::text, 'void_hold'::text, 'reversal'::text]))),
    CONSTRAINT transfer_metadata_is_object CHECK ((jsonb_typeof(metadata) = 'object'::text)),
    CONSTRAINT transfer_reversal_reference_matches_kind CHECK (((kind = 'reversal'::text) = (reverses_id IS NOT NULL))),
    CONSTRAINT transfer_void_reason_known CHECK ((void_reason = ANY (ARRAY['voided'::text, 'expired'::text]))),
    CONSTRAINT transfer_void_reason_matches_kind CHECK (((kind = 'void_hold'::text) = (void_reason IS NOT NULL)))
);


--
-- Name: TABLE transfers; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.transfers IS 'Append-only. key is the caller''s idempotency key. A hold reserves funds; a post_hold or void_hold resolves it exactly once; a reversal undoes a posted transfer.';


--
-- Name: workflows; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.workflows (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    kind text NOT NULL,
    key text NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    current_step text NOT NULL,
    subject jsonb DEFAULT '{}'::jsonb NOT NULL,
    failed_step text,
    failure_reason text,
    resumed_at timestamp(3) with time zone,
    created_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    updated_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    subject_key text,
    queue_seq bigint,
    wait_step text,
    waiting_for text[],
    wake_at timestamp(3) with time zone,
    ended_waits text[] DEFAULT '{}'::text[] NOT NULL,
    held_back text,
    CONSTRAINT workflow_failure_has_reason CHECK (((status = ANY (ARRAY['failed'::text, 'compensated'::text, 'compensation_failed'::text])) = (failure_reason IS NOT NULL))),
    CONSTRAINT workflow_status_known CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'completed'::text, 'failed'::text, 'compensated'::text, 'compensation_failed'::text]))),
    CONSTRAINT workflow_subject_is_object CHECK ((jsonb_typeof(subject) = 'object'::text)),
    CONSTRAINT workflow_subject_key_format CHECK (((subject_key IS NULL) OR ((length(subject_key) >= 1) AND (length(subject_key) <= 200)))),
    CONSTRAINT workflow_version_positive CHECK ((version >= 1))
);


--
-- Name: TABLE workflows; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.workflows IS 'One row per workflow. failed: a step failed for good and compensation is under way; compensated: the money is back where it started.';


--
-- Name: COLUMN workflows.subject; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON COLUMN ledgerbox.workflows.subject IS 'The workflow''s input: identifiers only (account keys, ids), checked by its definition''s contract.';


--
-- Name: COLUMN workflows.subject_key; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON COLUMN ledgerbox.workflows.subject_key IS 'One running workflow per subject key at a time when set; the others wait as queued.';


--
-- Name: workflow_money; Type: VIEW; Schema: ledgerbox; Owner: -
--

CREATE VIEW ledgerbox.workflow_money AS
 SELECT w.id AS workflow_id,
    w.kind,
    w.key,
    w.status,
    source.account AS source_account,
    target.account AS target_account,
    source.amount AS source_amount,
    source.currency AS source_currency,
    target.amount AS target_amount,
    target.currency AS target_currency,
    first_hold.id AS hold_id,
    settlement.id AS settlement_id
   FROM (((((ledgerbox.workflows w
     LEFT JOIN LATERAL ( SELECT t.id
           FROM ledgerbox.transfers t
          WHERE ((t.workflow_id = w.id) AND (t.kind = 'hold'::text))
          ORDER BY t.created_at, t.id
         LIMIT 1) first_hold ON (true))
     LEFT JOIN LATERAL ( SELECT t.id
           FROM ledgerbox.transfers t
          WHERE (t.workflow_id = w.id)
          ORDER BY (t.kind = 'hold'::text) DESC, t.created_at, t.id
         LIMIT 1) first_transfer ON (true))
     LEFT JOIN LATERAL ( SELECT a.key AS account,
            (- e.amount) AS amount,
            e.currency
           FROM (ledgerbox.entries e
             JOIN ledgerbox.accounts a ON ((a.id = e.account_id)))
          WHERE ((e.transfer_id = first_transfer.id) AND (e.amount < 0))
          ORDER BY e.leg, e.id
         LIMIT 1) source ON (true))
     LEFT JOIN LATERAL ( SELECT t.id
           FROM ledgerbox.transfers t
          WHERE ((t.workflow_id = w.id) AND (t.kind = ANY (ARRAY['posted'::text, 'post_hold'::text])))
          ORDER BY t.created_at DESC, t.id DESC
         LIMIT 1) settlement ON (true))
     LEFT JOIN LATERAL ( SELECT a.key AS account,
            e.amount,
            e.currency
           FROM (ledgerbox.entries e
             JOIN ledgerbox.accounts a ON ((a.id = e.account_id)))
          WHERE ((e.transfer_id = settlement.id) AND (e.amount > 0))
          ORDER BY e.leg DESC, e.id DESC
         LIMIT 1) target ON (true));


--
-- Name: VIEW workflow_money; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON VIEW ledgerbox.workflow_money IS 'What money each workflow is about, whatever its kind: found through the transfers its steps made (transfers.workflow_id).';


--
-- Name: failed_jobs; Type: VIEW; Schema: ledgerbox; Owner: -
--

CREATE VIEW ledgerbox.failed_jobs AS
 WITH worker_jobs AS (
         SELECT j.id AS job_id,
            t.identifier AS task,
            (j.attempts)::integer AS attempts,
            (j.max_attempts)::integer AS max_attempts,
            j.last_error,
            j.updated_at AS failed_at,
                CASE
                    WHEN (j.attempts >= j.max_attempts) THEN 'failed'::text
                    ELSE 'retrying'::text
                END AS state,
                CASE
                    WHEN ((t.identifier = 'ledgerbox:step'::text) AND ((j.payload ->> 'workflowId'::text) ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'::text)) THEN ((j.payload ->> 'workflowId'::text))::uuid
                    ELSE NULL::uuid
                END AS workflow_id,
                CASE
                    WHEN (t.identifier = 'ledgerbox:step'::text) THEN (j.payload ->> 'step'::text)
                    ELSE NULL::text
                END AS step,
            (j.locked_by IS NOT NULL) AS running
           FROM (graphile_worker._private_jobs j
             JOIN graphile_worker._private_tasks t ON ((t.id = j.task_id)))
          WHERE (j.last_error IS NOT NULL)
        ), last_step_failures AS (
         SELECT DISTINCT ON (a.workflow_id, a.step) a.job_id,
            a.attempt,
            a.max_attempts,
            a.error,
            a.finished_at,
            a.workflow_id,
            a.step
           FROM (ledgerbox.step_attempts a
             JOIN ledgerbox.workflows w ON ((w.id = a.workflow_id)))
          WHERE ((a.outcome = 'failed'::text) AND (a.finished_at > COALESCE(w.resumed_at, '-infinity'::timestamp with time zone)) AND (NOT (EXISTS ( SELECT 1
                   FROM ledgerbox.step_results r
                  WHERE ((r.workflow_id = a.workflow_id) AND (r.step = a.step))))))
          ORDER BY a.workflow_id, a.step, a.id DESC
        ), step_jobs AS (
         SELECT f.job_id,
            'ledgerbox:step'::text AS task,
            f.attempt AS attempts,
            f.max_attempts,
            f.error AS last_error,
            f.finished_at AS failed_at,
                CASE
                    WHEN ((f.attempt < f.max_attempts) AND (w.status =
                    CASE
                        WHEN (f.step = 'compensate'::text) THEN 'failed'::text
                        ELSE 'running'::text
                    END)) THEN 'retrying'::text
                    ELSE 'failed'::text
                END AS state,
            f.workflow_id,
            f.step,
            false AS running
           FROM (last_step_failures f
             JOIN ledgerbox.workflows w ON ((w.id = f.workflow_id)))
        )
 SELECT failed.job_id,
    failed.task,
    failed.state,
    failed.attempts,
    failed.max_attempts,
    failed.failed_at,
    failed.last_error,
    failed.workflow_id,
    failed.step,
    m.kind AS workflow_kind,
    m.status AS workflow_status,
    m.source_account,
    m.target_account,
    m.source_amount AS amount,
    m.source_currency AS currency,
    m.hold_id,
    m.settlement_id,
    failed.running
   FROM (( SELECT worker_jobs.job_id,
            worker_jobs.task,
            worker_jobs.attempts,
            worker_jobs.max_attempts,
            worker_jobs.last_error,
            worker_jobs.failed_at,
            worker_jobs.state,
            worker_jobs.workflow_id,
            worker_jobs.step,
            worker_jobs.running
           FROM worker_jobs
        UNION ALL
         SELECT step_jobs.job_id,
            step_jobs.task,
            step_jobs.attempts,
            step_jobs.max_attempts,
            step_jobs.last_error,
            step_jobs.failed_at,
            step_jobs.state,
            step_jobs.workflow_id,
            step_jobs.step,
            step_jobs.running
           FROM step_jobs) failed
     LEFT JOIN ledgerbox.workflow_money m ON ((m.workflow_id = failed.workflow_id)));


--
-- Name: VIEW failed_jobs; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON VIEW ledgerbox.failed_jobs IS 'Jobs that failed: graphile-worker jobs with an error and workflow steps with failed attempts, told apart by state (failed | retrying), with the money they concern.';


--
-- Name: holds; Type: VIEW; Schema: ledgerbox; Owner: -
--

CREATE VIEW ledgerbox.holds AS
 SELECT hold.id,
    hold.key,
    source.key AS from_account,
    destination.key AS to_account,
    credit.currency,
    credit.amount,
        CASE
            WHEN (resolution.kind = 'post_hold'::text) THEN 'posted'::text
            WHEN (resolution.void_reason = 'expired'::text) THEN 'expired'::text
            WHEN (resolution.kind = 'void_hold'::text) THEN 'voided'::text
            ELSE 'pending'::text
        END AS status,
    ( SELECT COALESCE(sum(e.amount), (0)::numeric) AS "coalesce"
           FROM ledgerbox.entries e
          WHERE ((e.transfer_id = resolution.id) AND (e.amount > 0))) AS posted_amount,
    hold.expires_at,
    hold.metadata,
    hold.created_at,
    resolution.id AS resolved_by,
    resolution.created_at AS resolved_at
   FROM (((((ledgerbox.transfers hold
     JOIN ledgerbox.entries credit ON (((credit.transfer_id = hold.id) AND (credit.amount > 0))))
     JOIN ledgerbox.entries debit ON (((debit.transfer_id = hold.id) AND (debit.amount < 0))))
     JOIN ledgerbox.accounts source ON ((source.id = debit.account_id)))
     JOIN ledgerbox.accounts destination ON ((destination.id = credit.account_id)))
     LEFT JOIN ledgerbox.transfers resolution ON ((resolution.hold_id = hold.id)))
  WHERE (hold.kind = 'hold'::text);


--
-- Name: investigations; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.investigations (
    id bigint NOT NULL,
    dedupe_key text NOT NULL,
    severity text NOT NULL,
    title text NOT NULL,
    opened_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    closed_at timestamp(3) with time zone,
    closed_by text,
    resolution text,
    CONSTRAINT investigation_closed_with_resolution CHECK (((closed_at IS NULL) = (resolution IS NULL)))
);


--
-- Name: investigations_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.investigations ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.investigations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: migrations; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.migrations (
    id integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: open_hold_expiries; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.open_hold_expiries (
    hold_id uuid NOT NULL,
    expires_at timestamp(3) with time zone
);


--
-- Name: TABLE open_hold_expiries; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.open_hold_expiries IS 'Maintained by triggers on transfers: a row per pending hold (expires_at null when it has no expiry), deleted when the hold is resolved.';


--
-- Name: operator_actions; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.operator_actions (
    id bigint NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    reason text NOT NULL,
    performed_by text DEFAULT CURRENT_USER NOT NULL,
    performed_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT operator_action_has_reason CHECK ((length(btrim(reason)) > 0)),
    CONSTRAINT operator_action_known CHECK ((action = ANY (ARRAY['retry_job'::text, 'retry_task_jobs'::text, 'resume_workflow'::text, 'cancel_workflow'::text])))
);


--
-- Name: TABLE operator_actions; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.operator_actions IS 'Append-only audit of every recovery: who (database user), when, what and why.';


--
-- Name: operator_actions_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.operator_actions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.operator_actions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: provider_calls; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.provider_calls (
    idempotency_key text NOT NULL,
    workflow_id uuid NOT NULL,
    step text NOT NULL,
    provider text NOT NULL,
    response jsonb NOT NULL,
    recorded_at timestamp(3) with time zone DEFAULT now() NOT NULL
);


--
-- Name: reconciliation_findings; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.reconciliation_findings (
    id bigint NOT NULL,
    run_id bigint NOT NULL,
    severity text NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    account text,
    currency text,
    expected numeric,
    actual numeric,
    difference numeric,
    detail text NOT NULL,
    CONSTRAINT finding_kind_known CHECK ((kind = ANY (ARRAY['balance_drift'::text, 'pending_drift'::text, 'unbalanced_transfer'::text, 'currency_not_zero'::text, 'forbidden_overdraft'::text, 'failed_not_compensated'::text, 'statement_difference'::text, 'money_in_limbo'::text, 'stuck_workflow'::text, 'failed_and_compensated'::text, 'failed_job'::text, 'clearing_not_zero'::text, 'statement_difference_within_tolerance'::text, 'statement_lines_inconsistent'::text, 'statement_line_not_in_ledger'::text, 'statement_line_differs'::text, 'ledger_movement_not_on_statement'::text]))),
    CONSTRAINT finding_severity_known CHECK ((severity = ANY (ARRAY['critical'::text, 'warning'::text])))
);


--
-- Name: reconciliation_findings_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.reconciliation_findings ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.reconciliation_findings_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: reconciliation_runs; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.reconciliation_runs (
    id bigint NOT NULL,
    trigger text NOT NULL,
    night date,
    as_of timestamp(3) with time zone NOT NULL,
    full_verification boolean NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    headline text,
    snapshot pg_snapshot,
    entries_checked bigint DEFAULT 0 NOT NULL,
    movement jsonb DEFAULT '{}'::jsonb NOT NULL,
    report_subject text,
    report_text text,
    report_html text,
    report_path text,
    report_sent_at timestamp(3) with time zone,
    started_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    finished_at timestamp(3) with time zone,
    CONSTRAINT reconciliation_night_when_scheduled CHECK (((trigger = 'schedule'::text) = (night IS NOT NULL))),
    CONSTRAINT reconciliation_status_known CHECK ((status = ANY (ARRAY['running'::text, 'clean'::text, 'warnings'::text, 'critical'::text, 'failed'::text]))),
    CONSTRAINT reconciliation_trigger_known CHECK ((trigger = ANY (ARRAY['schedule'::text, 'manual'::text])))
);


--
-- Name: reconciliation_runs_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.reconciliation_runs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.reconciliation_runs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: statement_balances; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.statement_balances (
    statement_id bigint NOT NULL,
    line integer NOT NULL,
    account text NOT NULL,
    currency text NOT NULL,
    as_of timestamp(3) with time zone NOT NULL,
    balance bigint NOT NULL,
    description text,
    CONSTRAINT statement_balance_description_length CHECK (((description IS NULL) OR (length(description) <= 1000)))
);


--
-- Name: statement_lines; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.statement_lines (
    statement_id bigint NOT NULL,
    line integer NOT NULL,
    account text NOT NULL,
    currency text NOT NULL,
    as_of timestamp(3) with time zone NOT NULL,
    amount bigint NOT NULL,
    reference text,
    description text,
    CONSTRAINT statement_line_amount_not_zero CHECK ((amount <> 0)),
    CONSTRAINT statement_line_description_length CHECK (((description IS NULL) OR (length(description) <= 1000))),
    CONSTRAINT statement_line_reference_format CHECK (((reference IS NULL) OR ((length(reference) >= 1) AND (length(reference) <= 200))))
);


--
-- Name: statements; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.statements (
    id bigint NOT NULL,
    source text NOT NULL,
    file_name text NOT NULL,
    imported_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    imported_by text DEFAULT CURRENT_USER NOT NULL
);


--
-- Name: statements_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.statements ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.statements_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: step_attempts_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.step_attempts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.step_attempts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: workers; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.workers (
    worker_id text NOT NULL,
    process text NOT NULL,
    started_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp(3) with time zone DEFAULT now() NOT NULL
);


--
-- Name: workflow_queue_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

CREATE SEQUENCE ledgerbox.workflow_queue_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: workflow_signals; Type: TABLE; Schema: ledgerbox; Owner: -
--

CREATE TABLE ledgerbox.workflow_signals (
    id bigint NOT NULL,
    workflow_id uuid NOT NULL,
    name text NOT NULL,
    signal_key text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    received_at timestamp(3) with time zone DEFAULT now() NOT NULL,
    consumed_step text,
    consumed_at timestamp(3) with time zone,
    CONSTRAINT workflow_signal_consumed_whole CHECK (((consumed_step IS NULL) = (consumed_at IS NULL))),
    CONSTRAINT workflow_signal_name_format CHECK ((name ~ '^[a-z][a-z0-9_.:-]{0,99}$'::text)),
    CONSTRAINT workflow_signal_payload_is_object CHECK ((jsonb_typeof(payload) = 'object'::text))
);


--
-- Name: TABLE workflow_signals; Type: COMMENT; Schema: ledgerbox; Owner: -
--

COMMENT ON TABLE ledgerbox.workflow_signals IS 'Signals sent to workflows (signalWorkflow). consumed_step: the wait that took it, in the transaction that recorded its result.';


--
-- Name: workflow_signals_id_seq; Type: SEQUENCE; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.workflow_signals ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME ledgerbox.workflow_signals_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: workflow_timeline; Type: VIEW; Schema: ledgerbox; Owner: -
--

CREATE VIEW ledgerbox.workflow_timeline AS
 SELECT w.id AS workflow_id,
    w.created_at AS at,
    'created'::text AS event,
    NULL::text AS step,
    NULL::text AS outcome,
    format('%s %s%s started%s'::text, w.kind, w.key,
        CASE
            WHEN (w.version > 1) THEN format(' (version %s)'::text, w.version)
            ELSE ''::text
        END,
        CASE
            WHEN (w.subject_key IS NULL) THEN ''::text
            ELSE format(' for subject %s'::text, w.subject_key)
        END) AS detail
   FROM ledgerbox.workflows w
UNION ALL
 SELECT a.workflow_id,
    a.finished_at AS at,
    'attempt'::text AS event,
    a.step,
    a.outcome,
    format('attempt %s of %s, %s ms%s'::text, a.attempt, a.max_attempts, ((EXTRACT(epoch FROM (a.finished_at - a.started_at)) * (1000)::numeric))::bigint,
        CASE
            WHEN (a.error IS NOT NULL) THEN ('
'::text || a.error)
            ELSE ''::text
        END) AS detail
   FROM ledgerbox.step_attempts a
UNION ALL
 SELECT t.workflow_id,
    t.created_at AS at,
    'transfer'::text AS event,
    t.kind AS step,
    NULL::text AS outcome,
    format('%s %s: %s'::text, t.kind, t.key, ( SELECT string_agg(format('%s %s %s'::text, acc.key, e.amount, e.currency), ', '::text ORDER BY e.leg, e.amount) AS string_agg
           FROM (ledgerbox.entries e
             JOIN ledgerbox.accounts acc ON ((acc.id = e.account_id)))
          WHERE (e.transfer_id = t.id))) AS detail
   FROM ledgerbox.transfers t
  WHERE (t.workflow_id IS NOT NULL)
UNION ALL
 SELECT al.workflow_id,
    al.created_at AS at,
    'alert'::text AS event,
    al.kind AS step,
    al.severity AS outcome,
    al.message AS detail
   FROM ledgerbox.alerts al
  WHERE (al.workflow_id IS NOT NULL)
UNION ALL
 SELECT (o.target)::uuid AS workflow_id,
    o.performed_at AS at,
    'operator'::text AS event,
    o.action AS step,
    NULL::text AS outcome,
    format('%s by %s: %s'::text, o.action, o.performed_by, o.reason) AS detail
   FROM ledgerbox.operator_actions o
  WHERE (o.action = ANY (ARRAY['resume_workflow'::text, 'cancel_workflow'::text]))
UNION ALL
 SELECT ((j.payload ->> 'workflowId'::text))::uuid AS workflow_id,
    j.run_at AS at,
    'pending job'::text AS event,
    (j.payload ->> 'step'::text) AS step,
        CASE
            WHEN (j.locked_by IS NOT NULL) THEN 'running'::text
            ELSE 'waiting'::text
        END AS outcome,
    format('job %s, attempt %s of %s, runs at %s'::text, j.id, j.attempts, j.max_attempts, j.run_at) AS detail
   FROM (graphile_worker._private_jobs j
     JOIN graphile_worker._private_tasks t ON ((t.id = j.task_id)))
  WHERE ((t.identifier = 'ledgerbox:step'::text) AND ((j.payload ->> 'workflowId'::text) ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'::text))
UNION ALL
 SELECT s.workflow_id,
    s.received_at AS at,
    'signal'::text AS event,
    s.consumed_step AS step,
        CASE
            WHEN (s.consumed_step IS NOT NULL) THEN 'consumed'::text
            ELSE 'not consumed'::text
        END AS outcome,
    format('%s (key %s)%s'::text, s.name, s.signal_key, COALESCE(format(', consumed by %s at %s'::text, s.consumed_step, s.consumed_at), ''::text)) AS detail
   FROM ledgerbox.workflow_signals s;


--
-- Name: accounts account_id_currency_unique; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.accounts
    ADD CONSTRAINT account_id_currency_unique UNIQUE (id, currency);


--
-- Name: accounts account_key_unique; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.accounts
    ADD CONSTRAINT account_key_unique UNIQUE (key);


--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);


--
-- Name: alert_deliveries alert_deliveries_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.alert_deliveries
    ADD CONSTRAINT alert_deliveries_pkey PRIMARY KEY (alert_id);


--
-- Name: alerts alerts_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.alerts
    ADD CONSTRAINT alerts_pkey PRIMARY KEY (id);


--
-- Name: balance_checkpoints balance_checkpoints_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.balance_checkpoints
    ADD CONSTRAINT balance_checkpoints_pkey PRIMARY KEY (account_id);


--
-- Name: batch_jobs batch_jobs_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.batch_jobs
    ADD CONSTRAINT batch_jobs_pkey PRIMARY KEY (batch_id, job_id);


--
-- Name: batch_runs batch_runs_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.batch_runs
    ADD CONSTRAINT batch_runs_pkey PRIMARY KEY (id);


--
-- Name: currencies currencies_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.currencies
    ADD CONSTRAINT currencies_pkey PRIMARY KEY (code);


--
-- Name: entries entries_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.entries
    ADD CONSTRAINT entries_pkey PRIMARY KEY (id);


--
-- Name: exchanges exchanges_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.exchanges
    ADD CONSTRAINT exchanges_pkey PRIMARY KEY (workflow_id);


--
-- Name: transfers hold_resolved_once; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.transfers
    ADD CONSTRAINT hold_resolved_once UNIQUE (hold_id);


--
-- Name: investigations investigations_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.investigations
    ADD CONSTRAINT investigations_pkey PRIMARY KEY (id);


--
-- Name: migrations migrations_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.migrations
    ADD CONSTRAINT migrations_pkey PRIMARY KEY (id);


--
-- Name: open_hold_expiries open_hold_expiries_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.open_hold_expiries
    ADD CONSTRAINT open_hold_expiries_pkey PRIMARY KEY (hold_id);


--
-- Name: operator_actions operator_actions_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.operator_actions
    ADD CONSTRAINT operator_actions_pkey PRIMARY KEY (id);


--
-- Name: provider_calls provider_calls_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.provider_calls
    ADD CONSTRAINT provider_calls_pkey PRIMARY KEY (idempotency_key);


--
-- Name: reconciliation_findings reconciliation_findings_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.reconciliation_findings
    ADD CONSTRAINT reconciliation_findings_pkey PRIMARY KEY (id);


--
-- Name: reconciliation_runs reconciliation_runs_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.reconciliation_runs
    ADD CONSTRAINT reconciliation_runs_pkey PRIMARY KEY (id);


--
-- Name: statement_balances statement_balances_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statement_balances
    ADD CONSTRAINT statement_balances_pkey PRIMARY KEY (statement_id, line);


--
-- Name: statement_lines statement_lines_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statement_lines
    ADD CONSTRAINT statement_lines_pkey PRIMARY KEY (statement_id, line);


--
-- Name: statements statements_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statements
    ADD CONSTRAINT statements_pkey PRIMARY KEY (id);


--
-- Name: step_attempts step_attempt_result_when_succeeded; Type: CHECK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ledgerbox.step_attempts
    ADD CONSTRAINT step_attempt_result_when_succeeded CHECK (((outcome = 'succeeded'::text) = (result IS NOT NULL))) NOT VALID;


--
-- Name: step_attempts step_attempts_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.step_attempts
    ADD CONSTRAINT step_attempts_pkey PRIMARY KEY (id);


--
-- Name: transfers transfer_key_unique; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.transfers
    ADD CONSTRAINT transfer_key_unique UNIQUE (key);


--
-- Name: transfers transfer_reversed_once; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.transfers
    ADD CONSTRAINT transfer_reversed_once UNIQUE (reverses_id);


--
-- Name: transfers transfers_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.transfers
    ADD CONSTRAINT transfers_pkey PRIMARY KEY (id);


--
-- Name: workers workers_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (worker_id);


--
-- Name: workflows workflow_key_unique; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.workflows
    ADD CONSTRAINT workflow_key_unique UNIQUE (key);


--
-- Name: workflow_signals workflow_signal_once; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.workflow_signals
    ADD CONSTRAINT workflow_signal_once UNIQUE (workflow_id, signal_key);


--
-- Name: workflow_signals workflow_signals_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.workflow_signals
    ADD CONSTRAINT workflow_signals_pkey PRIMARY KEY (id);


--
-- Name: workflows workflows_pkey; Type: CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.workflows
    ADD CONSTRAINT workflows_pkey PRIMARY KEY (id);


--
-- Name: alerts_created_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX alerts_created_at ON ledgerbox.alerts USING btree (created_at);


--
-- Name: alerts_dedupe_key_created_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX alerts_dedupe_key_created_at ON ledgerbox.alerts USING btree (dedupe_key, created_at) WHERE (dedupe_key IS NOT NULL);


--
-- Name: alerts_severity_id; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX alerts_severity_id ON ledgerbox.alerts USING btree (severity, id DESC);


--
-- Name: batch_runs_open; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX batch_runs_open ON ledgerbox.batch_runs USING btree (id) WHERE (finished_at IS NULL);


--
-- Name: entries_account_effective_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX entries_account_effective_at ON ledgerbox.entries USING btree (account_id, effective_at);


--
-- Name: entries_created_xact; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX entries_created_xact ON ledgerbox.entries USING brin (created_xact) WITH (autosummarize='on');


--
-- Name: entries_transfer_id; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX entries_transfer_id ON ledgerbox.entries USING btree (transfer_id);


--
-- Name: exchanges_hold_id; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX exchanges_hold_id ON ledgerbox.exchanges USING btree (hold_id);


--
-- Name: investigations_one_open_per_key; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE UNIQUE INDEX investigations_one_open_per_key ON ledgerbox.investigations USING btree (dedupe_key) WHERE (closed_at IS NULL);


--
-- Name: open_hold_expiries_expires_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX open_hold_expiries_expires_at ON ledgerbox.open_hold_expiries USING btree (expires_at);


--
-- Name: reconciliation_findings_run; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX reconciliation_findings_run ON ledgerbox.reconciliation_findings USING btree (run_id);


--
-- Name: reconciliation_runs_one_per_night; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE UNIQUE INDEX reconciliation_runs_one_per_night ON ledgerbox.reconciliation_runs USING btree (night) WHERE (night IS NOT NULL);


--
-- Name: statement_balances_as_of; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX statement_balances_as_of ON ledgerbox.statement_balances USING btree (as_of);


--
-- Name: statement_balances_statement_account; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX statement_balances_statement_account ON ledgerbox.statement_balances USING btree (statement_id, account, as_of);


--
-- Name: statement_lines_statement_account; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX statement_lines_statement_account ON ledgerbox.statement_lines USING btree (statement_id, account, as_of);


--
-- Name: step_attempts_one_result; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE UNIQUE INDEX step_attempts_one_result ON ledgerbox.step_attempts USING btree (workflow_id, step) WHERE (result IS NOT NULL);


--
-- Name: step_attempts_workflow; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX step_attempts_workflow ON ledgerbox.step_attempts USING btree (workflow_id, id);


--
-- Name: transfers_created_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX transfers_created_at ON ledgerbox.transfers USING btree (created_at);


--
-- Name: transfers_created_xact; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX transfers_created_xact ON ledgerbox.transfers USING btree (created_xact);


--
-- Name: transfers_workflow_id; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX transfers_workflow_id ON ledgerbox.transfers USING btree (workflow_id) WHERE (workflow_id IS NOT NULL);


--
-- Name: workflow_signals_unconsumed; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflow_signals_unconsumed ON ledgerbox.workflow_signals USING btree (workflow_id, name) WHERE (consumed_step IS NULL);


--
-- Name: workflows_failed; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflows_failed ON ledgerbox.workflows USING btree (updated_at) WHERE (status = ANY (ARRAY['failed'::text, 'compensation_failed'::text]));


--
-- Name: workflows_held_back; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflows_held_back ON ledgerbox.workflows USING btree (updated_at) WHERE (held_back IS NOT NULL);


--
-- Name: workflows_one_active_per_subject; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE UNIQUE INDEX workflows_one_active_per_subject ON ledgerbox.workflows USING btree (subject_key) WHERE ((subject_key IS NOT NULL) AND (status = ANY (ARRAY['running'::text, 'failed'::text, 'compensation_failed'::text])));


--
-- Name: workflows_queued; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflows_queued ON ledgerbox.workflows USING btree (subject_key, queue_seq) WHERE (status = 'queued'::text);


--
-- Name: workflows_status_updated_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflows_status_updated_at ON ledgerbox.workflows USING btree (status, updated_at DESC, id DESC);


--
-- Name: workflows_unfinished; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflows_unfinished ON ledgerbox.workflows USING btree (updated_at) WHERE (status = ANY (ARRAY['running'::text, 'failed'::text]));


--
-- Name: workflows_updated_at; Type: INDEX; Schema: ledgerbox; Owner: -
--

CREATE INDEX workflows_updated_at ON ledgerbox.workflows USING btree (updated_at);


--
-- Name: accounts accounts_guard; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER accounts_guard BEFORE INSERT OR UPDATE ON ledgerbox.accounts FOR EACH ROW EXECUTE FUNCTION ledgerbox.guard_account_row();


--
-- Name: accounts accounts_no_delete; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER accounts_no_delete BEFORE DELETE ON ledgerbox.accounts FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_accounting_record();


--
-- Name: accounts accounts_no_truncate; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON ledgerbox.accounts FOR EACH STATEMENT EXECUTE FUNCTION ledgerbox.refuse_change_to_accounting_record();


--
-- Name: alerts alerts_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER alerts_append_only BEFORE DELETE OR UPDATE ON ledgerbox.alerts FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: entries entries_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER entries_append_only BEFORE DELETE OR UPDATE ON ledgerbox.entries FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_accounting_record();


--
-- Name: entries entries_check_and_apply; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER entries_check_and_apply AFTER INSERT ON ledgerbox.entries REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ledgerbox.entries_check_and_apply();


--
-- Name: entries entries_no_truncate; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON ledgerbox.entries FOR EACH STATEMENT EXECUTE FUNCTION ledgerbox.refuse_change_to_accounting_record();


--
-- Name: entries entries_take_from_transfer; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER entries_take_from_transfer BEFORE INSERT ON ledgerbox.entries FOR EACH ROW WHEN (((new.phase IS NULL) OR (new.effective_at IS NULL))) EXECUTE FUNCTION ledgerbox.entries_take_from_transfer();


--
-- Name: investigations investigations_closed_is_history; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER investigations_closed_is_history BEFORE UPDATE ON ledgerbox.investigations FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_rewriting_closed_investigation();


--
-- Name: operator_actions operator_actions_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER operator_actions_append_only BEFORE DELETE OR UPDATE ON ledgerbox.operator_actions FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: provider_calls provider_calls_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER provider_calls_append_only BEFORE DELETE OR UPDATE ON ledgerbox.provider_calls FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: reconciliation_findings reconciliation_findings_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER reconciliation_findings_append_only BEFORE DELETE OR UPDATE ON ledgerbox.reconciliation_findings FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: reconciliation_runs reconciliation_runs_finished_is_history; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER reconciliation_runs_finished_is_history BEFORE UPDATE ON ledgerbox.reconciliation_runs FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_rewriting_finished_run();


--
-- Name: statement_balances statement_balances_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER statement_balances_append_only BEFORE DELETE OR UPDATE ON ledgerbox.statement_balances FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: statement_lines statement_lines_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER statement_lines_append_only BEFORE DELETE OR UPDATE ON ledgerbox.statement_lines FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: step_attempts step_attempts_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER step_attempts_append_only BEFORE DELETE OR UPDATE ON ledgerbox.step_attempts FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_workflow_record();


--
-- Name: step_results step_results_written_with_attempt; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER step_results_written_with_attempt INSTEAD OF INSERT ON ledgerbox.step_results FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_step_result_insert();


--
-- Name: transfers transfers_append_only; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER transfers_append_only BEFORE DELETE OR UPDATE ON ledgerbox.transfers FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_change_to_accounting_record();


--
-- Name: transfers transfers_check_and_track; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER transfers_check_and_track AFTER INSERT ON ledgerbox.transfers REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION ledgerbox.transfers_check_and_track();


--
-- Name: transfers transfers_no_truncate; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON ledgerbox.transfers FOR EACH STATEMENT EXECUTE FUNCTION ledgerbox.refuse_change_to_accounting_record();


--
-- Name: workflow_signals workflow_signals_consumed_once; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER workflow_signals_consumed_once BEFORE DELETE OR UPDATE ON ledgerbox.workflow_signals FOR EACH ROW EXECUTE FUNCTION ledgerbox.refuse_signal_change();


--
-- Name: workflows workflows_start_next_of_subject; Type: TRIGGER; Schema: ledgerbox; Owner: -
--

CREATE TRIGGER workflows_start_next_of_subject AFTER UPDATE OF status ON ledgerbox.workflows FOR EACH ROW WHEN (((new.subject_key IS NOT NULL) AND (old.status = ANY (ARRAY['running'::text, 'failed'::text, 'compensation_failed'::text])) AND (new.status = ANY (ARRAY['completed'::text, 'compensated'::text])))) EXECUTE FUNCTION ledgerbox.start_next_of_subject();


--
-- Name: accounts accounts_currency_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.accounts
    ADD CONSTRAINT accounts_currency_fkey FOREIGN KEY (currency) REFERENCES ledgerbox.currencies(code);


--
-- Name: alert_deliveries alert_deliveries_alert_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.alert_deliveries
    ADD CONSTRAINT alert_deliveries_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES ledgerbox.alerts(id);


--
-- Name: alerts alerts_workflow_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.alerts
    ADD CONSTRAINT alerts_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES ledgerbox.workflows(id);


--
-- Name: balance_checkpoints balance_checkpoints_account_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.balance_checkpoints
    ADD CONSTRAINT balance_checkpoints_account_id_fkey FOREIGN KEY (account_id) REFERENCES ledgerbox.accounts(id);


--
-- Name: balance_checkpoints balance_checkpoints_run_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.balance_checkpoints
    ADD CONSTRAINT balance_checkpoints_run_id_fkey FOREIGN KEY (run_id) REFERENCES ledgerbox.reconciliation_runs(id);


--
-- Name: batch_jobs batch_jobs_batch_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.batch_jobs
    ADD CONSTRAINT batch_jobs_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES ledgerbox.batch_runs(id);


--
-- Name: batch_runs batch_runs_alert_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.batch_runs
    ADD CONSTRAINT batch_runs_alert_id_fkey FOREIGN KEY (alert_id) REFERENCES ledgerbox.alerts(id);


--
-- Name: exchanges exchanges_hold_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.exchanges
    ADD CONSTRAINT exchanges_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES ledgerbox.transfers(id);


--
-- Name: exchanges exchanges_settlement_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.exchanges
    ADD CONSTRAINT exchanges_settlement_id_fkey FOREIGN KEY (settlement_id) REFERENCES ledgerbox.transfers(id);


--
-- Name: exchanges exchanges_source_currency_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.exchanges
    ADD CONSTRAINT exchanges_source_currency_fkey FOREIGN KEY (source_currency) REFERENCES ledgerbox.currencies(code);


--
-- Name: exchanges exchanges_target_currency_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.exchanges
    ADD CONSTRAINT exchanges_target_currency_fkey FOREIGN KEY (target_currency) REFERENCES ledgerbox.currencies(code);


--
-- Name: exchanges exchanges_workflow_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.exchanges
    ADD CONSTRAINT exchanges_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES ledgerbox.workflows(id);


--
-- Name: open_hold_expiries open_hold_expiries_hold_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.open_hold_expiries
    ADD CONSTRAINT open_hold_expiries_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES ledgerbox.transfers(id);


--
-- Name: provider_calls provider_calls_workflow_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.provider_calls
    ADD CONSTRAINT provider_calls_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES ledgerbox.workflows(id);


--
-- Name: reconciliation_findings reconciliation_findings_run_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.reconciliation_findings
    ADD CONSTRAINT reconciliation_findings_run_id_fkey FOREIGN KEY (run_id) REFERENCES ledgerbox.reconciliation_runs(id);


--
-- Name: statement_balances statement_balances_currency_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statement_balances
    ADD CONSTRAINT statement_balances_currency_fkey FOREIGN KEY (currency) REFERENCES ledgerbox.currencies(code);


--
-- Name: statement_balances statement_balances_statement_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statement_balances
    ADD CONSTRAINT statement_balances_statement_id_fkey FOREIGN KEY (statement_id) REFERENCES ledgerbox.statements(id);


--
-- Name: statement_lines statement_lines_currency_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statement_lines
    ADD CONSTRAINT statement_lines_currency_fkey FOREIGN KEY (currency) REFERENCES ledgerbox.currencies(code);


--
-- Name: statement_lines statement_lines_statement_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.statement_lines
    ADD CONSTRAINT statement_lines_statement_id_fkey FOREIGN KEY (statement_id) REFERENCES ledgerbox.statements(id);


--
-- Name: step_attempts step_attempts_workflow_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.step_attempts
    ADD CONSTRAINT step_attempts_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES ledgerbox.workflows(id);


--
-- Name: transfers transfers_hold_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.transfers
    ADD CONSTRAINT transfers_hold_id_fkey FOREIGN KEY (hold_id) REFERENCES ledgerbox.transfers(id);


--
-- Name: transfers transfers_reverses_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.transfers
    ADD CONSTRAINT transfers_reverses_id_fkey FOREIGN KEY (reverses_id) REFERENCES ledgerbox.transfers(id);


--
-- Name: workflow_signals workflow_signals_workflow_id_fkey; Type: FK CONSTRAINT; Schema: ledgerbox; Owner: -
--

ALTER TABLE ONLY ledgerbox.workflow_signals
    ADD CONSTRAINT workflow_signals_workflow_id_fkey FOREIGN KEY (workflow_id) REFERENCES ledgerbox.workflows(id);


--
-- PostgreSQL database dump complete
--

