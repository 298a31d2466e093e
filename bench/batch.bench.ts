import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { dinero, USD } from 'dinero.js/bigint';
import { postTransfers, type TransferInput } from '../src/index.ts';
import { withDatabase, type BenchServer } from './database.ts';
import { transfersPerSecond } from './posting.bench.ts';
import { findPgbench, initialize, tpcb } from './pgbench.ts';
import { metric, type Metric } from './results.ts';
import type { BenchSettings } from './settings.ts';

/** Transfers per postTransfers call: one transaction each. */
const batch_transfers = 100;
const batch_clients = [1, 4] as const;

/**
 * Item 2: N clients each posting batches of one-leg transfers through postTransfers for the
 * posting duration, in transfers per second, against pgbench's TPC-B-like tps at the same N
 * in the same run (alternating, as the posting benchmark does).
 */
export async function benchBatch(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  const pgbench = await findPgbench();
  if (pgbench === undefined) log('pgbench not found on PATH or under /usr/lib/postgresql/*/bin: batched posting has no peer in this run');
  return withDatabase(server, 'pgbench_batch', { migrated: false }, async (pgbenchUrl) => {
    if (pgbench !== undefined) await initialize(pgbench, pgbenchUrl);
    return withDatabase(server, 'batch', { migrated: true }, async (url) => {
      const metrics: Metric[] = [];
      for (const clients of batch_clients) {
        const peerValue = pgbench === undefined ? null : await tpcb(pgbench, pgbenchUrl, clients, settings.postingDuration_s);
        const value = await postBatchesFor(url, clients, settings.postingAccounts, settings.postingDuration_s, `batch${clients}`);
        log(`batched posting, ${clients} clients: ${value.toFixed(0)} transfers/s (pgbench ${peerValue?.toFixed(0) ?? 'n/a'} tps)`);
        metrics.push(
          metric({
            name: `batched posting: ${batch_transfers} transfers per postTransfers call`,
            value,
            unit: 'transfers/s',
            peer: pgbench === undefined ? null : 'pgbench TPC-B-like (tx/s)',
            peerValue,
            clients,
            notes: `${settings.postingAccounts} accounts, ${settings.postingDuration_s} s per run; goal ≥ 8× pgbench`,
          }),
        );
      }
      return metrics;
    });
  });
}

async function postBatchesFor(url: string, clients: number, accountCount: number, duration_s: number, prefix: string): Promise<number> {
  return transfersPerSecond(url, clients, accountCount, duration_s, prefix, batchLoop);
}

async function batchLoop(pool: pg.Pool, accounts: readonly string[], deadline: number): Promise<number> {
  let committed = 0;
  while (performance.now() < deadline) {
    const batch: TransferInput[] = Array.from({ length: batch_transfers }, () => {
      const from = Math.floor(Math.random() * accounts.length);
      const to = (from + 1 + Math.floor(Math.random() * (accounts.length - 1))) % accounts.length;
      return {
        key: randomUUID(),
        legs: [{ from: accounts[from]!, to: accounts[to]!, amount: dinero({ amount: BigInt(1 + Math.floor(Math.random() * 10_000)), currency: USD }) }],
      };
    });
    committed += (await postTransfers(pool, batch)).length;
  }
  return committed;
}
