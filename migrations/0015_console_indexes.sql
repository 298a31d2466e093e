-- The console's reads stay fast at a million workflows (issue 14): every list it shows is a
-- page read from an index in the order it is shown, never a sort or a count of the whole table.
--
-- - A page of workflows of one status, newest change first (`/workflows?status=compensated`):
--   without this, a status that is rare among the newest rows walks the whole updated_at index.
-- - An investigation's alerts since it opened (`/alerts` counts them per open investigation):
--   without this, each count reads every alert.
-- - A page of alerts of one severity, newest first (`/alerts?severity=critical`).
--
-- Plain CREATE INDEX, in the migration's transaction: it blocks writes to the table while it
-- builds (about a second per million workflows on a 2-core machine). On a large live table,
-- create the same index by hand first with CREATE INDEX CONCURRENTLY under the same name;
-- `if not exists` then leaves it be.

create index if not exists workflows_status_updated_at on ledgerbox.workflows (status, updated_at desc, id desc);

create index if not exists alerts_dedupe_key_created_at on ledgerbox.alerts (dedupe_key, created_at) where dedupe_key is not null;

create index if not exists alerts_severity_id on ledgerbox.alerts (severity, id desc);
