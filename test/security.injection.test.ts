// No string is ever interpolated into SQL: injection payloads in every text field of the
// public API are stored and read back exactly, and the schema is untouched afterwards. A scan of
// the source pins the only places raw SQL text is built, and that none of them takes input.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import {
  cancelWorkflow,
  closeInvestigation,
  createAccount,
  createHold,
  defineTask,
  deliverAlerts,
  enqueue,
  fanOut,
  getAccount,
  getBalance,
  getTransfer,
  importStatement,
  listFailedJobs,
  listOpenInvestigations,
  postHold,
  postTransfer,
  recordAlert,
  retryTaskJobs,
  reverseTransfer,
  startExchange,
} from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { hostileTexts } from './support/fuzz.ts';
import { assertLedgerInvariants } from './support/invariants.ts';
import { minor, usd } from './support/money.ts';

const db = await useTestDatabase();
await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'world:EUR', currency: 'EUR', allowNegative: true });

/** Every object of both schemas, column and trigger; and the rows of the tables a payload names. */
async function schemaFingerprint(): Promise<string> {
  const { rows } = await db.pool.query(`
    select md5(string_agg(item, '|' order by item)) as fingerprint, count(*)::int as objects from (
      select format('%s.%s:%s', n.nspname, c.relname, c.relkind) as item from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('ledgerbox', 'graphile_worker')
      union all select format('%s.%s(%s)', n.nspname, p.proname, p.prosrc) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('ledgerbox', 'graphile_worker')
      union all select format('%s:%s:%s', t.tgrelid::regclass, t.tgname, t.tgenabled) from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'ledgerbox'
      union all select format('%s:%s', a.attrelid::regclass, a.attname) from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'ledgerbox' and a.attnum > 0
      union all select format('grant:%s', relacl) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'ledgerbox'
    ) items`);
  return `${rows[0].fingerprint} (${rows[0].objects} objects)`;
}

const before = await schemaFingerprint();
/** The payloads, each made a distinct valid key (no control characters at the edges). */
const payloads = hostileTexts.map((text, index) => `${index}:${text.replace(/[\u0000-\u001f]/g, ' ')}`.trim());
/** And as free text (messages, metadata, reasons), control characters kept. */
const freeTexts = hostileTexts.map((text, index) => `${text} #${index}`);

const servers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of servers) await close();
});

test('account keys, transfer and hold keys, metadata keys and values round-trip exactly', async () => {
  for (const [index, key] of payloads.entries()) {
    const metadata = { [freeTexts[index]!]: freeTexts[index], nested: { list: [key, freeTexts[index]] } };
    const account = await createAccount(db.pool, { key, currency: 'USD', metadata });
    assert.equal(account.key, key);
    assert.deepEqual((await getAccount(db.pool, key)).metadata, metadata);
    const transfer = await postTransfer(db.pool, { key: `t:${key}`, legs: [{ from: 'world:USD', to: key, amount: usd(10_00n) }], metadata });
    assert.deepEqual((await getTransfer(db.pool, { key: `t:${key}` })).metadata, metadata);
    assert.equal((await getTransfer(db.pool, { id: transfer.id })).key, `t:${key}`);
    const hold = await createHold(db.pool, { key: `h:${key}`, from: key, to: 'world:USD', amount: usd(3_00n), metadata });
    await postHold(db.pool, { key: `p:${key}`, holdId: hold.id, metadata });
    const refund = await postTransfer(db.pool, { key: `t2:${key}`, legs: [{ from: 'world:USD', to: key, amount: usd(1_00n) }] });
    const reversal = await reverseTransfer(db.pool, { key: `r:${key}`, transferId: refund.id, metadata });
    assert.deepEqual(reversal.metadata, metadata);
    const balance = await getBalance(db.pool, key);
    assert.equal(balance.account, key);
    assert.equal(minor(balance.posted), 10_00n - 3_00n + 1_00n - 1_00n);
  }
  const { rows } = await db.pool.query(`select key from ledgerbox.accounts where key = any($1::text[]) order by key`, [payloads]);
  assert.deepEqual(rows.map((row) => row.key), [...payloads].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  await assertLedgerInvariants(db.pool);
});

test("job payloads, job keys, fan-out ids and task filters round-trip exactly through graphile-worker's queue", async () => {
  const task = defineTask('security.injection', object({ ref: string() }));
  for (const [index, key] of payloads.entries()) {
    const { jobId } = await enqueue(db.pool, task, { ref: freeTexts[index]! }, { jobKey: `job:${key}`, runAt: new Date(Date.now() + 86_400_000) });
    const { rows } = await db.pool.query(`select payload, key from graphile_worker._private_jobs where id = $1`, [jobId]);
    assert.deepEqual(rows[0], { payload: { ref: freeTexts[index] }, key: `job:${key}` });
  }
  const fanned = await fanOut(db.pool, task, payloads, (id) => ({ ref: id }), { jobKeyPrefix: 'fan:', startAt: new Date(Date.now() + 86_400_000) });
  assert.equal(fanned.jobs, payloads.length);
  const { rows } = await db.pool.query(`select payload->>'ref' as ref, key from graphile_worker._private_jobs where key like 'fan:%' order by id`);
  assert.deepEqual(rows.map((row) => [row.ref, row.key]), payloads.map((id) => [id, `fan:${id}`]));
  for (const text of freeTexts) assert.deepEqual(await listFailedJobs(db.pool, { task: text.slice(0, 100) }), []);
});

test('alert messages, details and dedupe keys, investigation resolutions and operator reasons round-trip exactly', async () => {
  const webhook = createServer((request, response) => {
    request.resume();
    response.writeHead(200).end('ok');
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  servers.push(() => new Promise<void>((resolve) => webhook.close(() => resolve())));
  const url = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
  for (const [index, text] of freeTexts.entries()) {
    const recorded = await recordAlert(db.pool, { severity: 'warning', kind: 'security.injection', message: text, details: { text }, dedupeKey: `alert:${payloads[index]}` });
    const { rows } = await db.pool.query(`select message, details, dedupe_key from ledgerbox.alerts where id = $1`, [recorded.id]);
    assert.deepEqual(rows[0], { message: text, details: { text }, dedupe_key: `alert:${payloads[index]}` });
  }
  await deliverAlerts(db.pool, { opsWebhookUrl: url, logger: pino({ level: 'silent' }), limit: 1_000 });
  const open = (await listOpenInvestigations(db.pool, { limit: 1_000 })).filter((investigation) => investigation.dedupeKey.startsWith('alert:'));
  assert.equal(open.length, freeTexts.length);
  for (const [index, investigation] of open.entries()) {
    const closed = await closeInvestigation(db.pool, { id: investigation.id, resolution: freeTexts[index]!, closedBy: payloads[index]! });
    assert.equal(closed.resolution, freeTexts[index]);
    assert.equal(closed.closedBy, payloads[index]);
  }
  for (const [index, key] of payloads.entries()) {
    await createAccount(db.pool, { key: `x:${key}:USD`, currency: 'USD' });
    await createAccount(db.pool, { key: `x:${key}:EUR`, currency: 'EUR' });
    await postTransfer(db.pool, { key: `x:fund:${key}`, legs: [{ from: 'world:USD', to: `x:${key}:USD`, amount: usd(5_00n) }] });
    const exchange = await startExchange(db.pool, { key: `x:${key}`, from: `x:${key}:USD`, to: `x:${key}:EUR`, amount: usd(1_00n), metadata: { note: freeTexts[index] } });
    await cancelWorkflow(db.pool, { workflowId: exchange.exchangeId, reason: freeTexts[index]! });
    assert.equal(await retryTaskJobs(db.pool, { task: payloads[index]!.slice(0, 100), reason: freeTexts[index]! }), 0);
  }
  const { rows } = await db.pool.query(`select action, reason from ledgerbox.operator_actions order by id`);
  assert.deepEqual(
    rows.filter((row) => row.action === 'cancel_workflow').map((row) => row.reason),
    freeTexts,
  );
  assert.deepEqual(
    rows.filter((row) => row.action === 'retry_task_jobs').map((row) => row.reason),
    freeTexts,
  );
});

test('statement sources, file names and account fields round-trip exactly', async () => {
  for (const [index, key] of payloads.entries()) {
    const field = `"${key.replaceAll('"', '""')}"`;
    const statement = await importStatement(db.pool, { csv: `account,currency,as_of,balance\n${field},USD,2026-11-21,12.34\n`, source: payloads[index]!, fileName: `${payloads[index]}.csv` });
    const { rows } = await db.pool.query(
      `select s.source, s.file_name, b.account, b.balance::text from ledgerbox.statements s join ledgerbox.statement_balances b on b.statement_id = s.id where s.id = $1`,
      [statement.statementId],
    );
    assert.deepEqual(rows, [{ source: payloads[index], file_name: `${payloads[index]}.csv`, account: key, balance: '1234' }]);
  }
});

test('after every payload, the schema is exactly as the migrations left it', async () => {
  assert.equal(await schemaFingerprint(), before);
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.entries`);
  assert.ok(rows[0].n > 0);
});

test('the source builds raw SQL text in only a few known places, none from input', () => {
  const files = (function walk(directory: string): string[] {
    return readdirSync(directory).flatMap((name) => {
      const path = join(directory, name);
      return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') ? [path] : [];
    });
  })('src');
  const raw: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/__dangerous__rawValue\(`([^`]*)`\)/g)) raw.push(`${file}: ${match[1]}`);
    // every helper built on raw SQL is called with a string literal only
    for (const helper of ['iso', 'dedupeKeyOf']) {
      for (const call of text.matchAll(new RegExp(`\\$\\{${helper}\\(([^)]*)\\)`, 'g'))) {
        assert.match(call[1]!, /^'[a-z_.]+'$/, `${file}: ${helper}(${call[1]}) must take a literal column`);
      }
    }
    // pg's own query() is given constant text or placeholders, never an interpolated value
    for (const call of text.matchAll(/\.query\(`([^`]*)`/g)) {
      for (const interpolation of call[1]!.matchAll(/\$\{([^}]*)\}/g)) {
        assert.ok(['savepoint'].includes(interpolation[1]!), `${file}: .query() interpolates \${${interpolation[1]}}`);
      }
    }
  }
  assert.deepEqual(
    [...new Set(raw.map((site) => site.replace(/^.*: /, '')))].sort(),
    ["coalesce(${alias}.dedupe_key, ${alias}.kind || ':' || coalesce(${alias}.workflow_id::text, 'alert:' || ${alias}.id))", "to_json(${column}) #>> '{}'"],
  );
  // the savepoint name is ledgerbox's own counter
  assert.match(readFileSync('src/db/handle.ts', 'utf8'), /const savepoint = `ledgerbox_\$\{\+\+savepointSequence\}`;/);
});
