import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
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
