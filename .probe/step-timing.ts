// where a no-op step's time goes: client-observed latency per statement, under the bench's concurrency
import pg from 'pg';
const stats = new Map<string, { n: number; ms: number }>();
const orig = pg.Client.prototype.query as any;
(pg.Client.prototype as any).query = function (this: unknown, ...args: any[]) {
  const cfg = args[0];
  const text: string = typeof cfg === 'string' ? cfg : cfg?.text ?? cfg?.name ?? '?';
  const key = text.replace(/\s+/g, ' ').trim().slice(0, 70);
  const t0 = performance.now();
  const record = () => { const s = stats.get(key) ?? { n: 0, ms: 0 }; s.n++; s.ms += performance.now() - t0; stats.set(key, s); };
  const last = args[args.length - 1];
  if (typeof last === 'function') { args[args.length - 1] = (...a: any[]) => { record(); return last(...a); }; return orig.apply(this, args); }
  const r = orig.apply(this, args);
  if (r && typeof r.then === 'function') {
    r.then(() => { const s = stats.get(key) ?? { n: 0, ms: 0 }; s.n++; s.ms += performance.now() - t0; stats.set(key, s); }, () => {});
  }
  return r;
};
const { openServer } = await import('../bench/database.ts');
const { benchJobs } = await import('../bench/jobs.bench.ts');
const { readSettings } = await import('../bench/settings.ts');
const server = await openServer();
const settings = { ...readSettings([], {}), jobs: Number(process.argv[2] ?? 3000), latencySamples: 5 };
const which = process.argv[3] ?? 'both';
await benchJobs(server, settings, (l) => console.log(l));
await server.close();
for (const [k, v] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 60)) console.log(`${v.n.toString().padStart(7)} ${(v.ms / v.n).toFixed(2).padStart(7)} ms  ${k}`);
