-- Traces (docs/traces.md): the first step's job of a workflow, added by ledgerbox.start_workflow
-- in the host's transaction, carries the W3C traceparent of the host's span that started it, so
-- the job's span (and the steps after it) join the host's trace.
--
-- ledgerbox.start_workflow gains an eighth argument, `traceparent` (null: none, the payload is
-- as before). The function of migration 0009 stays, with its seven arguments, for a host of the
-- previous release still running while this one rolls out: it calls the new one with none.
-- The traceparent is checked here too (version 00, 55 characters, lowercase hex): a payload the
-- worker cannot take is refused when it is written, not when it runs.

create function ledgerbox.start_workflow(
  kind text, version integer, key text, subject jsonb, subject_key text, first_step text, jobs json, traceparent text
) returns table (workflow_id uuid, status text, replayed boolean, existing_kind text, existing_version integer,
  existing_subject jsonb, existing_subject_key text)
language plpgsql set search_path = pg_catalog, pg_temp as $$
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
$$;

-- the previous release's signature: the same start, with no traceparent
create or replace function ledgerbox.start_workflow(
  kind text, version integer, key text, subject jsonb, subject_key text, first_step text, jobs json
) returns table (workflow_id uuid, status text, replayed boolean, existing_kind text, existing_version integer,
  existing_subject jsonb, existing_subject_key text)
language sql set search_path = pg_catalog, pg_temp as $$
  select * from ledgerbox.start_workflow(kind, version, key, subject, subject_key, first_step, jobs, null::text)
$$;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant execute on function ledgerbox.start_workflow(text, integer, text, jsonb, text, text, json, text) to ledgerbox_app;
  end if;
end
$$;
