import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { assertLedgerInvariants } from './support/invariants.ts';
import { useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();

test("the README's quick start runs as a host service would and prints the balance; run again, as a retried request, it changes nothing", async () => {
  const quickStart = () =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], {
      env: { ...process.env, DATABASE_URL: db.connectionString },
    });
  const state = async () => ({
    jobs: (await db.pool.query(`select t.identifier as task_identifier, j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id`)).rows,
    transfers: (await db.pool.query(`select key from ledgerbox.transfers`)).rows,
  });
  assert.equal((await quickStart()).stdout, 'customer:42 has 25.00 USD available\n');
  const first = await state();
  assert.deepEqual(first, {
    jobs: [{ task_identifier: 'payments.send_receipt', payload: { transferKey: 'order:1001:capture' } }],
    transfers: [{ key: 'order:1001:capture' }],
  });
  // the retry replays the transfer and, its receipt going with the transfer, enqueues no second one
  assert.equal((await quickStart()).stdout, 'customer:42 has 25.00 USD available\n');
  assert.deepEqual(await state(), first);
});

test('the card capture example runs its five payments to their ends: webhook once, twice, before the wait, a declined card and a missed deadline; none captured twice, every balance its entries', async () => {
  const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/card-capture.ts'], {
    env: { ...process.env, DATABASE_URL: db.connectionString },
    timeout: 60_000,
  });
  // a non-zero exit rejects: show what the example said on stderr
  const { stdout } = await run.catch((error: { code?: number; stdout?: string; stderr?: string }) => {
    assert.fail(`examples/card-capture.ts exited ${error.code}\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
  });
  const line = (scenario: string) => stdout.split('\n').find((text) => text.trimStart().startsWith(`${scenario} `)) ?? assert.fail(`no line for ${scenario} in:\n${stdout}`);
  assert.match(line('normal'), /12\.34 USD +completed +webhook delivered to the wait; cap_\d+ posted, settled/);
  assert.match(line('duplicate'), /25\.00 USD +completed +webhook delivered to the wait, then duplicate; cap_\d+ posted, settled/);
  assert.match(line('early'), /7\.50 USD +completed +webhook recorded before the wait; cap_\d+ posted, settled/);
  assert.match(line('declined'), /99\.99 USD +compensated +no webhook; card declined: card on the decline list/);
  assert.match(line('missed'), /40\.00 USD +compensated +no webhook; voided: no capture webhook before the deadline/);
  assert.match(stdout, /^ok: every balance equals the sum of its entries, no capture posted twice/m);

  const runId = /^payments \(run ([a-z0-9-]+)\):$/m.exec(stdout)?.[1] ?? assert.fail(`no run id in:\n${stdout}`);
  assert.match(stdout, new RegExp(`card-clearing:${runId}:USD +-44\\.84 USD`));
  assert.match(stdout, new RegExp(`merchant:shop-${runId}:pending:USD +0\\.00 USD`));
  assert.match(stdout, new RegExp(`merchant:shop-${runId}:USD +44\\.84 USD`));

  // from the database: each payment's transfers, made by its workflow's steps
  const { rows } = await db.pool.query<{ key: string; status: string; transfers: string[] }>(
    `select w.key, w.status, coalesce(array_agg(substr(t.key, length(w.key) + 1) order by t.created_at, t.id) filter (where t.id is not null), '{}') as transfers
     from ledgerbox.workflows w left join ledgerbox.transfers t on t.workflow_id = w.id
     where w.kind = 'card_capture' and w.key like $1 group by w.key, w.status order by w.key`,
    [`card:${runId}:%`],
  );
  const moved = [':hold', ':post', ':settle'];
  assert.deepEqual(rows, [
    { key: `card:${runId}:declined`, status: 'compensated', transfers: [] },
    { key: `card:${runId}:duplicate`, status: 'completed', transfers: moved },
    { key: `card:${runId}:early`, status: 'completed', transfers: moved },
    { key: `card:${runId}:missed`, status: 'compensated', transfers: [':hold', ':void'] },
    { key: `card:${runId}:normal`, status: 'completed', transfers: moved },
  ]);
  // one posting per completed payment, one void per voided one, whatever the webhooks did
  const byKind = await db.pool.query<{ suffix: string; n: number }>(
    `select substring(key from ':[a-z]+$') as suffix, count(*)::int as n from ledgerbox.transfers where key like $1 group by 1 order by 1`,
    [`card:${runId}:%`],
  );
  assert.deepEqual(byKind.rows, [
    { suffix: ':hold', n: 4 },
    { suffix: ':post', n: 3 },
    { suffix: ':settle', n: 3 },
    { suffix: ':void', n: 1 },
  ]);
  // each signal recorded once, consumed once; the early one received before its wait began
  const signals = await db.pool.query<{ key: string; signals: number; consumed: number }>(
    `select w.key, count(s.id)::int as signals, count(s.consumed_step)::int as consumed
     from ledgerbox.workflows w left join ledgerbox.workflow_signals s on s.workflow_id = w.id
     where w.key like $1 group by w.key order by w.key`,
    [`card:${runId}:%`],
  );
  assert.deepEqual(
    signals.rows.map(({ key, signals, consumed }) => [key.slice(`card:${runId}:`.length), signals, consumed]),
    [['declined', 0, 0], ['duplicate', 1, 1], ['early', 1, 1], ['missed', 0, 0], ['normal', 1, 1]],
  );
  await assertLedgerInvariants(db.pool);
});
