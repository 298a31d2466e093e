import pg from 'pg';
import { pino } from 'pino';
import { dinero, EUR, USD } from 'dinero.js/bigint';
import { createAccount, postTransfer, startExchange, startWorker } from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { demoRates } from '../src/workflows/exchange/demo-rates.ts';
import { quietPool, withDatabase, type BenchServer } from './database.ts';
import { metric, type Metric } from './results.ts';
import type { BenchSettings } from './settings.ts';

const customers = 20;
const workerConcurrency = 8;
const finish_ms_max = 600_000;

/**
 * Item 4: exchanges completed per second end to end (start in the caller's transaction, then
 * lock_rate, compliance, settle, notify on the worker) with fake providers answering at once.
 * No peer: nothing else runs this workflow.
 */
export async function benchExchanges(server: BenchServer, settings: BenchSettings, log: (line: string) => void): Promise<Metric[]> {
  return withDatabase(server, 'exchange', { migrated: true }, async (url) => {
    const pool = quietPool({ connectionString: url, max: 8 });
    const workerPool = quietPool({ connectionString: url, max: workerConcurrency + 4 });
    const worker = await startWorker({
      pgPool: workerPool,
      providers: { fx: new FakeFxRateProvider({ rates: demoRates }), compliance: new FakeComplianceProvider() },
      concurrency: workerConcurrency,
      reconciliation: false,
      noHandleSignals: true,
      logger: pino({ level: 'silent' }),
    });
    try {
      for (const [code, currency] of [['USD', USD], ['EUR', EUR]] as const) {
        await createAccount(pool, { key: `world:${code}`, currency: code, allowNegative: true });
        for (let index = 0; index < customers; index += 1) {
          await createAccount(pool, { key: `customer${index}:${code}`, currency: code });
          await postTransfer(pool, {
            key: `fund:${index}:${code}`,
            legs: [{ from: `world:${code}`, to: `customer${index}:${code}`, amount: dinero({ amount: 1_000_000_000n, currency }) }],
          });
        }
      }
      const startedAt = performance.now();
      await Promise.all(
        Array.from({ length: settings.exchanges }, (_, index) =>
          startExchange(pool, {
            key: `bench:${index}`,
            from: `customer${index % customers}:USD`,
            to: `customer${index % customers}:EUR`,
            amount: dinero({ amount: BigInt(100 + index), currency: USD }),
          }),
        ),
      );
      while ((await unfinished(pool)) > 0) {
        if (performance.now() - startedAt > finish_ms_max) throw new Error(`Expected ${settings.exchanges} exchanges to finish within ${finish_ms_max} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const elapsed_s = (performance.now() - startedAt) / 1_000;
      const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ledgerbox.workflows where status = 'completed'`);
      if (rows[0]!.n !== settings.exchanges) throw new Error(`Expected every exchange to complete, got ${rows[0]!.n} of ${settings.exchanges}`);
      const value = settings.exchanges / elapsed_s;
      log(`exchanges: ${settings.exchanges} in ${elapsed_s.toFixed(1)} s, ${value.toFixed(0)}/s`);
      return [
        metric({
          name: 'exchanges completed, end to end',
          value,
          unit: 'exchanges/s',
          clients: workerConcurrency,
          notes: `${settings.exchanges} exchanges started at once (8 connections), 4 steps each on one worker of concurrency ${workerConcurrency}; instant fake providers; no peer`,
        }),
      ];
    } finally {
      await worker.stop();
      await workerPool.end();
      await pool.end();
    }
  });
}

async function unfinished(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ledgerbox.workflows where status = 'running'`);
  return rows[0]!.n;
}
