// Issue 15: two ledgerbox checkouts on one laptop, each with its embedded PostgreSQL. Each data
// directory gets a free port of its own, remembered beside its data; a start against a data
// directory whose server is running reuses that server; a data directory held by a process that
// is not its server, or out of reach, is refused with a typed error. Needs no DATABASE_URL: every
// server here is one of this file's own, in temp directories.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';

interface Answer {
  connectionString?: string;
  reused?: boolean;
  port?: number;
  data_directory?: string;
  sum?: number;
  /** what the embedded server and ledgerbox said while starting */
  log?: string[];
  error?: { code?: string; message: string };
}

interface Checkout {
  answer: Answer;
  child: ChildProcess;
  exited: Promise<number>;
}

const running = new Set<Checkout>();

/** Starts test/support/embedded-checkout.ts for a data directory; resolves with its JSON line. */
function startCheckout(dataDirectory: string, hold: boolean): Promise<Checkout> {
  const env: NodeJS.ProcessEnv = { ...process.env, LEDGERBOX_EMBEDDED_DIR: dataDirectory };
  delete env.DATABASE_URL;
  delete env.LEDGERBOX_EMBEDDED_PORT;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/embedded-checkout.ts', ...(hold ? ['hold'] : [])], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      const checkout = { answer: JSON.parse(stdout.slice(0, newline)) as Answer, child, exited };
      running.add(checkout);
      resolve(checkout);
    });
    child.on('error', reject);
    void exited.then((code) => reject(new Error(`the checkout process exited ${code} without an answer: ${stdout}${stderr}`)));
  });
}

async function stopCheckout(checkout: Checkout): Promise<void> {
  checkout.child.stdin!.end();
  assert.equal(await checkout.exited, 0, 'the checkout process stopped its server and exited cleanly');
  running.delete(checkout);
}

async function answers(connectionString: string): Promise<number> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return (await client.query<{ sum: number }>('select 40 + 2 as sum')).rows[0]!.sum;
  } finally {
    await client.end();
  }
}

async function rememberedPort(dataDirectory: string): Promise<number> {
  return (JSON.parse(await fs.readFile(path.join(dataDirectory, 'ledgerbox-embedded.json'), 'utf8')) as { port: number }).port;
}

test('two checkouts start concurrently on ports of their own, a start against a running one reuses it, a port taken meanwhile is replaced', { timeout: 300_000 }, async (t) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ledgerbox-coexist-'));
  // as root the server runs as the `postgres` user, who must be able to walk into it
  await fs.chmod(parent, 0o755);
  t.after(async () => {
    for (const checkout of running) {
      checkout.child.stdin!.end();
      await checkout.exited;
    }
    await fs.rm(parent, { recursive: true, force: true });
  });
  const dirA = path.join(parent, 'checkout-a', 'embedded-pg');
  const dirB = path.join(parent, 'checkout-b', 'embedded-pg');

  const [a, b] = await Promise.all([startCheckout(dirA, true), startCheckout(dirB, true)]);
  assert.equal(a.answer.error, undefined, JSON.stringify(a.answer));
  assert.equal(b.answer.error, undefined, JSON.stringify(b.answer));
  t.diagnostic(`checkout A on port ${a.answer.port}, B on ${b.answer.port}`);
  for (const line of [...a.answer.log!, ...b.answer.log!]) if (/port/i.test(line)) t.diagnostic(line);
  assert.notEqual(a.answer.port, b.answer.port, 'each checkout has a port of its own');
  assert.equal(a.answer.sum, 42);
  assert.equal(b.answer.sum, 42);
  assert.equal(await fs.realpath(a.answer.data_directory!), await fs.realpath(dirA));
  assert.equal(await fs.realpath(b.answer.data_directory!), await fs.realpath(dirB));
  assert.equal(await rememberedPort(dirA), a.answer.port);
  assert.equal(await rememberedPort(dirB), b.answer.port);

  // A third start against checkout A's data directory, while A's server runs: the same server.
  const third = await startCheckout(dirA, false);
  assert.equal(third.answer.error, undefined, JSON.stringify(third.answer));
  assert.equal(third.answer.reused, true);
  assert.equal(third.answer.port, a.answer.port);
  assert.equal(await third.exited, 0);
  running.delete(third);
  // ...and its exit left A's server running (it did not start it, so it does not stop it).
  assert.equal(await answers(a.answer.connectionString!), 42);
  assert.equal(await answers(b.answer.connectionString!), 42);

  await stopCheckout(a);
  await stopCheckout(b);

  // Started again, A keeps its remembered port while it is free...
  const again = await startCheckout(dirA, true);
  assert.equal(again.answer.error, undefined, JSON.stringify(again.answer));
  assert.equal(again.answer.reused, false);
  assert.equal(again.answer.port, a.answer.port);
  await stopCheckout(again);

  // ...and moves to another free one, remembered, when something else has taken it.
  const squatter = net.createServer();
  await new Promise<void>((resolve) => squatter.listen({ port: a.answer.port, host: '127.0.0.1' }, resolve));
  try {
    const moved = await startCheckout(dirA, true);
    assert.equal(moved.answer.error, undefined, JSON.stringify(moved.answer));
    assert.notEqual(moved.answer.port, a.answer.port);
    assert.equal(moved.answer.sum, 42);
    assert.equal(await rememberedPort(dirA), moved.answer.port);
    await stopCheckout(moved);
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }

  // A checkout copied with its data directory remembers the same port as the original: started
  // together, both find it free, one server wins the bind and the other moves to another port.
  const shared = await rememberedPort(dirA);
  await fs.writeFile(path.join(dirB, 'ledgerbox-embedded.json'), `${JSON.stringify({ port: shared })}\n`);
  const [copyA, copyB] = await Promise.all([startCheckout(dirA, true), startCheckout(dirB, true)]);
  assert.equal(copyA.answer.error, undefined, JSON.stringify(copyA.answer));
  assert.equal(copyB.answer.error, undefined, JSON.stringify(copyB.answer));
  t.diagnostic(`copied checkouts remembering port ${shared}: A on ${copyA.answer.port}, B on ${copyB.answer.port}`);
  assert.notEqual(copyA.answer.port, copyB.answer.port);
  assert.ok([copyA.answer.port, copyB.answer.port].includes(shared), 'one of them kept the remembered port');
  assert.equal(await answers(copyA.answer.connectionString!), 42);
  assert.equal(await answers(copyB.answer.connectionString!), 42);
  assert.equal(await rememberedPort(dirA), copyA.answer.port);
  assert.equal(await rememberedPort(dirB), copyB.answer.port);
  for (const line of [...copyA.answer.log!, ...copyB.answer.log!]) if (/bind|taken|Started/i.test(line)) t.diagnostic(line);
  await stopCheckout(copyA);
  await stopCheckout(copyB);
});

test('a data directory held by a live process that is not its server, or out of reach, is refused with a typed error', { timeout: 120_000 }, async (t) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'ledgerbox-coexist-refused-'));
  await fs.chmod(parent, 0o755);
  t.after(() => fs.rm(parent, { recursive: true, force: true }));

  // postmaster.pid naming a live process (this one) "ready" on a port nobody answers on: a lock
  // PostgreSQL itself would refuse to start over.
  const held = path.join(parent, 'held');
  await fs.mkdir(held);
  const nobody = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen({ port: 0, host: '127.0.0.1' }, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  await fs.writeFile(path.join(held, 'postmaster.pid'), `${process.pid}\n${held}\n0\n${nobody}\n/tmp\n127.0.0.1\n0 0\nready   \n`);
  const refused = await startCheckout(held, false);
  assert.equal(refused.answer.error?.code, 'embedded_postgres_data_directory_in_use', JSON.stringify(refused.answer));
  assert.match(refused.answer.error!.message, new RegExp(`in use by process ${process.pid}`));
  assert.equal(await refused.exited, 1);
  running.delete(refused);
  assert.deepEqual(await fs.readdir(held), ['postmaster.pid'], 'nothing was written into the refused directory');

  // A folder this user cannot write (or, as root, one the `postgres` user cannot enter).
  const locked = path.join(parent, 'locked');
  await fs.mkdir(locked, { mode: 0o500 });
  await fs.chmod(locked, 0o500);
  const denied = await startCheckout(path.join(locked, 'checkout', 'embedded-pg'), false);
  assert.equal(denied.answer.error?.code, 'embedded_postgres_permission_denied', JSON.stringify(denied.answer));
  assert.match(denied.answer.error!.message, /Permission denied on .*LEDGERBOX_EMBEDDED_DIR.*DATABASE_URL/s);
  assert.equal(await denied.exited, 1);
  running.delete(denied);
  assert.deepEqual(await fs.readdir(locked), [], 'nothing was created');
});
