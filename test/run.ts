// `npm test`: finds a PostgreSQL (DATABASE_URL, or the embedded fallback started once for the
// whole run), then runs every test file with node:test, one database per file.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { resolveDatabase } from '../src/db/connection.ts';

const only = process.argv.slice(2);
const files = only.length > 0 ? only : readdirSync('test').filter((file) => file.endsWith('.test.ts')).sort().map((file) => `test/${file}`);

const verbose = ['debug', 'trace'].includes(process.env.LEDGERBOX_LOG_LEVEL ?? '');
const database = await resolveDatabase(verbose ? { log: (line) => console.log(`# ${line}`) } : {});
console.log(`# database: ${database.description}`);
// Two files at a time; every file also holds one of the server's file slots while it runs
// (test/support/database.ts), which bounds this run's connections, and those of any other run
// on the same server, to what the server has (two 40-connection files on a server of 100).
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  env: { ...process.env, DATABASE_URL: database.connectionString, LEDGERBOX_LOG_LEVEL: process.env.LEDGERBOX_LOG_LEVEL ?? 'silent' },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const code: number = await new Promise((resolve) => child.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))));
await database.close();
process.exit(code);
