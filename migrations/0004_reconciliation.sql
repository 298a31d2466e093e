-- Nightly reconciliation: is the money where the books say? Runs, their findings (history),
-- the checkpoints that keep a run's cost proportional to what is new, external statements to
-- compare with, and the alerting that tells people by urgency.

-- Accounts that money should only pass through (funds awaiting payout): expected back at zero.
alter table ledgerbox.accounts add column clearing boolean not null default false;

create table ledgerbox.reconciliation_runs (
  id bigint generated always as identity primary key,
  trigger text not null,
  -- the night a scheduled run covers (UTC date): at most one run per night
  night date,
  as_of timestamptz(3) not null,
  full_verification boolean not null,
  status text not null default 'running',
  headline text,
  -- the snapshot the run read, so the next run counts exactly the entries this one did not see
  snapshot pg_snapshot,
  entries_checked bigint not null default 0,
  movement jsonb not null default '{}',
  report_subject text,
  report_text text,
  report_html text,
  report_path text,
  report_sent_at timestamptz(3),
  started_at timestamptz(3) not null default now(),
  finished_at timestamptz(3),
  constraint reconciliation_trigger_known check (trigger in ('schedule', 'manual')),
  constraint reconciliation_status_known check (status in ('running', 'clean', 'warnings', 'critical', 'failed')),
  constraint reconciliation_night_when_scheduled check ((trigger = 'schedule') = (night is not null))
);

create unique index reconciliation_runs_one_per_night on ledgerbox.reconciliation_runs (night) where night is not null;

create table ledgerbox.reconciliation_findings (
  id bigint generated always as identity primary key,
  run_id bigint not null references ledgerbox.reconciliation_runs (id),
  severity text not null,
  kind text not null,
  -- what the finding is about, stable from run to run: new / persisting / resolved compare on it
  subject text not null,
  account text,
  currency text,
  -- numeric: a difference between two bigints can outgrow a bigint
  expected numeric,
  actual numeric,
  difference numeric,
  detail text not null,
  constraint finding_severity_known check (severity in ('critical', 'warning')),
  constraint finding_kind_known check (kind in (
    'balance_drift', 'pending_drift', 'unbalanced_transfer', 'currency_not_zero', 'forbidden_overdraft',
    'failed_not_compensated', 'statement_difference', 'money_in_limbo', 'stuck_workflow',
    'failed_and_compensated', 'failed_job', 'clearing_not_zero', 'statement_difference_within_tolerance'
  ))
);

create index reconciliation_findings_run on ledgerbox.reconciliation_findings (run_id);

-- Verified per-account sums: the next run adds only entries its snapshot sees and this one's did not.
create table ledgerbox.balance_checkpoints (
  account_id bigint primary key references ledgerbox.accounts (id),
  posted bigint not null,
  pending_incoming bigint not null,
  pending_outgoing bigint not null,
  run_id bigint not null references ledgerbox.reconciliation_runs (id),
  verified_at timestamptz(3) not null default now()
);

-- Finding the transfers a run has not seen yet, by the transaction that made them.
create index transfers_created_xact on ledgerbox.transfers (created_xact);

-- And their entries, without an index lookup per transfer: each entry carries its transaction
-- (as a bigint, which BRIN can index; xid8 it is not). Entries are only ever appended, so the
-- transaction ids rise with the table's pages and a BRIN index (a few pages for millions of
-- rows, next to nothing per insert) lets an incremental run read only the recent pages.
-- autosummarize: each filled range is summarized by autovacuum soon after, not at the next
-- vacuum (until then the range is read whatever its transactions).
alter table ledgerbox.entries add column created_xact bigint not null default (pg_current_xact_id()::text::bigint);
create index entries_created_xact on ledgerbox.entries using brin (created_xact) with (autosummarize = on);

-- External statements (bank, processor): a balance per account at a date, to compare with the ledger.
create table ledgerbox.statements (
  id bigint generated always as identity primary key,
  source text not null,
  file_name text not null,
  imported_at timestamptz(3) not null default now(),
  imported_by text not null default current_user
);

create table ledgerbox.statement_balances (
  statement_id bigint not null references ledgerbox.statements (id),
  line integer not null,
  account text not null,
  currency text not null references ledgerbox.currencies (code),
  as_of timestamptz(3) not null,
  balance bigint not null,
  primary key (statement_id, line)
);

create index statement_balances_as_of on ledgerbox.statement_balances (as_of);

-- Alerts already delivered, and the investigations warnings open: an alert is not sent again
-- while its investigation (or its critical incident) is open.
create table ledgerbox.alert_deliveries (
  alert_id bigint primary key references ledgerbox.alerts (id),
  channel text not null,
  delivered_at timestamptz(3) not null default now(),
  outcome text not null,
  constraint alert_delivery_outcome_known check (outcome in ('sent', 'logged', 'suppressed_duplicate', 'no_channel'))
);

create table ledgerbox.investigations (
  id bigint generated always as identity primary key,
  dedupe_key text not null,
  severity text not null,
  title text not null,
  opened_at timestamptz(3) not null default now(),
  closed_at timestamptz(3),
  closed_by text,
  resolution text,
  constraint investigation_closed_with_resolution check ((closed_at is null) = (resolution is null))
);

create unique index investigations_one_open_per_key on ledgerbox.investigations (dedupe_key) where closed_at is null;

-- what an alert is about, so the same alert is recognised while it is open
alter table ledgerbox.alerts add column dedupe_key text;

create trigger reconciliation_findings_append_only before update or delete on ledgerbox.reconciliation_findings
  for each row execute function ledgerbox.refuse_change_to_workflow_record();
create trigger statement_balances_append_only before update or delete on ledgerbox.statement_balances
  for each row execute function ledgerbox.refuse_change_to_workflow_record();

-- A run is history once it has finished: its outcome cannot be rewritten, only its report
-- stored and marked sent (once each). An investigation, once closed, stays as it was closed.
create function ledgerbox.refuse_rewriting_finished_run() returns trigger
language plpgsql as $$
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

create function ledgerbox.refuse_rewriting_closed_investigation() returns trigger
language plpgsql as $$
begin
  if old.closed_at is not null
    or (new.id, new.dedupe_key, new.severity, new.title, new.opened_at) is distinct from (old.id, old.dedupe_key, old.severity, old.title, old.opened_at) then
    raise exception 'investigation %: only an open investigation may be closed, and only its closing is written', old.id
      using errcode = 'check_violation', constraint = 'closed_investigation_is_history';
  end if;
  return new;
end
$$;

create trigger reconciliation_runs_finished_is_history before update on ledgerbox.reconciliation_runs
  for each row execute function ledgerbox.refuse_rewriting_finished_run();
create trigger investigations_closed_is_history before update on ledgerbox.investigations
  for each row execute function ledgerbox.refuse_rewriting_closed_investigation();

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant select, insert on ledgerbox.reconciliation_runs, ledgerbox.reconciliation_findings, ledgerbox.statements,
      ledgerbox.statement_balances, ledgerbox.alert_deliveries, ledgerbox.investigations to ledgerbox_app;
    grant update (status, headline, snapshot, entries_checked, movement, finished_at, report_subject, report_text,
      report_html, report_path, report_sent_at) on ledgerbox.reconciliation_runs to ledgerbox_app;
    grant update (closed_at, closed_by, resolution) on ledgerbox.investigations to ledgerbox_app;
    -- delivery locks alerts with SELECT … FOR UPDATE SKIP LOCKED, which needs some UPDATE
    -- privilege on the table; the append-only trigger still refuses any change to an alert
    grant update (dedupe_key) on ledgerbox.alerts to ledgerbox_app;
    grant select, insert, update on ledgerbox.balance_checkpoints to ledgerbox_app;
  end if;
end
$$;
