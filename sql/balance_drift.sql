-- Which accounts' cached balances disagree with the sum of their entries?
-- The account row is the cache ("actual"); the entries are the truth ("expected").
-- No rows: the books agree. Any row is money unaccounted for: investigate before anything else.
--
--   psql "$DATABASE_URL" -f sql/balance_drift.sql
with expected as (
  select
    e.account_id,
    coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0) as posted,
    coalesce(sum(e.amount) filter (where e.phase = 'pending' and e.amount > 0 and r.id is null), 0) as pending_incoming,
    coalesce(-sum(e.amount) filter (where e.phase = 'pending' and e.amount < 0 and r.id is null), 0) as pending_outgoing
  from ledgerbox.entries e
  left join ledgerbox.transfers r on r.hold_id = e.transfer_id
  group by e.account_id
)
select
  a.key as account,
  a.currency,
  a.posted_balance as cached_posted,
  coalesce(x.posted, 0) as expected_posted,
  a.posted_balance - coalesce(x.posted, 0) as posted_difference,
  a.pending_outgoing - coalesce(x.pending_outgoing, 0) as pending_outgoing_difference,
  a.pending_incoming - coalesce(x.pending_incoming, 0) as pending_incoming_difference
from ledgerbox.accounts a
left join expected x on x.account_id = a.id
where a.posted_balance <> coalesce(x.posted, 0)
   or a.pending_outgoing <> coalesce(x.pending_outgoing, 0)
   or a.pending_incoming <> coalesce(x.pending_incoming, 0)
order by abs(a.posted_balance - coalesce(x.posted, 0)) desc, a.key;
