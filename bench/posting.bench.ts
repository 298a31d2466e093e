import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { dinero, USD } from 'dinero.js/bigint';
import { object, string } from 'superstruct';
import { defineTask, enqueue, postTransfer } from '../src/index.ts';
import { openAccounts } from './accounts.ts';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { findPgbench, initialize, tpcb } from './pgbench.ts';
import { metric, type Metric } from './results.ts';
import type { BenchSettings } from './settings.ts';

const receipt = defineTask('bench.receipt', object({ transferId: string() }));
const receiptByKey = defineTask('bench.receipt_by_key', object({ transferKey: string() }));

/**
 * Item 1: one transfer (one leg, two entries) plus one outbox job per transaction, N clients in
 * a loop for a fixed time, against pgbench's TPC-B-like script on the same server, same N: as
 * one call (postTransfer with `jobs` on the pool, one statement) and inside a host transaction
 * (BEGIN, postTransfer, enqueue, COMMIT). The runs alternate (pgbench N, ledgerbox N) so drift
 * on a noisy machine hits both alike.
 */
export async function benchPosting(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  const pgbench = await findPgbench();
  if (pgbench === undefined) log('pgbench not found on PATH or under /usr/lib/postgresql/*/bin: posting has no peer in this run');
  return withDatabase(server, 'pgbench', { migrated: false }, async (pgbenchUrl) => {
    if (pgbench !== undefined) await initialize(pgbench, pgbenchUrl);
    return withDatabase(server, 'posting', { migrated: true }, async (url) => {
      const metrics: Metric[] = [];
      const peerTps = new Map<number, number>();
      for (const clients of settings.postingClients) {
        const peerValue = pgbench === undefined ? null : await tpcb(pgbench, pgbenchUrl, clients, settings.postingDuration_s);
        if (peerValue !== null) peerTps.set(clients, peerValue);
        const value = await postFor(url, clients, settings.postingAccounts, settings.postingDuration_s, `spread${clients}`);
        const inHost = await transfersPerSecond(url, clients, settings.postingAccounts, settings.postingDuration_s, `host${clients}`, postInHostTransactionLoop);
        log(`posting, ${clients} clients: ${value.toFixed(0)} tx/s in one call, ${inHost.toFixed(0)} tx/s in a host transaction (pgbench ${peerValue?.toFixed(0) ?? 'n/a'} tps)`);
        metrics.push(
          metric({
            name: 'posting: transfer + outbox job per transaction',
            value,
            unit: 'tx/s',
            peer: pgbench === undefined ? null : 'pgbench TPC-B-like',
            peerValue,
            clients,
            notes: `postTransfer with its job (\`jobs\`) on the pool: one statement, its own transaction; ${settings.postingAccounts} accounts, ${settings.postingDuration_s} s per run`,
          }),
          metric({
            name: 'posting in a host transaction: BEGIN, postTransfer, enqueue, COMMIT',
            value: inHost,
            unit: 'tx/s',
            peer: pgbench === undefined ? null : 'pgbench TPC-B-like',
            peerValue,
            clients,
            notes: `four round trips, the host's own transaction; ${settings.postingAccounts} accounts`,
          }),
        );
      }
      const hotPeer = peerTps.get(settings.hotClients) ?? null;
      const hot = await postFor(url, settings.hotClients, settings.hotAccounts, settings.postingDuration_s, 'hot');
      log(`posting, hot: ${hot.toFixed(0)} transfers/s over ${settings.hotAccounts} accounts`);
      metrics.push(
        metric({
          name: `posting, hot accounts (${settings.hotAccounts})`,
          value: hot,
          unit: 'tx/s',
          peer: hotPeer === null ? null : 'pgbench TPC-B-like',
          peerValue: hotPeer,
          clients: settings.hotClients,
          notes: `${settings.hotClients} clients over ${settings.hotAccounts} accounts; peer is the pgbench run at ${settings.hotClients} clients`,
        }),
      );
      return metrics;
    });
  });
}

/** Transfers per second committed by `clients` loops over `accountCount` fresh accounts for `duration_s`. */
async function postFor(url: string, clients: number, accountCount: number, duration_s: number, prefix: string): Promise<number> {
  return transfersPerSecond(url, clients, accountCount, duration_s, prefix, postLoop);
}

/**
 * The harness every posting benchmark shares: fresh accounts, every client connected before the
 * clock starts (pgbench's figure excludes connecting), `clients` loops until the deadline, each
 * returning how many transfers it committed.
 */
export async function transfersPerSecond(
  url: string,
  clients: number,
  accountCount: number,
  duration_s: number,
  prefix: string,
  loop: (pool: pg.Pool, accounts: readonly string[], deadline: number) => Promise<number>,
): Promise<number> {
  const pool = quietPool({ connectionString: url, max: clients });
  try {
    const accounts = await openAccounts(pool, prefix, accountCount);
    const warm = await Promise.all(Array.from({ length: clients }, () => pool.connect()));
    for (const client of warm) client.release();
    const deadline = performance.now() + duration_s * 1_000;
    const startedAt = performance.now();
    const committed = await Promise.all(Array.from({ length: clients }, () => loop(pool, accounts, deadline)));
    const elapsed_s = (performance.now() - startedAt) / 1_000;
    return committed.reduce((sum, n) => sum + n, 0) / elapsed_s;
  } finally {
    await pool.end();
  }
}

/** The transfer and its job in one call on the pool: one statement, which is its own transaction. */
async function postLoop(pool: pg.Pool, accounts: readonly string[], deadline: number): Promise<number> {
  let committed = 0;
  while (performance.now() < deadline) {
    const from = Math.floor(Math.random() * accounts.length);
    const to = (from + 1 + Math.floor(Math.random() * (accounts.length - 1))) % accounts.length;
    const key = randomUUID();
    await postTransfer(pool, {
      key,
      legs: [{ from: accounts[from]!, to: accounts[to]!, amount: dinero({ amount: BigInt(1 + Math.floor(Math.random() * 10_000)), currency: USD }) }],
      jobs: [{ task: receiptByKey, payload: { transferKey: key } }],
    });
    committed += 1;
  }
  return committed;
}

/** A host service's own transaction around the posting and its job, as the README's quick start writes it. */
async function postInHostTransactionLoop(pool: pg.Pool, accounts: readonly string[], deadline: number): Promise<number> {
  let committed = 0;
  while (performance.now() < deadline) {
    const from = Math.floor(Math.random() * accounts.length);
    const to = (from + 1 + Math.floor(Math.random() * (accounts.length - 1))) % accounts.length;
    const client = await pool.connect();
    try {
      await client.query('begin');
      const transfer = await postTransfer(client, {
        key: randomUUID(),
        legs: [{ from: accounts[from]!, to: accounts[to]!, amount: dinero({ amount: BigInt(1 + Math.floor(Math.random() * 10_000)), currency: USD }) }],
      });
      await enqueue(client, receipt, { transferId: transfer.id });
      await client.query('commit');
      committed += 1;
    } catch (error) {
      await client.query('rollback');
      throw error;
    } finally {
      client.release();
    }
  }
  return committed;
}
