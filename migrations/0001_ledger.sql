-- The double-entry ledger: currencies, accounts, transfers and their entries.
--
-- Rules live here as named constraints and triggers, so they hold for every writer,
-- including raw SQL typed into psql: a transfer balances per currency, entries and
-- transfers are append-only (entries can only be added to a transfer in the transaction
-- that created it), a hold is resolved at most once, a transfer is reversed at most once,
-- cached balances change only with the entries that justify them, and an account that
-- forbids it never goes below zero.
--
-- Timestamps keep milliseconds, what a JavaScript Date carries, so a time read back and
-- passed in again (an as-of balance at a transfer's own effective time) means the same instant.

create table ledgerbox.currencies (
  code text primary key,
  base smallint not null default 10,
  exponent smallint not null,
  created_at timestamptz(3) not null default now(),
  constraint currency_code_format check (code ~ '^[A-Z][A-Z0-9_]{1,15}$'),
  constraint currency_base_in_range check (base between 2 and 100),
  constraint currency_exponent_in_range check (exponent between 0 and 18)
);

comment on table ledgerbox.currencies is
  'ISO 4217 currencies (seeded) and custom ones (defineCurrency): amounts are bigint minor units, exponent says how many minor units make a major one.';

create table ledgerbox.accounts (
  id bigint generated always as identity primary key,
  key text not null,
  currency text not null references ledgerbox.currencies (code),
  allow_negative boolean not null default false,
  metadata jsonb not null default '{}',
  posted_balance bigint not null default 0,
  pending_incoming bigint not null default 0,
  pending_outgoing bigint not null default 0,
  version bigint not null default 0,
  created_at timestamptz(3) not null default now(),
  updated_at timestamptz(3) not null default now(),
  constraint account_key_unique unique (key),
  -- the target of the entries' composite foreign key: an entry's currency is its account's
  constraint account_id_currency_unique unique (id, currency),
  constraint account_key_format check (length(key) between 1 and 200),
  constraint account_pending_not_negative check (pending_incoming >= 0 and pending_outgoing >= 0),
  constraint account_available_not_negative check (allow_negative or posted_balance - pending_outgoing >= 0),
  constraint account_metadata_is_object check (jsonb_typeof(metadata) = 'object')
);

comment on table ledgerbox.accounts is
  'posted_balance, pending_incoming and pending_outgoing are cached ("actual") balances; the sum of entries is the "expected" one. available = posted_balance - pending_outgoing.';

create table ledgerbox.transfers (
  id uuid primary key default gen_random_uuid(),
  key text not null,
  kind text not null,
  hold_id uuid references ledgerbox.transfers (id),
  reverses_id uuid references ledgerbox.transfers (id),
  void_reason text,
  expires_at timestamptz(3),
  metadata jsonb not null default '{}',
  effective_at timestamptz(3) not null default now(),
  created_at timestamptz(3) not null default now(),
  -- entries may only be added by the transaction that created the transfer
  created_xact xid8 not null default pg_current_xact_id(),
  constraint transfer_key_unique unique (key),
  constraint transfer_key_format check (length(key) between 1 and 200),
  constraint transfer_kind_known check (kind in ('posted', 'hold', 'post_hold', 'void_hold', 'reversal')),
  constraint transfer_hold_reference_matches_kind check ((kind in ('post_hold', 'void_hold')) = (hold_id is not null)),
  constraint transfer_reversal_reference_matches_kind check ((kind = 'reversal') = (reverses_id is not null)),
  constraint transfer_void_reason_matches_kind check ((kind = 'void_hold') = (void_reason is not null)),
  constraint transfer_void_reason_known check (void_reason in ('voided', 'expired')),
  constraint transfer_expiry_only_on_holds check (expires_at is null or kind = 'hold'),
  constraint transfer_metadata_is_object check (jsonb_typeof(metadata) = 'object'),
  -- exactly-once resolution, enforced where no race can get around it
  constraint hold_resolved_once unique (hold_id),
  constraint transfer_reversed_once unique (reverses_id)
);

create index transfers_created_at on ledgerbox.transfers (created_at);

comment on table ledgerbox.transfers is
  'Append-only. key is the caller''s idempotency key. A hold reserves funds; a post_hold or void_hold resolves it exactly once; a reversal undoes a posted transfer.';

create table ledgerbox.entries (
  id bigint generated always as identity primary key,
  transfer_id uuid not null references ledgerbox.transfers (id),
  leg smallint not null,
  account_id bigint not null,
  currency text not null,
  amount bigint not null,
  phase text not null,
  effective_at timestamptz(3) not null,
  created_at timestamptz(3) not null default now(),
  constraint entry_account_currency_fk foreign key (account_id, currency)
    references ledgerbox.accounts (id, currency),
  constraint entry_amount_not_zero check (amount <> 0),
  constraint entry_phase_known check (phase in ('posted', 'pending'))
);

create index entries_transfer_id on ledgerbox.entries (transfer_id);
create index entries_account_effective_at on ledgerbox.entries (account_id, effective_at);

comment on table ledgerbox.entries is
  'Append-only. amount > 0 moves money into the account, < 0 out of it. phase pending: reserved by an unresolved hold; posted: counts in posted_balance.';

-- An entry takes its phase and effective date from its transfer, so raw inserts cannot
-- disagree with it.
create function ledgerbox.entries_inherit_from_transfer() returns trigger
language plpgsql as $$
declare
  transfer record;
begin
  -- only what it needs: this runs once per entry
  select kind, created_xact, effective_at into transfer from ledgerbox.transfers where id = new.transfer_id;
  if not found then
    return new; -- the foreign key reports it
  end if;
  if transfer.kind = 'void_hold' then
    raise exception 'a void_hold transfer has no entries (transfer %)', new.transfer_id
      using errcode = 'check_violation', constraint = 'void_hold_has_no_entries';
  end if;
  if transfer.created_xact <> pg_current_xact_id() then
    raise exception 'transfer % is committed: entries cannot be added to it (post a new transfer)', new.transfer_id
      using errcode = 'insufficient_privilege', constraint = 'entries_only_with_their_transfer';
  end if;
  new.phase := case when transfer.kind = 'hold' then 'pending' else 'posted' end;
  new.effective_at := transfer.effective_at;
  return new;
end
$$;

create trigger entries_inherit_from_transfer before insert on ledgerbox.entries
  for each row execute function ledgerbox.entries_inherit_from_transfer();

-- Checked at commit, so a transfer's entries can be inserted one by one.
create function ledgerbox.assert_transfer_balanced() returns trigger
language plpgsql as $$
declare
  unbalanced record;
begin
  select currency, sum(amount) as total into unbalanced
  from ledgerbox.entries
  where transfer_id = new.transfer_id
  group by currency
  having sum(amount) <> 0
  limit 1;
  if found then
    raise exception 'transfer % does not balance in %: its entries sum to %',
      new.transfer_id, unbalanced.currency, unbalanced.total
      using errcode = 'check_violation', constraint = 'transfer_balanced_per_currency';
  end if;
  return null;
end
$$;

create constraint trigger transfer_balanced_per_currency
  after insert on ledgerbox.entries deferrable initially deferred
  for each row execute function ledgerbox.assert_transfer_balanced();

create function ledgerbox.assert_transfer_has_entries() returns trigger
language plpgsql as $$
begin
  if new.kind <> 'void_hold'
    and not exists (select 1 from ledgerbox.entries where transfer_id = new.id) then
    raise exception 'transfer % (%) has no entries', new.id, new.kind
      using errcode = 'check_violation', constraint = 'transfer_has_entries';
  end if;
  return null;
end
$$;

create constraint trigger transfer_has_entries
  after insert on ledgerbox.transfers deferrable initially deferred
  for each row execute function ledgerbox.assert_transfer_has_entries();

-- Accounting records are never changed or removed: corrections are reversal transfers.
create function ledgerbox.refuse_change_to_accounting_record() returns trigger
language plpgsql as $$
begin
  raise exception '%.% is append-only: % refused (post a reversal transfer instead)',
    tg_table_schema, tg_table_name, tg_op
    using errcode = 'insufficient_privilege';
end
$$;

create trigger entries_append_only before update or delete on ledgerbox.entries
  for each row execute function ledgerbox.refuse_change_to_accounting_record();
create trigger entries_no_truncate before truncate on ledgerbox.entries
  for each statement execute function ledgerbox.refuse_change_to_accounting_record();
create trigger transfers_append_only before update or delete on ledgerbox.transfers
  for each row execute function ledgerbox.refuse_change_to_accounting_record();
create trigger transfers_no_truncate before truncate on ledgerbox.transfers
  for each statement execute function ledgerbox.refuse_change_to_accounting_record();

-- An account's identity and currency are fixed once entries may point at it, and its cached
-- balances move only with entries: from the triggers below (trigger depth 2), never from a
-- statement of their own.
create function ledgerbox.guard_account_row() returns trigger
language plpgsql as $$
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

create trigger accounts_guard before insert or update on ledgerbox.accounts
  for each row execute function ledgerbox.guard_account_row();
create trigger accounts_no_delete before delete on ledgerbox.accounts
  for each row execute function ledgerbox.refuse_change_to_accounting_record();
create trigger accounts_no_truncate before truncate on ledgerbox.accounts
  for each statement execute function ledgerbox.refuse_change_to_accounting_record();

-- Unresolved holds that expire, so finding the expired ones costs what is open, not all history.
create table ledgerbox.open_hold_expiries (
  hold_id uuid primary key references ledgerbox.transfers (id),
  expires_at timestamptz(3) not null
);

create index open_hold_expiries_expires_at on ledgerbox.open_hold_expiries (expires_at);

comment on table ledgerbox.open_hold_expiries is
  'Maintained by triggers on transfers: a row per pending hold with an expiry, deleted when the hold is resolved.';

-- Cached balances follow the entries in the statement that adds them. SECURITY DEFINER: the
-- application role may add entries but has no privilege to write balances itself.
create function ledgerbox.apply_entries_to_balances() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  update ledgerbox.accounts a set
    posted_balance = a.posted_balance + change.posted,
    pending_incoming = a.pending_incoming + change.pending_incoming,
    pending_outgoing = a.pending_outgoing + change.pending_outgoing,
    version = a.version + 1,
    updated_at = now()
  from (
    select account_id,
      coalesce(sum(amount) filter (where phase = 'posted'), 0) as posted,
      coalesce(sum(amount) filter (where phase = 'pending' and amount > 0), 0) as pending_incoming,
      coalesce(-sum(amount) filter (where phase = 'pending' and amount < 0), 0) as pending_outgoing
    from inserted
    group by account_id
  ) change
  where a.id = change.account_id;
  return null;
end
$$;

create trigger entries_maintain_balances after insert on ledgerbox.entries
  referencing new table as inserted
  for each statement execute function ledgerbox.apply_entries_to_balances();

-- A hold's resolution (post or void) releases what the hold reserved; a hold with an expiry
-- is tracked until it is resolved.
create function ledgerbox.track_holds() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  -- most statements add posted transfers only: nothing here concerns them
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

  insert into ledgerbox.open_hold_expiries (hold_id, expires_at)
  select id, expires_at from inserted where kind = 'hold' and expires_at is not null;

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

create trigger transfers_track_holds after insert on ledgerbox.transfers
  referencing new table as inserted
  for each statement execute function ledgerbox.track_holds();

-- The outbox for the application role: graphile-worker's tables are row-level secured, so
-- jobs are added through this function, which runs as the schema owner and does only that.
--
-- It also closes a gap in graphile_worker.add_jobs: when a job with the same key is locked by
-- a worker at the very moment we add ours, its "on conflict do update ... where locked_at is
-- null" matches nothing and our job is silently dropped (the running job started before our
-- transaction's news). Such keys are added again: by then the running job is seen as locked,
-- so graphile-worker clears its key and inserts a new job.
create function ledgerbox.add_jobs(specs json, job_key_preserve_run_at boolean default false)
returns setof bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
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

revoke all on function ledgerbox.add_jobs(json, boolean) from public;

-- The common postings in one round trip: a transfer, a hold, a hold's post (in full) or void.
-- It does what the TypeScript path does (src/ledger/posting.ts writeTransfer): resolve the
-- amounts to the ledger's minor units, lock every account once in ascending id order, check
-- the key is new, the hold still open, the currencies and the funds, then insert the transfer
-- and its entries (the triggers above keep balances and check the rules as for any writer).
-- A refusal or anything out of the ordinary (a replayed key, a missing account, insufficient
-- funds, an unknown currency) writes nothing and returns null: the caller then takes the
-- TypeScript path, which reports it with its exact error. An error (a serialization failure, a
-- deadlock, a host's trigger refusing) is returned as {"error": {...}} with its SQLSTATE and
-- fields, for the caller to raise as inTransaction would; the exception block has undone the
-- partial write, so the caller's transaction stays usable whatever happens here.
create function ledgerbox.try_post_transfer(request jsonb) returns text
language plpgsql as $$
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
  account jsonb;
  change record;
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

  -- every account once, in ascending id order; the rows as locked are what the checks read
  select count(*), jsonb_object_agg(l.key, jsonb_build_object(
      'id', l.id, 'currency', l.currency, 'allow_negative', l.allow_negative, 'posted', l.posted_balance,
      'pending_incoming', l.pending_incoming, 'pending_outgoing', l.pending_outgoing))
  into locked, accounts
  from (
    select a.key, a.id, a.currency, a.allow_negative, a.posted_balance, a.pending_incoming, a.pending_outgoing
    from ledgerbox.accounts a where a.key = any(keys) order by a.id for update of a
  ) l;
  if locked <> (select count(distinct k) from unnest(keys) k) then
    return null;
  end if;

  -- under the locks: a replay, a resolved hold or an expired one is the TypeScript path's to report
  if exists (select 1 from ledgerbox.transfers t where t.key = request->>'key') then
    return null;
  end if;
  if hold.id is not null then
    if exists (select 1 from ledgerbox.transfers t where t.hold_id = hold.id)
      or (kind = 'post_hold' and hold.expires_at is not null and hold.expires_at <= clock_timestamp()) then
      return null;
    end if;
  end if;
  for leg in select value from jsonb_array_elements(legs) loop
    if accounts->(leg->>'from')->>'currency' <> leg->>'currency' or accounts->(leg->>'to')->>'currency' <> leg->>'currency' then
      return null;
    end if;
  end loop;
  -- the funds rule of assertFunds (and of account_available_not_negative), and bigint range
  for change in
    with moves (key, posted, pending_incoming, pending_outgoing) as (
      select l->>'from', case when pending then 0 else -(l->>'amount')::numeric end,
        0::numeric, case when pending then (l->>'amount')::numeric else 0 end
      from jsonb_array_elements(legs) l
      union all
      select l->>'to', case when pending then 0 else (l->>'amount')::numeric end,
        case when pending then (l->>'amount')::numeric else 0 end, 0
      from jsonb_array_elements(legs) l
      union all
      select release->>'from', 0, 0, -(release->>'amount')::numeric where release is not null
      union all
      select release->>'to', 0, -(release->>'amount')::numeric, 0 where release is not null
    )
    select key, sum(posted) as posted, sum(pending_incoming) as pending_incoming, sum(pending_outgoing) as pending_outgoing
    from moves group by key
  loop
    account := accounts->change.key;
    if (account->>'posted')::numeric + change.posted not between -9223372036854775807 and 9223372036854775807
      or (account->>'pending_incoming')::numeric + change.pending_incoming not between -9223372036854775807 and 9223372036854775807
      or (account->>'pending_outgoing')::numeric + change.pending_outgoing not between -9223372036854775807 and 9223372036854775807
      or (not (account->>'allow_negative')::boolean and change.posted - change.pending_outgoing < 0
        and (account->>'posted')::numeric - (account->>'pending_outgoing')::numeric + change.posted - change.pending_outgoing < 0) then
      return null;
    end if;
  end loop;

  insert into ledgerbox.transfers as t (key, kind, hold_id, void_reason, expires_at, metadata, effective_at)
  values (
    request->>'key', kind, hold.id, request->>'void_reason', (request->>'expires_at')::timestamptz,
    coalesce(request->'metadata', '{}'), coalesce((request->>'effective_at')::timestamptz, now())
  )
  on conflict (key) do nothing
  returning * into transfer;
  if not found then
    return null;
  end if;
  if jsonb_array_length(legs) > 0 then
    insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
    select transfer.id, (l.position - 1)::smallint, (accounts->side.key->>'id')::bigint, l.leg->>'currency', side.amount
    from jsonb_array_elements(legs) with ordinality as l(leg, position)
    cross join lateral (values
      (1, l.leg->>'from', -(l.leg->>'amount')::bigint),
      (2, l.leg->>'to', (l.leg->>'amount')::bigint)
    ) side(n, key, amount)
    order by l.position, side.n;
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
  return jsonb_build_object('error', jsonb_build_object(
    'code', error_code, 'message', error_message, 'detail', nullif(error_detail, ''), 'hint', nullif(error_hint, ''),
    'constraint', nullif(error_constraint, ''), 'table', nullif(error_table, ''), 'schema', nullif(error_schema, ''),
    'column', nullif(error_column, '')
  ))::text;
end
$$;

-- Holds as the operator asks about them: what is reserved, for whom, and what became of it.
create view ledgerbox.holds as
select
  hold.id,
  hold.key,
  source.key as from_account,
  destination.key as to_account,
  credit.currency,
  credit.amount,
  case
    when resolution.kind = 'post_hold' then 'posted'
    when resolution.void_reason = 'expired' then 'expired'
    when resolution.kind = 'void_hold' then 'voided'
    else 'pending'
  end as status,
  (select coalesce(sum(e.amount), 0) from ledgerbox.entries e
    where e.transfer_id = resolution.id and e.amount > 0) as posted_amount,
  hold.expires_at,
  hold.metadata,
  hold.created_at,
  resolution.id as resolved_by,
  resolution.created_at as resolved_at
from ledgerbox.transfers hold
join ledgerbox.entries credit on credit.transfer_id = hold.id and credit.amount > 0
join ledgerbox.entries debit on debit.transfer_id = hold.id and debit.amount < 0
join ledgerbox.accounts source on source.id = debit.account_id
join ledgerbox.accounts destination on destination.id = credit.account_id
left join ledgerbox.transfers resolution on resolution.hold_id = hold.id
where hold.kind = 'hold';

-- The application role: it may add accounting records, never change or remove them.
-- Grant it to your service's login role: `grant ledgerbox_app to my_service;`
do $$
begin
  create role ledgerbox_app nologin;
exception
  when duplicate_object or unique_violation then null; -- roles are per cluster; another database made it
  when insufficient_privilege then
    raise notice 'ledgerbox: no CREATEROLE privilege, role ledgerbox_app not created; see README "Privileges"';
end
$$;

do $$
begin
  if exists (select 1 from pg_roles where rolname = 'ledgerbox_app') then
    grant usage on schema ledgerbox to ledgerbox_app;
    grant select on all tables in schema ledgerbox to ledgerbox_app;
    grant insert on ledgerbox.currencies, ledgerbox.accounts, ledgerbox.transfers, ledgerbox.entries to ledgerbox_app;
    -- metadata only: balances follow entries (triggers), and SELECT … FOR UPDATE needs some
    -- UPDATE privilege on the table
    grant update (metadata, updated_at) on ledgerbox.accounts to ledgerbox_app;
    grant execute on function ledgerbox.add_jobs(json, boolean) to ledgerbox_app;
  end if;
end
$$;

insert into ledgerbox.currencies (code, exponent, base) values
  ('AED', 2, 10),
  ('AFN', 2, 10),
  ('ALL', 2, 10),
  ('AMD', 2, 10),
  ('AOA', 2, 10),
  ('ARS', 2, 10),
  ('AUD', 2, 10),
  ('AWG', 2, 10),
  ('AZN', 2, 10),
  ('BAM', 2, 10),
  ('BBD', 2, 10),
  ('BDT', 2, 10),
  ('BGN', 2, 10),
  ('BHD', 3, 10),
  ('BIF', 0, 10),
  ('BMD', 2, 10),
  ('BND', 2, 10),
  ('BOB', 2, 10),
  ('BOV', 2, 10),
  ('BRL', 2, 10),
  ('BSD', 2, 10),
  ('BTN', 2, 10),
  ('BWP', 2, 10),
  ('BYN', 2, 10),
  ('BZD', 2, 10),
  ('CAD', 2, 10),
  ('CDF', 2, 10),
  ('CHE', 2, 10),
  ('CHF', 2, 10),
  ('CHW', 2, 10),
  ('CLF', 4, 10),
  ('CLP', 0, 10),
  ('CNY', 2, 10),
  ('COP', 2, 10),
  ('COU', 2, 10),
  ('CRC', 2, 10),
  ('CUP', 2, 10),
  ('CVE', 2, 10),
  ('CZK', 2, 10),
  ('DJF', 0, 10),
  ('DKK', 2, 10),
  ('DOP', 2, 10),
  ('DZD', 2, 10),
  ('EGP', 2, 10),
  ('ERN', 2, 10),
  ('ETB', 2, 10),
  ('EUR', 2, 10),
  ('FJD', 2, 10),
  ('FKP', 2, 10),
  ('GBP', 2, 10),
  ('GEL', 2, 10),
  ('GHS', 2, 10),
  ('GIP', 2, 10),
  ('GMD', 2, 10),
  ('GNF', 0, 10),
  ('GTQ', 2, 10),
  ('GYD', 2, 10),
  ('HKD', 2, 10),
  ('HNL', 2, 10),
  ('HTG', 2, 10),
  ('HUF', 2, 10),
  ('IDR', 2, 10),
  ('ILS', 2, 10),
  ('INR', 2, 10),
  ('IQD', 3, 10),
  ('IRR', 2, 10),
  ('ISK', 0, 10),
  ('JMD', 2, 10),
  ('JOD', 3, 10),
  ('JPY', 0, 10),
  ('KES', 2, 10),
  ('KGS', 2, 10),
  ('KHR', 2, 10),
  ('KMF', 0, 10),
  ('KPW', 2, 10),
  ('KRW', 0, 10),
  ('KWD', 3, 10),
  ('KYD', 2, 10),
  ('KZT', 2, 10),
  ('LAK', 2, 10),
  ('LBP', 2, 10),
  ('LKR', 2, 10),
  ('LRD', 2, 10),
  ('LSL', 2, 10),
  ('LYD', 3, 10),
  ('MAD', 2, 10),
  ('MDL', 2, 10),
  ('MGA', 1, 5),
  ('MKD', 2, 10),
  ('MMK', 2, 10),
  ('MNT', 2, 10),
  ('MOP', 2, 10),
  ('MRU', 1, 5),
  ('MUR', 2, 10),
  ('MVR', 2, 10),
  ('MWK', 2, 10),
  ('MXN', 2, 10),
  ('MXV', 2, 10),
  ('MYR', 2, 10),
  ('MZN', 2, 10),
  ('NAD', 2, 10),
  ('NGN', 2, 10),
  ('NIO', 2, 10),
  ('NOK', 2, 10),
  ('NPR', 2, 10),
  ('NZD', 2, 10),
  ('OMR', 3, 10),
  ('PAB', 2, 10),
  ('PEN', 2, 10),
  ('PGK', 2, 10),
  ('PHP', 2, 10),
  ('PKR', 2, 10),
  ('PLN', 2, 10),
  ('PYG', 0, 10),
  ('QAR', 2, 10),
  ('RON', 2, 10),
  ('RSD', 2, 10),
  ('RUB', 2, 10),
  ('RWF', 0, 10),
  ('SAR', 2, 10),
  ('SBD', 2, 10),
  ('SCR', 2, 10),
  ('SDG', 2, 10),
  ('SEK', 2, 10),
  ('SGD', 2, 10),
  ('SHP', 2, 10),
  ('SLE', 2, 10),
  ('SOS', 2, 10),
  ('SRD', 2, 10),
  ('SSP', 2, 10),
  ('STN', 2, 10),
  ('SVC', 2, 10),
  ('SYP', 2, 10),
  ('SZL', 2, 10),
  ('THB', 2, 10),
  ('TJS', 2, 10),
  ('TMT', 2, 10),
  ('TND', 3, 10),
  ('TOP', 2, 10),
  ('TRY', 2, 10),
  ('TTD', 2, 10),
  ('TWD', 2, 10),
  ('TZS', 2, 10),
  ('UAH', 2, 10),
  ('UGX', 0, 10),
  ('USD', 2, 10),
  ('USN', 2, 10),
  ('UYI', 0, 10),
  ('UYU', 2, 10),
  ('UYW', 4, 10),
  ('UZS', 2, 10),
  ('VED', 2, 10),
  ('VES', 2, 10),
  ('VND', 0, 10),
  ('VUV', 0, 10),
  ('WST', 2, 10),
  ('XAD', 2, 10),
  ('XAF', 0, 10),
  ('XCD', 2, 10),
  ('XCG', 2, 10),
  ('XOF', 0, 10),
  ('XPF', 0, 10),
  ('YER', 2, 10),
  ('ZAR', 2, 10),
  ('ZMW', 2, 10),
  ('ZWG', 2, 10);
