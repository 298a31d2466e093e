// One checkout's process (test/embedded.coexist.test.ts): with no DATABASE_URL, finds its
// database the way the CLI, the demo and the test runner do (the embedded PostgreSQL of
// LEDGERBOX_EMBEDDED_DIR), asks it a question, prints one JSON line, and with `hold` keeps the
// server running until its stdin closes.
import pg from 'pg';
import { resolveDatabase } from '../../src/db/connection.ts';

const hold = process.argv[2] === 'hold';
const log: string[] = [];
try {
  const database = await resolveDatabase({ log: (line) => log.push(line) });
  const client = new pg.Client({ connectionString: database.connectionString });
  await client.connect();
  const { rows } = await client.query<{ port: number; data_directory: string; sum: number }>(
    "select current_setting('port')::int as port, current_setting('data_directory') as data_directory, 40 + 2 as sum",
  );
  await client.end();
  const reused = log.some((line) => line.startsWith('Reusing embedded PostgreSQL'));
  console.log(JSON.stringify({ connectionString: database.connectionString, reused, ...rows[0], log }));
  if (hold) {
    await new Promise((resolve) => {
      process.stdin.on('end', resolve);
      process.stdin.resume();
    });
  }
  await database.close();
} catch (err) {
  const { code, message } = err as { code?: string; message: string };
  console.log(JSON.stringify({ error: { code, message }, log }));
  process.exitCode = 1;
}
