import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createAccount, createHold, isLedgerboxError, postHold, postTransfer, voidHold, getBalance } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';
import { seededRandom } from './support/random.ts';

const db = await useTestDatabase();

const clients = 16;
const operationsPerClient = 40;
const hotAccounts = ['hot:0', 'hot:1', 'hot:2', 'hot:3'];
const startingBalance = 1_000n;

test('16 clients moving money between 4 hot accounts: no overdraft, no deadlock, every balance equals its entries', async () => {
  const random = seededRandom('hot accounts');
  await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
  for (const key of hotAccounts) {
    await createAccount(db.pool, { key, currency: 'USD' });
    await postTransfer(db.pool, { key: `fund:${key}`, legs: [{ from: 'world', to: key, amount: usd(startingBalance) }] });
  }
  const pool = new pg.Pool({ connectionString: db.connectionString, max: clients });
  const outcomes = { posted: 0, insufficient: 0, held: 0, resolved: 0, alreadyResolved: 0 };
  const unexpected: unknown[] = [];
  const openHolds: string[] = [];

  const pick = () => hotAccounts[random.int(hotAccounts.length)]!;
  const distinctPair = () => {
    const from = pick();
    let to = pick();
    while (to === from) to = pick();
    return { from, to };
  };

  // Odd clients call inside their own BEGIN … COMMIT: ledgerbox cannot retry there, so a
  // deadlock would surface instead of being retried away.
  async function inHostTransaction<T>(client: number, work: (handle: pg.Pool | pg.PoolClient) => Promise<T>): Promise<T> {
    if (client % 2 === 0) return work(pool);
    const connection = await pool.connect();
    try {
      await connection.query('begin');
      const result = await work(connection);
      await connection.query('commit');
      return result;
    } catch (error) {
      await connection.query('rollback');
      throw error;
    } finally {
      connection.release();
    }
  }

  async function operation(client: number, index: number) {
    // a hold is offered to the other clients once its transaction has committed: before, they
    // cannot see it (hold_not_found), and it may yet roll back
    const created = await inHostTransaction(client, (handle) => step(handle, client, index));
    if (created !== undefined) openHolds.push(created);
  }

  async function step(pool: pg.Pool | pg.PoolClient, client: number, index: number): Promise<string | undefined> {
    const key = `op:${client}:${index}`;
    const kind = random.int(10);
    try {
      if (kind < 6) {
        // multi-leg, accounts named in random order: the sorted lock order keeps it deadlock-free
        const first = distinctPair();
        const second = distinctPair();
        await postTransfer(pool, {
          key,
          legs: [
            { ...first, amount: usd(BigInt(1 + random.int(400))) },
            { ...second, amount: usd(BigInt(1 + random.int(400))) },
          ],
        });
        outcomes.posted++;
      } else if (kind < 8) {
        const hold = await createHold(pool, { key, ...distinctPair(), amount: usd(BigInt(1 + random.int(300))) });
        outcomes.held++;
        return hold.id;
      } else if (openHolds.length > 0) {
        // several clients may pick the same hold: exactly one resolution may win
        const holdId = openHolds[random.int(openHolds.length)]!;
        if (kind === 8) await postHold(pool, { key, holdId });
        else await voidHold(pool, { key, holdId });
        outcomes.resolved++;
      }
    } catch (error) {
      if (isLedgerboxError(error, 'insufficient_funds')) outcomes.insufficient++;
      else if (isLedgerboxError(error, 'hold_already_resolved')) outcomes.alreadyResolved++;
      else unexpected.push(error);
    }
  }

  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let index = 0; index < operationsPerClient; index++) await operation(client, index);
      }),
    );
  } finally {
    await pool.end();
  }

  assert.deepEqual(unexpected, [], 'only insufficient_funds and hold_already_resolved may surface (no deadlock, no serialization error)');
  assert.ok(outcomes.posted > 0 && outcomes.insufficient > 0 && outcomes.held > 0, `a mixed workload ran: ${JSON.stringify(outcomes)}`);

  let total = 0n;
  for (const key of hotAccounts) {
    const balance = await getBalance(db.pool, key);
    assert.ok(minor(balance.available) >= 0n, `${key} available ${minor(balance.available)} is not negative`);
    total += minor(balance.posted);
  }
  assert.equal(total, startingBalance * BigInt(hotAccounts.length), 'money is neither created nor destroyed');

  const resolutions = await db.pool.query(`select hold_id, count(*)::int as n from ledgerbox.transfers where hold_id is not null group by hold_id having count(*) > 1`);
  assert.deepEqual(resolutions.rows, [], 'no hold resolved twice');
  // useTestDatabase re-checks cached balances against the entries when the file ends
});
