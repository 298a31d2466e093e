-- Adding jobs in one statement that never leaves the caller's transaction failed, as
-- ledgerbox.try_post_transfer posts: ledgerbox.add_jobs inside an exception block, which undoes
-- whatever the call wrote if it fails and answers with the error's fields instead of raising
-- it. `enqueue` in a host's transaction then sends this one statement instead of SAVEPOINT,
-- add_jobs, RELEASE: the host transaction of a posting and its job goes from six round trips to
-- four (BEGIN, the posting, the job, COMMIT). src/outbox/enqueue.ts raises the error as the
-- statement would have, so callers see the same errors as before.
--
-- Answers {"ids": ["…", …]} (graphile-worker's job ids as text, in the order add_jobs added
-- them) or {"error": {"code": sqlstate, "message": …, …}}.
create function ledgerbox.try_add_jobs(specs json, job_key_preserve_run_at boolean default false)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  error_code text;
  error_message text;
  error_detail text;
  error_hint text;
  error_constraint text;
  error_table text;
  error_schema text;
  error_column text;
begin
  return jsonb_build_object('ids', (
    select coalesce(jsonb_agg(added.id::text order by added.position), '[]'::jsonb)
    from ledgerbox.add_jobs(specs, job_key_preserve_run_at) with ordinality as added(id, position)
  ))::text;
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
