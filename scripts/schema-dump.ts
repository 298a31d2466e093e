// `npm run schema:dump`: migrates a fresh database and writes its schema to test/schema.sql,
// with the pg_dump of the server's own major version (DATABASE_URL, else the embedded
// PostgreSQL). test/schema.test.ts fails when migrations and that file disagree.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../src/index.ts';
import { resolveDatabase } from '../src/db/connection.ts';
import { dumpSchema, findPgDump, schemaFile, serverMajor } from '../test/support/schema.ts';

const database = await resolveDatabase();
const name = `ledgerbox_schema_dump_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: database.connectionString });
await admin.connect();
try {
  const major = await serverMajor(database.connectionString);
  const pgDump = await findPgDump(major);
  if (!pgDump)
    throw new Error(
      `no pg_dump ${major} found (tried /usr/lib/postgresql/${major}/bin, the embedded PostgreSQL's bin, PATH); point DATABASE_URL at a server whose pg_dump is installed`,
    );
  await admin.query(`create database "${name}"`);
  const url = new URL(database.connectionString);
  url.pathname = `/${name}`;
  await migrate({ connectionString: url.toString() });
  writeFileSync(schemaFile, await dumpSchema(pgDump, url.toString(), major));
  console.log(`wrote ${fileURLToPath(schemaFile)} with ${pgDump} (PostgreSQL ${major})`);
} finally {
  await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
  await admin.end();
  await database.close();
}
