-- A transfer and the jobs that follow it (postTransfer's `jobs`) in one statement, all or
-- nothing: ledgerbox.try_post_transfer, then, only when it wrote the transfer (never on a
-- replay, which it leaves to the TypeScript path), ledgerbox.add_jobs. One exception block
-- spans both, so a job that fails to be added undoes the transfer too, and the error is
-- answered instead of raised, as try_post_transfer answers its own: inside a host's
-- transaction this one statement needs no savepoint, and the host transaction stays usable
-- whatever happens here. Without it the jobs would cost a SAVEPOINT, a second statement and a
-- RELEASE on every posting that has jobs.
--
-- Answers what try_post_transfer answers: null (nothing written: a replay, a refusal, anything
-- unusual; the TypeScript path then decides, and adds the jobs only if it writes the transfer),
-- {"posted": {...}} (the transfer and its jobs are written) or {"error": {...}} (nothing is).
-- SECURITY INVOKER and the caller's search_path, like try_post_transfer: the caller's own rights
-- write the transfer (a host's triggers run as they do for any posting), and add_jobs is the
-- door to graphile-worker the application role already has.
create function ledgerbox.try_post_transfer_with_jobs(request jsonb, specs json, job_key_preserve_run_at boolean default false)
returns text
language plpgsql
as $$
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
