-- A successful step's bookkeeping in one statement, with every check it needs made under the
-- workflow's row lock: its result, its attempt, the workflow's new state and its jobs (the next
-- step's, and any the step adds with its result).
--
-- Why a function: a step whose work reads and writes nothing in the database (a compliance
-- decision that only reads its recorded provider answer, a no-op) needs no transaction of its
-- own. The runner read the workflow before the step ran (unlocked) and passes the row version it
-- saw (xmin); this function locks the row and finishes the step only if nothing changed since,
-- so the step's inputs were current when its result is recorded. Both writers of a step result
-- (this function and the failure path in src/workflows/run-step.ts) update the workflow row in
-- the same transaction, as do resume and cancel, so an unchanged xmin means unchanged results. One statement instead of BEGIN, lock, finish,
-- COMMIT, and its plans are cached by PL/pgSQL instead of planned per call.
--
-- Inside a step's transaction (a step that did database work) the row is already locked by the
-- caller, which checked the holder itself and passes no version (the step's own writes may have
-- touched the row): the checks here pass and cost nothing.
--
-- A job held by a worker (worker_id not null) is retired with the step: see retire_step_job.
--
-- Returns what happened, for the caller to act on:
--   finished  everything was written
--   changed   the workflow moved since `seen_version`: nothing written; run the step under the lock
--   fenced    another worker holds the job now (this one was taken for dead): nothing written
--   missing   no such workflow
-- Deletes the job of a step that has just been finished, in the transaction that finished it,
-- so the job cannot be delivered again and graphile-worker's own completion finds nothing left
-- to delete: a statement that writes nothing and so commits without waiting for the disk. One
-- flush per step instead of two. Only a job that is a ledgerbox step job, of this workflow and
-- step, whose result is recorded, held by this worker, and in no named queue (graphile-worker
-- unlocks a queue when it completes the job) is deleted; anything else is left for
-- graphile-worker to complete as usual. SECURITY DEFINER: the application role cannot touch
-- graphile-worker's tables, and this does nothing else.
create function ledgerbox.retire_step_job(job_id bigint, worker_id text, workflow_id uuid, step text) returns boolean
language sql security definer set search_path = pg_catalog, pg_temp as $$
  with retired as (
    delete from graphile_worker._private_jobs j
    using graphile_worker._private_tasks t
    where j.id = retire_step_job.job_id
      and j.locked_by = retire_step_job.worker_id
      and j.job_queue_id is null
      and t.id = j.task_id and t.identifier = 'ledgerbox:step'
      and j.payload->>'workflowId' = retire_step_job.workflow_id::text
      and j.payload->>'step' = retire_step_job.step
      and exists (select 1 from ledgerbox.step_results r where r.workflow_id = retire_step_job.workflow_id and r.step = retire_step_job.step)
    returning 1
  )
  select exists (select 1 from retired)
$$;

revoke all on function ledgerbox.retire_step_job(bigint, text, uuid, text) from public;

create function ledgerbox.finish_step(
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
  locked_version xid;
  resumed timestamptz;
begin
  select w.xmin, w.resumed_at into locked_version, resumed
  from ledgerbox.workflows w where w.id = finish_step.workflow_id
  for update;
  if not found then
    return 'missing';
  end if;
  if finish_step.worker_id is not null and ledgerbox.job_lock_holder(finish_step.job_id) is distinct from finish_step.worker_id then
    return 'fenced';
  end if;
  if finish_step.seen_version is not null and not (locked_version = finish_step.seen_version) then
    return 'changed';
  end if;

  insert into ledgerbox.step_results (workflow_id, step, result)
  values (finish_step.workflow_id, finish_step.step, finish_step.result);

  -- the attempt's number: the step's failures since the last resume, plus one
  insert into ledgerbox.step_attempts (workflow_id, step, attempt, max_attempts, job_id, worker_id, outcome, error, started_at)
  values (
    finish_step.workflow_id, finish_step.step,
    1 + (select count(*)::int from ledgerbox.step_attempts a
         where a.workflow_id = finish_step.workflow_id and a.step = finish_step.step and a.outcome = 'failed'
           and a.finished_at > coalesce(resumed, '-infinity')),
    finish_step.max_attempts, finish_step.job_id, finish_step.worker_id, 'succeeded', null, finish_step.started_at);

  update ledgerbox.workflows w
  set status = finish_step.new_status, current_step = finish_step.new_current_step, updated_at = now()
  where w.id = finish_step.workflow_id;

  if finish_step.jobs is not null then
    perform ledgerbox.add_jobs(finish_step.jobs);
  end if;
  if finish_step.worker_id is not null then
    perform ledgerbox.retire_step_job(finish_step.job_id, finish_step.worker_id, finish_step.workflow_id, finish_step.step);
  end if;
  return 'finished';
end
$$;

comment on function ledgerbox.finish_step(uuid, text, xid, bigint, text, integer, timestamptz, jsonb, text, text, json) is
  'A successful step''s result, attempt, workflow state and jobs in one statement, checked under the workflow''s lock (see migrations/0007_finish_step.sql).';

revoke all on function ledgerbox.finish_step(uuid, text, xid, bigint, text, integer, timestamptz, jsonb, text, text, json) from public;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant execute on function ledgerbox.retire_step_job(bigint, text, uuid, text) to ledgerbox_app;
    grant execute on function ledgerbox.finish_step(uuid, text, xid, bigint, text, integer, timestamptz, jsonb, text, text, json) to ledgerbox_app;
  end if;
end
$$;
