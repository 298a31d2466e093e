// The database's own failures, each caused for real on a server (never a mock): a closed port,
// a port that is not PostgreSQL's, a missing database, a role that may not log in, a role out of
// connections, a database never migrated. Every call path: queryOnce (getAccount),
// inTransaction (createAccount), inOneStatement (postTransfer), on node-postgres and
// @databases/pg pools.
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import * as databasesPg from '@databases/pg';
import pg from 'pg';
import { createAccount, getAccount, isLedgerboxError, postTransfer, type DatabaseHandle, type ErrorCode } from '../src/index.ts';
import { databaseUrl, dropDatabase, serverUrl, useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

const createConnectionPool: typeof databasesPg.default.default = (databasesPg.default as any).default ?? databasesPg.default;
const db = await useTestDatabase();
const suffix = randomBytes(4).toString('hex');
const secret = `s3cret-${suffix}`;

const admin = new pg.Client({ connectionString: serverUrl() });
await admin.connect();
after(() => admin.end());

/** A URL on this server with `user`, `password` and `database` changed. */
function urlWith(change: { user?: string; password?: string; database?: string; host?: string; port?: number }): string {
  const url = new URL(change.database === undefined ? db.connectionString : databaseUrl(change.database));
  if (change.user !== undefined) url.username = change.user;
  if (change.password !== undefined) url.password = change.password;
  if (change.host !== undefined) url.hostname = change.host;
  if (change.port !== undefined) url.port = String(change.port);
  return url.toString();
}

/** Every ledgerbox call path, on a node-postgres pool and an @databases/pg pool to `url`. */
async function everyPathRefuses(url: string, code: ErrorCode, expect: { retryable: boolean; shows: RegExp; causeCode?: string }): Promise<void> {
  const pgPool = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 });
  pgPool.on('error', () => undefined);
  const databases = createConnectionPool({ connectionString: url, bigIntMode: 'bigint', poolSize: 1 });
  try {
    for (const [name, handle] of [['pg.Pool', pgPool], ['@databases/pg ConnectionPool', databases]] as [string, DatabaseHandle][]) {
      const calls: [string, () => Promise<unknown>][] = [
        ['getAccount', () => getAccount(handle, 'alice:USD')],
        ['createAccount', () => createAccount(handle, { key: `x${suffix}:USD`, currency: 'USD' })],
        ['postTransfer', () => postTransfer(handle, { key: `t-${suffix}`, legs: [{ from: 'world:USD', to: 'alice:USD', amount: usd(1n) }] })],
      ];
      for (const [call, run] of calls) {
        const error = await run().then(
          () => assert.fail(`${call} on a ${name} succeeded`),
          (caught: unknown) => caught,
        );
        assert.ok(isLedgerboxError(error, code), `${call} on a ${name}: expected ${code}, got ${String(error)} (${(error as { code?: string }).code})`);
        assert.equal(error.retryable, expect.retryable, `${call} on a ${name}: retryable`);
        assert.match(error.message, expect.shows, `${call} on a ${name}`);
        assert.ok(error.cause instanceof Error, `${call} on a ${name}: the driver's error is the cause`);
        if (expect.causeCode !== undefined) assert.equal((error.cause as { code?: string }).code, expect.causeCode);
        assert.doesNotMatch(error.message, new RegExp(secret), 'no password in the message');
        assert.ok(!error.message.includes(url), 'no connection string in the message');
      }
    }
  } finally {
    await pgPool.end();
    await databases.dispose().catch(() => undefined);
  }
}

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'alice:USD', currency: 'USD' });

test('a closed port is database_unreachable, retryable, naming host and port but no password', async () => {
  // port 1 (tcpmux), which nothing here listens on: a port found free and closed again could be
  // taken meanwhile by a PostgreSQL another test file starts on a free port (the chaos run's)
  const port = 1;
  await everyPathRefuses(urlWith({ password: secret, port }), 'database_unreachable', { retryable: true, shows: new RegExp(`127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`), causeCode: 'ECONNREFUSED' });
});

test('a port whose listener hangs up before a PostgreSQL session begins is database_unreachable', async () => {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as net.AddressInfo;
    await everyPathRefuses(urlWith({ password: secret, port }), 'database_unreachable', { retryable: true, shows: /before a PostgreSQL session began/ });
  } finally {
    server.close();
  }
});

test('a database that does not exist is database_not_found (3D000)', async () => {
  // the server's own credentials: a server that checks passwords (the embedded one) refuses a wrong one first
  await everyPathRefuses(urlWith({ database: `ledgerbox_missing_${suffix}` }), 'database_not_found', {
    retryable: false,
    shows: new RegExp(`database "ledgerbox_missing_${suffix}" does not exist`),
    causeCode: '3D000',
  });
});

test('a role the server will not log in is database_authentication_failed (28000)', async () => {
  const role = `ledgerbox_nologin_${suffix}`;
  await admin.query(`create role ${role} nologin password '${secret}'`);
  try {
    await everyPathRefuses(urlWith({ user: role, password: secret }), 'database_authentication_failed', { retryable: false, shows: /not permitted to log in/, causeCode: '28000' });
    // and a role that does not exist at all
    // (28000 "does not exist" under trust; 28P01 where the server asks for a password first)
    await everyPathRefuses(urlWith({ user: `ledgerbox_nobody_${suffix}`, password: secret }), 'database_authentication_failed', { retryable: false, shows: /does not exist|password authentication failed/ });
  } finally {
    await admin.query(`drop role ${role}`);
  }
});

test('a role out of connections is database_too_many_connections (53300), retryable', async () => {
  const role = `ledgerbox_limited_${suffix}`;
  await admin.query(`create role ${role} login connection limit 1 password '${secret}'`);
  const url = urlWith({ user: role, password: secret });
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  try {
    await everyPathRefuses(url, 'database_too_many_connections', { retryable: true, shows: /too many connections for role/, causeCode: '53300' });
  } finally {
    await holder.end();
    await admin.query(`drop role ${role}`);
  }
});

test('a database never migrated is schema_not_migrated, naming `npx ledgerbox migrate`', async () => {
  const name = `ledgerbox_unmigrated_${suffix}`;
  await admin.query(`create database "${name}"`);
  try {
    await everyPathRefuses(urlWith({ database: name }), 'schema_not_migrated', { retryable: false, shows: /npx ledgerbox migrate/ });
  } finally {
    await dropDatabase(name);
  }
});

test('an error of the call itself (a missing account) stays what it is', async () => {
  await assert.rejects(getAccount(db.pool, 'nobody:USD'), (error: unknown) => isLedgerboxError(error, 'account_not_found'));
});
