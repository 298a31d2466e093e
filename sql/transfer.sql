-- One transfer by its idempotency key: what it was, every entry it wrote, and what became of it
-- (the hold it resolved or its resolution, the reversal that undid it).
--
--   psql "$DATABASE_URL" -v key="'order:1001:capture'" -f sql/transfer.sql
select t.id, t.key, t.kind, t.effective_at, t.created_at, t.metadata,
  t.hold_id as resolves_hold, t.void_reason, t.expires_at,
  t.reverses_id as reverses,
  (select r.key from ledgerbox.transfers r where r.reverses_id = t.id) as reversed_by,
  (select r.key || ' (' || r.kind || ')' from ledgerbox.transfers r where r.hold_id = t.id) as resolved_by
from ledgerbox.transfers t
where t.key = :key;

select e.leg, a.key as account, e.currency, e.amount, e.phase, e.effective_at
from ledgerbox.entries e
join ledgerbox.transfers t on t.id = e.transfer_id
join ledgerbox.accounts a on a.id = e.account_id
where t.key = :key
order by e.leg, e.amount;
