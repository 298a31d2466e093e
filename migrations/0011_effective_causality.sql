-- Effective dates keep causality: a hold's post or void is never effective before the hold it
-- resolves, and a reversal never before the transfer it reverses. Without it a balance read as
-- of a date in between showed money posted from a hold that did not exist yet, or a reversal
-- undoing a transfer that had not happened yet.
--
-- Checked once per statement that adds transfers (the rows it added, as a transition table,
-- joined with what they resolve or reverse by primary key), not per row, and not deferred: what
-- a transfer resolves or reverses is written before it and never changes (transfers are
-- append-only), so the check can be made as soon as the row exists, and SET CONSTRAINTS cannot
-- postpone it. Equal dates are allowed: a hold resolved in the transaction that made it has the
-- same now(). SECURITY INVOKER: it only reads ledgerbox.transfers, which every role that may
-- insert transfers may read.
--
-- The API gives its own error first (effective_before_original, with both dates), and when the
-- effective date is left out it defaults to now or, when that is earlier, to the effective date
-- of what the transfer resolves or reverses (a hold or a transfer dated in the future), so a
-- defaulted date is never refused (src/ledger/effective-dates.ts).
--
-- What a back-dated transfer may do to an account that forbids negative balances is unchanged
-- and on purpose: account_available_not_negative (0001) judges the account's balance over all
-- its entries, whatever their effective dates, when the transfer is written. A back-dated debit
-- that this balance covers is accepted even though a balance read as of a date before the money
-- arrived then shows the account below zero; a back-dated debit it does not cover is refused,
-- even when the balance as of the debit's own date would have covered it. README, "Concepts",
-- "Effective date", says why.
create function ledgerbox.assert_effective_not_before_original() returns trigger
language plpgsql as $$
declare
  early record;
begin
  select
    r.id, r.key, r.kind, o.id as original_id, o.kind as original_kind,
    to_char(r.effective_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as effective_at,
    to_char(o.effective_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as original_effective_at
  into early
  from inserted r
  join ledgerbox.transfers o on o.id = coalesce(r.hold_id, r.reverses_id)
  where r.effective_at < o.effective_at
  order by r.effective_at, r.id
  limit 1;
  if found then
    raise exception 'transfer % (%) is effective at %, before the % it %, % (effective at %)',
      early.key, early.kind, early.effective_at, early.original_kind,
      case when early.kind = 'reversal' then 'reverses' else 'resolves' end,
      early.original_id, early.original_effective_at
      using errcode = 'check_violation', constraint = 'effective_not_before_original',
        detail = json_build_object(
          'key', early.key, 'kind', early.kind, 'originalId', early.original_id, 'originalKind', early.original_kind,
          'effectiveAt', early.effective_at, 'originalEffectiveAt', early.original_effective_at
        )::text;
  end if;
  return null;
end
$$;

comment on function ledgerbox.assert_effective_not_before_original() is
  'Statement trigger on transfers: a post_hold or void_hold is not effective before its hold, a reversal not before the transfer it reverses.';

-- Named to fire before transfers_track_holds (statement triggers fire in name order), so a
-- refused statement is stopped before the holds' bookkeeping runs.
create trigger transfers_effective_not_before_original after insert on ledgerbox.transfers
  referencing new table as inserted
  for each statement execute function ledgerbox.assert_effective_not_before_original();

-- Rows written before this migration are history and stay as they are (append-only); the
-- operator is told how many break the rule, so reports as of those dates can be read with care.
do $$
declare
  early bigint;
begin
  select count(*) into early
  from ledgerbox.transfers r
  join ledgerbox.transfers o on o.id = coalesce(r.hold_id, r.reverses_id)
  where r.effective_at < o.effective_at;
  if early > 0 then
    raise notice 'ledgerbox: % transfer(s) written before migration 0011 are effective before the hold or transfer they resolve or reverse; they stay as written', early;
  end if;
end
$$;
