import type pg from 'pg';

/**
 * Opens `count` USD accounts that may go negative (the benchmarks move money around, never
 * into an overdraft refusal) in one statement; returns their keys. Accounts open at zero, as
 * the accounts_guard trigger requires, so this is what createAccount would write.
 */
export async function openAccounts(pool: pg.Pool, prefix: string, count: number): Promise<string[]> {
  const { rows } = await pool.query<{ key: string }>(
    `insert into ledgerbox.accounts (key, currency, allow_negative)
     select $1 || ':' || n, 'USD', true from generate_series(1, $2::int) n
     returning key`,
    [prefix, count],
  );
  return rows.map((row) => row.key);
}
