-- The ledger's rules checked per statement, not per entry.
--
-- Until now a transfer's entries could arrive one statement at a time, so the rules that need
-- all of them (balanced per currency, at least one entry) waited for commit, as deferred
-- constraint triggers run once per entry and once per transfer: 300 trigger runs per 100
-- transfers, most of a batched posting's time. And they could not be made per transfer: a
-- check run early by SET CONSTRAINTS … IMMEDIATE would miss entries added after it.
--
-- The rule now: a transfer's entries arrive with it, in the statement that creates it (a
-- writable CTE, as below; every ledgerbox writer does this). Then every rule is a set-based
-- check over the statement's own rows (its transition tables) when the statement ends, whatever
-- the statement's size:
--   on entries (one trigger): each entry's transfer exists, was made by this transaction and is
--   not a void_hold; its phase and effective date are its transfer's; no entry of its transfer
--   was written by an earlier statement; each transfer's entries balance per currency; then
--   the cached balances follow (as before, one update per account), which also finds an entry
--   whose account is missing or holds another currency (the foreign keys' work, below).
--   on transfers (one trigger): no resolution or reversal effective before its original (0011);
--   only a hold is posted or voided, and none past its expiry posted (until now only the API
--   checked that); every transfer but a void_hold has entries; then the holds'
--   bookkeeping (as before, and 0003's trigger for holds without an expiry folded in).
-- Nothing is deferred, so SET CONSTRAINTS has nothing to postpone, and a refused statement is
-- refused at once, with nothing of it written. The transfers' trigger fires first (its insert
-- is the CTE that the entries' insert reads), so a post_hold's reservation is released before
-- its posted entries are applied.
--
-- Raw SQL writes a transfer like this (psql):
--   with t as (
--     insert into ledgerbox.transfers (key, kind) values ('fix-42', 'posted') returning id
--   )
--   insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
--   select t.id, 0, account_id, 'USD', amount from t, (values (1, -500), (2, 500)) e(account_id, amount);
-- phase and effective_at may be left out: a row trigger that runs only for such rows fills them
-- in from the transfer (ledgerbox's writers give them, so it never runs for them).

drop trigger transfer_balanced_per_currency on ledgerbox.entries;
drop function ledgerbox.assert_transfer_balanced();
drop trigger transfer_has_entries on ledgerbox.transfers;
drop function ledgerbox.assert_transfer_has_entries();
drop trigger entries_inherit_from_transfer on ledgerbox.entries;
drop function ledgerbox.entries_inherit_from_transfer();
drop trigger entries_maintain_balances on ledgerbox.entries;
drop function ledgerbox.apply_entries_to_balances();
drop trigger transfers_effective_not_before_original on ledgerbox.transfers;
drop function ledgerbox.assert_effective_not_before_original();
drop trigger transfers_track_holds on ledgerbox.transfers;
drop function ledgerbox.track_holds();
drop trigger transfers_track_holds_without_expiry on ledgerbox.transfers;
drop function ledgerbox.track_holds_without_expiry();

-- The entries' two foreign keys become part of the statement check: a foreign key checks
-- each row on its own (two queries per entry, and the account's one takes a row lock that the
-- balance update then takes again). Checked per statement instead: the entry's transfer is
-- joined in the check below, and its (account, currency) must be one the balance update
-- matched. Nothing can remove what they pointed at: transfers and accounts refuse DELETE and
-- TRUNCATE (0001). Same constraint names and SQLSTATE (23503) as before, for any client that
-- reads them.
alter table ledgerbox.entries drop constraint entries_transfer_id_fkey;
alter table ledgerbox.entries drop constraint entry_account_currency_fk;

-- Only for rows that leave phase or effective_at out (the WHEN clause is evaluated without
-- calling the function): the transfer inserted earlier in the same statement is visible here.
-- Whatever a writer gives, the statement check below holds it to its transfer's.
create function ledgerbox.entries_take_from_transfer() returns trigger
language plpgsql as $$
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

create trigger entries_take_from_transfer before insert on ledgerbox.entries
  for each row when (new.phase is null or new.effective_at is null)
  execute function ledgerbox.entries_take_from_transfer();

-- SECURITY DEFINER: the application role may add entries but has no privilege to write
-- balances itself.
create function ledgerbox.entries_check_and_apply() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
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

create trigger entries_check_and_apply after insert on ledgerbox.entries
  referencing new table as inserted
  for each statement execute function ledgerbox.entries_check_and_apply();

create function ledgerbox.transfers_check_and_track() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
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

comment on function ledgerbox.transfers_check_and_track() is
  'Statement trigger on transfers: resolutions and reversals not effective before their original, only holds resolved, entries with every transfer but a void; then open hold expiries and released reservations.';

create trigger transfers_check_and_track after insert on ledgerbox.transfers
  referencing new table as inserted
  for each statement execute function ledgerbox.transfers_check_and_track();

-- The one-statement posting (0001) writes its transfer and entries in one statement now, and
-- no longer repeats the ledger's rules before it writes (a replay, a resolved or expired hold,
-- the currencies, the funds): the database refuses such a write, and the function answers null
-- so the TypeScript path explains it, as it did when the function's own copy of the rules
-- declined. One copy of each rule, the database's; the TypeScript path's checks only explain.
create or replace function ledgerbox.try_post_transfer(request jsonb) returns text
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
