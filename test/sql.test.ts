import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createAccount, createHold, postHold, postTransfer } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

const db = await useTestDatabase();

/** The real psql binary, as the operator runs it. */
async function psql(file: string, variables: Record<string, string> = {}): Promise<string> {
  const args = [db.connectionString, '-X', '-v', 'ON_ERROR_STOP=1', '--pset=pager=off'];
  for (const [name, value] of Object.entries(variables)) args.push('-v', `${name}=${value}`);
  const { stdout } = await promisify(execFile)('psql', [...args, '-f', file]);
  return stdout;
}

await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'olga', currency: 'USD' });
await postTransfer(db.pool, { key: 'order:1:capture', legs: [{ from: 'world', to: 'olga', amount: usd(1_234n) }], metadata: { order: 1 } });

test('sql/balance_drift.sql prints no rows when the books agree, and the drifting account when not', async () => {
  assert.match(await psql('sql/balance_drift.sql'), /\(0 rows\)/);
  // plant drift the only way left: a superuser with the triggers switched off
  const client = await db.pool.connect();
  try {
    await client.query('set session_replication_role = replica');
    await client.query('begin');
    const { rows } = await client.query(`insert into ledgerbox.transfers (key, kind) values ('planted', 'posted') returning id`);
    await client.query(
      `insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
       select $1, 0, id, 'USD', case key when 'olga' then 66 else -66 end, 'posted', now() from ledgerbox.accounts where key in ('olga', 'world')`,
      [rows[0].id],
    );
    await client.query('commit');
    const output = await psql('sql/balance_drift.sql');
    assert.match(output, /olga\s+\| USD\s+\|\s+1234 \|\s+1300 \|\s+-66 \|/);
    assert.match(output, /\(2 rows\)/);
  } finally {
    // put the cache right, so the file's closing invariant check passes
    await client.query(`update ledgerbox.accounts a set posted_balance = (select coalesce(sum(amount), 0) from ledgerbox.entries e where e.account_id = a.id and e.phase = 'posted')`);
    await client.query('reset session_replication_role');
    client.release();
  }
  assert.match(await psql('sql/balance_drift.sql'), /\(0 rows\)/);
});

test('sql/transfer.sql shows a transfer, its entries, and the hold it resolved', async () => {
  const output = await psql('sql/transfer.sql', { key: "'order:1:capture'" });
  assert.match(output, /order:1:capture \| posted/);
  assert.match(output, /0 \| world\s+\| USD\s+\|\s+-1234 \| posted/);
  assert.match(output, /0 \| olga\s+\| USD\s+\|\s+1234 \| posted/);

  const hold = await createHold(db.pool, { key: 'order:2:authorize', from: 'olga', to: 'world', amount: usd(100n) });
  await postHold(db.pool, { key: 'order:2:capture', holdId: hold.id });
  assert.match(await psql('sql/transfer.sql', { key: "'order:2:authorize'" }), /order:2:capture \(post_hold\)/);
});
