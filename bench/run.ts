/**
 * `npm run bench`: ledgerbox against its peers on the same PostgreSQL server in the same run.
 * Prints a table and writes bench/results.json. `--quick` (or LEDGERBOX_BENCH_QUICK=1) only
 * proves the suite runs; `--scale large` (or LEDGERBOX_BENCH_SCALE=large) runs the big sizes.
 * No thresholds: a benchmark reports, it never fails on speed.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchBatch } from './batch.bench.ts';
import { openServer } from './database.ts';
import { benchExchanges } from './exchange.bench.ts';
import { benchJobs } from './jobs.bench.ts';
import { benchMemory } from './memory.bench.ts';
import { benchPosting } from './posting.bench.ts';
import { benchReconcile } from './reconcile.bench.ts';
import { benchScale } from './scale.bench.ts';
import { printTable, writeResults, type Metric } from './results.ts';
import { readSettings } from './settings.ts';

const settings = readSettings(process.argv.slice(2), process.env);
const log = (line: string) => console.error(`[bench] ${line}`);
const startedAt = performance.now();
const server = await openServer();
const metrics: Metric[] = [];
const onlyAt = process.argv.indexOf('--only');
try {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`ledgerbox bench (${settings.quick ? 'quick' : `scale ${settings.scale}`}): ${os.cpus().length} cores (${cpu}), PostgreSQL ${server.version}, Node ${process.version}`);
  console.log(`server: ${server.description}`);
  console.log(`command: ${['npm run bench', ...process.argv.slice(2)].join(' ')}${settings.quick ? ' (quick)' : ''}\n`);
  // `--only posting,reconcile` runs some of them (each is measured beside its own peer anyway)
  const suites = { posting: benchPosting, batch: benchBatch, jobs: benchJobs, reconcile: benchReconcile, exchanges: benchExchanges, memory: benchMemory, scale: benchScale };
  const only = onlyAt >= 0 ? (process.argv[onlyAt + 1] ?? '').split(',') : Object.keys(suites);
  const unknown = only.filter((name) => !(name in suites));
  if (unknown.length > 0) throw new Error(`Expected \`--only\` to list some of ${Object.keys(suites).join(', ')}, got ${unknown.join(', ')}`);
  for (const [name, bench] of Object.entries(suites)) {
    if (only.includes(name)) metrics.push(...(await bench(server, settings, log)));
  }
} finally {
  await server.close();
}
console.log(printTable(metrics));
console.log('ratio = ledgerbox / peer. For rates higher is better; for times (ms) lower is better.');
// A full run's figures are kept in the repository (bench/results.json, the run docs/performance.md
// shows); a quick run (CI) only proves the suite runs, so it writes beside it, ignored by git.
const resultsFile = settings.quick ? 'results.quick.json' : 'results.json';
const resultsPath = fileURLToPath(new URL(`./${resultsFile}`, import.meta.url));
// `--only` re-measures some suites: the other suites' figures already recorded are kept, and a
// metric measured again (same name and clients) replaces its old line
const kept = onlyAt >= 0 && existsSync(resultsPath)
  ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as Metric[]).filter((old) => !metrics.some((m) => m.name === old.name && m.clients === old.clients))
  : [];
writeResults(resultsPath, [...kept, ...metrics]);
console.log(`wrote bench/${resultsFile}; the run took ${((performance.now() - startedAt) / 1_000).toFixed(0)} s`);
