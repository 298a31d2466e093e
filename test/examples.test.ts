import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();

test("the README's quick start runs as a host service would and prints the balance", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/quickstart.ts'], {
    env: { ...process.env, DATABASE_URL: db.connectionString },
  });
  assert.equal(stdout, 'customer:42 has 25.00 USD available\n');
  const jobs = await db.pool.query(`select t.identifier as task_identifier, j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id`);
  const transfer = await db.pool.query(`select id::text from ledgerbox.transfers where key = 'order:1001:capture'`);
  assert.deepEqual(jobs.rows, [{ task_identifier: 'payments.send_receipt', payload: { transferId: transfer.rows[0].id } }]);
});
