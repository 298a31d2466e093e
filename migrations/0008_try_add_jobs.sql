-- Adding jobs in one statement that never leaves the caller's transaction failed, as
-- ledgerbox.try_post_transfer posts: ledgerbox.add_jobs inside an exception block, which undoes
-- whatever the call wrote if it fails and answers with the error's fields instead of raising
-- it. `enqueue` in a host's transaction then sends this one statement instead of SAVEPOINT,
-- add_jobs, RELEASE: the host transaction of a posting and its job goes from six round trips to
-- four (BEGIN, the posting, the job, COMMIT). src/outbox/enqueue.ts raises the error as the
-- statement would have, so callers see the same errors as before.
--
-- Answers {"ids": ["…", …]} (graphile-worker's job ids as text, one per spec, in the specs'
-- order) or {"error": {"code": sqlstate, "message": …, …}}. graphile_worker.add_jobs returns
-- its jobs in an order of its own (grouped by task; keyed jobs added again come last), so the
-- ids are matched back to the specs by task, payload and key, the n-th alike spec to the n-th
-- alike job: the caller's jobs[i] gets ids[i]. SECURITY DEFINER to read those jobs back: the
-- application role cannot read graphile-worker's tables; it reads only the jobs just added.
create function ledgerbox.try_add_jobs(specs json, job_key_preserve_run_at boolean default false)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
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

revoke all on function ledgerbox.try_add_jobs(json, boolean) from public;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant execute on function ledgerbox.try_add_jobs(json, boolean) to ledgerbox_app;
  end if;
end
$$;
