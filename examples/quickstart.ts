// The README's quick start, runnable: `DATABASE_URL=… npx tsx examples/quickstart.ts`.
// test/examples.test.ts runs it (twice, as a retried request would) and checks what it prints
// and the jobs it leaves, so the README cannot rot.
import pg from 'pg';
import { USD, dinero, toDecimal } from 'dinero.js/bigint';
import { object, string } from 'superstruct';
import { createAccount, defineTask, getBalance, migrate, postTransfer } from 'ledgerbox';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
// a connection that fails (the server restarted) is logged instead of crashing the process
pool.on('error', (error) => console.error('database connection lost', error));
pool.on('connect', (client) => client.on('error', (error) => console.error('database connection lost', error)));
await migrate({ pgPool: pool }); // on boot; safe when every replica does it at once

// Once per task: its name and the contract of its payload (identifiers only).
const sendReceipt = defineTask('payments.send_receipt', object({ transferKey: string() }));

await createAccount(pool, { key: 'cash', currency: 'USD', allowNegative: true });
await createAccount(pool, { key: 'customer:42', currency: 'USD' });

// Inside the service's own transaction: its order row, the ledger transfer and the
// follow-up job commit together or not at all.
const client = await pool.connect();
try {
  await client.query('begin');
  await postTransfer(client, {
    key: 'order:1001:capture', // idempotency key: a retry returns the same transfer
    legs: [{ from: 'cash', to: 'customer:42', amount: dinero({ amount: 2_500n, currency: USD }) }],
    metadata: { order: 1001 },
    // added with the transfer by the call that writes it; a retry (replayed: true) adds none
    jobs: [{ task: sendReceipt, payload: { transferKey: 'order:1001:capture' } }],
  });
  await client.query('commit');
} catch (error) {
  await client.query('rollback');
  throw error;
} finally {
  client.release();
}

const balance = await getBalance(pool, 'customer:42');
console.log(`customer:42 has ${toDecimal(balance.available)} ${balance.currency} available`);
await pool.end(); // without it the process waits for the idle connections to time out
