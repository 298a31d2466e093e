import pg from 'pg';
import { pino } from 'pino';
import { reconcile } from '../src/index.ts';
import { openAccounts } from './accounts.ts';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { median, metric, type Metric } from './results.ts';
import type { BenchSettings } from './settings.ts';

/** Transfers written per statement while generating history: bounds each statement's transition tables and its transaction. */
const transfers_per_chunk_max = 100_000;
const accountCount = 1_000;
/**
 * Raw aggregate and full run, alternated this many times at least (the median of each is
 * reported): on a shared 2-core machine a median of 3 moves by a third from run to run.
 */
const full_repeats_min = 11;

/**
 * Item 5: a full reconciliation against the raw `sum(amount) group by account_id` over the same
 * entries (the physical floor), then the incremental run with new entries on top of that history.
 */
export async function benchReconcile(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  return withDatabase(server, 'reconcile', { migrated: true }, async (url) => {
    const pool = quietPool({ connectionString: url, max: 4 });
    const logger = pino({ level: 'silent' });
    try {
      await openAccounts(pool, 'history', accountCount);
      const generatedAt = performance.now();
      await generateEntries(pool, 0, settings.reconcileEntries);
      log(`reconcile: ${settings.reconcileEntries.toLocaleString('en-US')} entries generated in ${((performance.now() - generatedAt) / 1_000).toFixed(1)} s`);
      await pool.query('vacuum analyze ledgerbox.entries, ledgerbox.transfers, ledgerbox.accounts');

      await rawAggregate(pool); // warms the cache for both sides alike
      const raw_ms: number[] = [];
      const full_ms: number[] = [];
      const repeats = settings.quick ? settings.reconcileRepeats : Math.max(settings.reconcileRepeats, full_repeats_min);
      for (let repeat = 0; repeat < repeats; repeat += 1) {
        raw_ms.push(await rawAggregate(pool));
        full_ms.push(await timed(async () => assertClean(await reconcile(pool, { full: true, logger }))));
      }
      const raw = median(raw_ms);
      const full = median(full_ms);
      log(`reconcile: full ${full.toFixed(0)} ms, raw aggregate ${raw.toFixed(0)} ms`);

      // the nightly run: new entries on top of the history the last (full) run verified
      await generateEntries(pool, settings.reconcileEntries / 2, settings.reconcileNewEntries);
      await pool.query('analyze ledgerbox.entries, ledgerbox.transfers');
      const incremental = await timed(async () => {
        const report = await reconcile(pool, { logger });
        assertClean(report);
        if (report.entriesChecked !== settings.reconcileNewEntries) {
          throw new Error(`Expected the incremental run to check ${settings.reconcileNewEntries} entries, got ${report.entriesChecked}`);
        }
      });
      const fullAfter = await timed(async () => assertClean(await reconcile(pool, { full: true, logger })));
      log(`reconcile: incremental ${incremental.toFixed(0)} ms, full over the same entries ${fullAfter.toFixed(0)} ms`);

      const history = `${settings.reconcileEntries.toLocaleString('en-US')} entries over ${accountCount} accounts`;
      return [
        metric({
          name: 'reconciliation, full run',
          value: full,
          unit: 'ms',
          peer: 'raw sum(amount) group by account_id',
          peerValue: raw,
          notes: `${history}; median of ${repeats}; every check, not only balances`,
        }),
        metric({
          name: 'reconciliation, incremental run',
          value: incremental,
          unit: 'ms',
          peer: 'full run over the same entries',
          peerValue: fullAfter,
          notes: `${settings.reconcileNewEntries.toLocaleString('en-US')} new entries on ${history}`,
        }),
      ];
    } finally {
      await pool.end();
    }
  });
}

async function timed(work: () => Promise<void>): Promise<number> {
  const startedAt = performance.now();
  await work();
  return performance.now() - startedAt;
}

async function rawAggregate(pool: pg.Pool): Promise<number> {
  return timed(async () => {
    await pool.query('select account_id, sum(amount) from ledgerbox.entries group by account_id');
  });
}

function assertClean(report: { status: string; headline?: unknown; findings: readonly unknown[] }): void {
  if (report.status !== 'clean') throw new Error(`Expected the generated ledger to reconcile clean, got ${report.status}: ${JSON.stringify(report.findings.slice(0, 3))}`);
}

/**
 * Writes `entries` entries (one-leg transfers, two entries each) with set-based SQL: per chunk,
 * one statement for the transfers and their entries, as the ledger's rules require (a
 * transfer's entries arrive in the statement that creates it); the triggers keep the cached
 * balances and check every transfer balances, once per statement, as for any other writer.
 */
async function generateEntries(pool: pg.Pool, firstTransfer: number, entries: number): Promise<void> {
  const transfers = Math.floor(entries / 2);
  const { rows } = await pool.query<{ first_id: string }>(`select min(id)::text as first_id from ledgerbox.accounts where key like 'history:%'`);
  const firstAccount = rows[0]!.first_id;
  for (let from = firstTransfer; from < firstTransfer + transfers; from += transfers_per_chunk_max) {
    const to = Math.min(from + transfers_per_chunk_max, firstTransfer + transfers) - 1;
    const client = await pool.connect();
    try {
      await client.query('begin');
      // from = g mod n, to = from shifted by 1..n-1: never the same account
      await client.query(
        `with t as (
           insert into ledgerbox.transfers (key, kind) select 'history:' || g, 'posted' from generate_series($1::int, $2::int) g
           returning id, key, effective_at
         )
         insert into ledgerbox.entries (transfer_id, leg, account_id, currency, amount, phase, effective_at)
         select t.id, 0, $3::bigint + side.account, 'USD', side.amount, 'posted', t.effective_at
         from t
         cross join lateral (select substr(t.key, 9)::int as g) n
         cross join lateral (values
           (n.g % $4, -(1 + n.g % 997)::bigint),
           ((n.g % $4 + 1 + (n.g / $4) % ($4 - 1)) % $4, (1 + n.g % 997)::bigint)
         ) as side(account, amount)`,
        [from, to, firstAccount, accountCount],
      );
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw error;
    } finally {
      client.release();
    }
  }
}
