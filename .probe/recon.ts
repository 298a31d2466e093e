import pg from 'pg';
import { pino } from 'pino';
import { migrate, reconcile } from '../src/index.ts';
import { openAccounts } from '../bench/accounts.ts';

const base = 'postgres://postgres@127.0.0.1:5432/';
const admin = new pg.Pool({ connectionString: base + 'postgres' });
const phase = process.argv[2] ?? 'setup';
const accountCount = 1_000;
const logger = pino({ level: 'silent' });
if (phase === 'setup') {
  await admin.query('drop database if exists recon_probe');
  await admin.query('create database recon_probe');
}
await admin.end();
const pool = new pg.Pool({ connectionString: base + 'recon_probe', max: 4 });
async function generate(first: number, entries: number) {
  const transfers = Math.floor(entries / 2);
  const { rows } = await pool.query(`select min(id)::text as first_id from ledgerbox.accounts where key like 'history:%'`);
  const firstAccount = rows[0].first_id;
  for (let from = first; from < first + transfers; from += 100_000) {
    const to = Math.min(from + 100_000, first + transfers) - 1;
    const client = await pool.connect();
    await client.query('begin');
    await client.query(`insert into ledgerbox.transfers (key, kind) select 'history:' || g, 'posted' from generate_series($1::int, $2::int) g`, [from, to]);
    await client.query(
      `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount)
       select t.id, 0, $3::bigint + side.account, 'USD', side.amount
       from generate_series($1::int, $2::int) g
       join ledgerbox.transfers t on t.key = 'history:' || g
       cross join lateral (values (g % $4, -(1 + g % 997)::bigint), ((g % $4 + 1 + (g / $4) % ($4 - 1)) % $4, (1 + g % 997)::bigint)) as side(account, amount)`,
      [from, to, firstAccount, accountCount]);
    await client.query('commit');
    client.release();
  }
}
const t = async (label: string, f: () => Promise<unknown>) => { const s = performance.now(); const r = await f(); console.log(label, (performance.now() - s).toFixed(0), 'ms'); return r; };
if (phase === 'setup') {
  await migrate({ pgPool: pool });
  await openAccounts(pool, 'history', accountCount);
  await t('generate 1M', () => generate(0, 1_000_000));
  await pool.query('vacuum analyze ledgerbox.entries, ledgerbox.transfers, ledgerbox.accounts');
  await t('full', () => reconcile(pool, { full: true, logger }));
  await t('generate 100k', () => generate(500_000, 100_000));
  await pool.query('analyze ledgerbox.entries, ledgerbox.transfers');
} else {
  if (process.argv[3]) { await t('generate more', () => generate(Number(process.argv[3]), 100_000)); await pool.query('analyze ledgerbox.entries, ledgerbox.transfers'); }
  await t('raw', () => pool.query('select account_id, sum(amount) from ledgerbox.entries group by account_id'));
  await t('raw', () => pool.query('select account_id, sum(amount) from ledgerbox.entries group by account_id'));
  const r: any = await t('incremental', () => reconcile(pool, { logger }));
  console.log(r.status, r.entriesChecked);
  await t('full', () => reconcile(pool, { full: true, logger }));
}
await pool.end();
