// test/schema.sql is the schema our migrations make, as pg_dump shows it, so a migration's
// effect is reviewed in a diff. Dumps differ across PostgreSQL majors: on a server of the
// file's major (with its pg_dump) the dump is compared line for line; on another major (the
// embedded PostgreSQL 18 ships no pg_dump) the file is restored into a fresh database on this
// server and both schemas are compared as the catalog describes them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runMigrations } from 'graphile-worker';
import { databaseUrl, dropDatabase, serverUrl, useTestDatabase } from './support/database.ts';
import { describeSchema, dumpSchema, fileMajor, findPgDump, regenerate, restorableSql, schemaFile, serverMajor } from './support/schema.ts';

const db = await useTestDatabase();
const committed = readFileSync(schemaFile, 'utf8');

/** A unified diff of two texts (diff(1) is on every machine that runs the suite). */
async function unifiedDiff(expected: string, actual: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ledgerbox-schema-'));
  writeFileSync(join(dir, 'test-schema.sql'), expected);
  writeFileSync(join(dir, 'migrated.sql'), actual);
  const result = await promisify(execFile)('diff', ['-u', join(dir, 'test-schema.sql'), join(dir, 'migrated.sql')]).catch((error: { stdout?: string }) => ({
    stdout: error.stdout ?? '',
  }));
  return result.stdout;
}

test('test/schema.sql is the schema the migrations make', async () => {
  const major = await serverMajor(db.connectionString);
  const recorded = fileMajor(committed);
  assert.ok(recorded !== undefined, `test/schema.sql has no "-- ledgerbox schema, pg_dump N;" first line; regenerate it with \`${regenerate}\``);
  const pgDump = major === recorded ? await findPgDump(major) : undefined;

  if (pgDump) {
    const dumped = await dumpSchema(pgDump, db.connectionString, major);
    if (dumped !== committed) {
      assert.fail(
        `the migrated schema differs from test/schema.sql; if the change is meant, regenerate it with \`${regenerate}\` and commit it\n${await unifiedDiff(committed, dumped)}`,
      );
    }
    return;
  }

  // Another major: restore the file next to graphile-worker's schema (our functions and views
  // use it) in a database of our own, and compare the two catalogs.
  const name = `ledgerbox_schema_restore_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  try {
    await runMigrations({ connectionString: databaseUrl(name) });
    const client = new pg.Client({ connectionString: databaseUrl(name) });
    await client.connect();
    try {
      await client.query(restorableSql(committed));
    } finally {
      await client.end();
    }
    const [migrated, restored] = [await describeSchema(db.connectionString), await describeSchema(databaseUrl(name))];
    if (migrated.join('\n') !== restored.join('\n')) {
      assert.fail(
        `the migrated schema differs from test/schema.sql (made with pg_dump ${recorded}, compared on PostgreSQL ${major} by catalog); ` +
          `if the change is meant, regenerate it with \`${regenerate}\` against a PostgreSQL ${recorded} server and commit it\n` +
          (await unifiedDiff(restored.join('\n') + '\n', migrated.join('\n') + '\n')),
      );
    }
  } finally {
    await dropDatabase(name);
  }
});
