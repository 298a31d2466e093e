-- Which money is reserved and not moving? Holds still pending past their expiry (the
-- scheduled expiry has not voided them: is a worker running?), or pending longer than the
-- SLA (default 1 day), oldest first, with the workflow that made them; then the total per
-- currency. Amounts are integers in minor units (1234 USD is 12.34 dollars).
--
--   psql "$DATABASE_URL" -f sql/money_in_limbo.sql
--   psql "$DATABASE_URL" -v sla='4 hours' -f sql/money_in_limbo.sql
\set ON_ERROR_STOP on
\if :{?sla}
\else
\set sla '1 day'
\endif

select
  l.hold_id,
  l.key,
  l.from_account,
  l.to_account,
  l.amount,
  l.currency,
  l.created_at,
  l.expires_at,
  date_trunc('second', l.age) as age,
  l.why,
  l.workflow_id,
  l.workflow_status
from ledgerbox.money_in_limbo(:'sla'::interval) l;

select l.currency, count(*) as holds, sum(l.amount) as amount
from ledgerbox.money_in_limbo(:'sla'::interval) l
group by l.currency
order by l.currency;
