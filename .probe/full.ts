import pg from 'pg';
import { pino } from 'pino';
import { reconcile } from '../src/index.ts';
const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/recon_probe' });
const r = await reconcile(pool, { full: true, logger: pino({ level: 'silent' }) });
console.log(r.status, r.entriesChecked);
await pool.end();
