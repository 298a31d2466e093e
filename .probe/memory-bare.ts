// one-off: the bare graphile-worker side of the 1M-job memory run (same worker script, same settings as memory.bench.ts)
import { fork } from 'node:child_process';
import pg from 'pg';
import { openServer, withDatabase } from '../bench/database.ts';
const side = (process.argv[2] ?? 'bare') as 'bare' | 'ledgerbox';
const jobs = Number(process.argv[3] ?? 1_000_000);
const server = await openServer();
await withDatabase(server, `memory_${side}`, { migrated: true }, async (url) => {
  const t0 = performance.now();
  const child = fork(new URL('../bench/memory-worker.ts', import.meta.url).pathname, [side, url, String(jobs), '8', 'bench_memory_noop'], { execArgv: ['--import', 'tsx', '--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const readings: any[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m) => { readings.push(m); wake?.(); });
  const next = async (n: number) => { while (readings.length < n) await new Promise<void>((r) => (wake = r)); return readings[n - 1]; };
  const start = await next(1);
  console.log('start', JSON.stringify(start));
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  for (let added = 0; added < jobs; added += 20000) {
    await pool.query(`select count(*) from graphile_worker.add_jobs(array(select row($1, json_build_object('n', g), null, null, 25, null, null, null)::graphile_worker.job_spec from generate_series(1, $2::int) g))`, ['bench_memory_noop', Math.min(20000, jobs - added)]);
  }
  await pool.end();
  const end = await next(2);
  console.log('end', JSON.stringify(end), 'seconds', ((performance.now() - t0) / 1000).toFixed(1));
  console.log(`RSS ${(start.rss / 1048576).toFixed(1)} -> ${(end.rss / 1048576).toFixed(1)} MB, heap ${(start.heapUsed / 1048576).toFixed(2)} -> ${(end.heapUsed / 1048576).toFixed(2)} MB`);
  child.kill('SIGKILL');
});
await server.close();
