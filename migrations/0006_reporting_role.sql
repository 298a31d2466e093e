-- The read-only reporting role: for reconciliation reads, dashboards and an operator's psql
-- session. It reads every table and view of the ledgerbox schema and changes nothing: no
-- INSERT, UPDATE, DELETE or TRUNCATE anywhere, no DDL, no graphile-worker tables, and none of
-- the SECURITY DEFINER functions (add_jobs, enqueue_step, job_lock_holder are revoked from
-- public). Grant it to a login role of your own: `grant ledgerbox_reporting to analyst;`
do $$
begin
  create role ledgerbox_reporting nologin;
exception
  when duplicate_object or unique_violation then null; -- roles are per cluster; another database made it
  when insufficient_privilege then
    raise notice 'ledgerbox: no CREATEROLE privilege, role ledgerbox_reporting not created; see README "Privileges"';
end
$$;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_reporting') then
    grant usage on schema ledgerbox to ledgerbox_reporting;
    -- every table and view that exists now, including those of the migrations before this one
    grant select on all tables in schema ledgerbox to ledgerbox_reporting;
    -- and those later migrations create (they run as the same owner as this one)
    alter default privileges in schema ledgerbox grant select on tables to ledgerbox_reporting;
  end if;
end
$$;
