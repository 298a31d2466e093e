// Issue 12: every public function refuses an option it does not know (a misspelling would
// otherwise be silently ignored: `metdata`, `limt`, a money object's `scale`), as invalid_input
// naming the option's path and showing its value, and writes nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import {
  InvalidInputError,
  cancelWorkflow,
  closeInvestigation,
  createAccount,
  createHold,
  defineCurrency,
  defineTask,
  deliverAlerts,
  enqueue,
  enqueueMany,
  expireHolds,
  fanOut,
  getBalance,
  importStatement,
  listFailedJobs,
  listOpenInvestigations,
  migrate,
  moneyInLimbo,
  postHold,
  postTransfer,
  recordAlert,
  reconcile,
  resumeWorkflow,
  retryJob,
  retryTaskJobs,
  stuckWorkflows,
  summariseBatches,
  voidHold,
} from '../src/index.ts';
import { databaseUrl, dropDatabase, serverUrl, useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

const db = await useTestDatabase();
const quiet = pino({ level: 'silent' });
const secret = 'Sup3r-s3cret-9c2e';

// What a valid call of each function would act on, so a call that let the unknown option
// through would write (and the snapshot below would say so).
await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'alice:USD', currency: 'USD' });
await createAccount(db.pool, { key: 'bob:USD', currency: 'USD' });
await postTransfer(db.pool, { key: 'funding:alice', legs: [{ from: 'world:USD', to: 'alice:USD', amount: usd(100_00n) }] });
const inAnHour = new Date(Date.now() + 3_600_000);
const openHold = await createHold(db.pool, { key: 'hold:open', from: 'alice:USD', to: 'bob:USD', amount: usd(10_00n), expiresAt: inAnHour });

const mailTask = defineTask('ops.unknown_options_mail', object({ mailId: string() }), { maxAttempts: 1 });
const failedJob = await enqueue(db.pool, mailTask, { mailId: 'm-1' });
await db.pool.query(`update graphile_worker._private_jobs set attempts = max_attempts, last_error = 'smtp refused' where id = $1`, [failedJob.jobId]);

// a batch whose jobs are all done (graphile-worker deletes completed jobs): the next summariseBatches summarises it
const batch = await fanOut(db.pool, mailTask, ['b-1', 'b-2'], (mailId) => ({ mailId }), { batch: 'unknown-options:batch' });
await db.pool.query(`delete from graphile_worker._private_jobs where id in (select job_id from ledgerbox.batch_jobs where batch_id = $1)`, [batch.batchId]);

// an open investigation (a warning delivered without a webhook still opens one), then an alert not yet delivered
await recordAlert(db.pool, { severity: 'warning', kind: 'unknown_options_drift', message: 'drift on alice:USD', dedupeKey: 'drift:alice' });
await deliverAlerts(db.pool, { logger: quiet });
const [investigation] = await listOpenInvestigations(db.pool);
assert.ok(investigation !== undefined, 'the setup opened an investigation');
await recordAlert(db.pool, { severity: 'info', kind: 'unknown_options_note', message: 'waiting to be delivered' });

const unknownWorkflow = '7d444840-9dc0-11d1-b245-5ffdce74fad2';
const statementCsv = 'account,currency,as_of,balance\nalice:USD,USD,2026-01-31T00:00:00Z,90.00\n';

/** Every row of every table ledgerbox and graphile-worker keep, by table: any write shows. */
async function snapshot(pool: pg.Pool = db.pool): Promise<Record<string, string>> {
  const { rows: tables } = await pool.query<{ name: string }>(
    `select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname in ('ledgerbox', 'graphile_worker') order by 1`,
  );
  if (tables.length === 0) return {};
  const { rows } = await pool.query<{ name: string; rows: string }>(
    tables
      .map(({ name }) => `select '${name}' as name, count(*) || ':' || md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as rows from ${name} t`)
      .join(' union all '),
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.rows]));
}

async function countRows(table: string): Promise<number> {
  return (await db.pool.query<{ n: number }>(`select count(*)::int as n from ${table}`)).rows[0]!.n;
}

interface Case {
  name: string;
  call: () => unknown;
  /** The unknown option's path, which the message must name in backticks. */
  path: string;
  /** What the message must show: the option's value as the caller would recognize it. */
  shows: string;
  /** The table the call would write (counted); undefined for a function that only reads. */
  writes?: string;
}

const cases: Case[] = [
  {
    name: 'defineCurrency',
    call: () => defineCurrency(db.pool, { code: 'GEMS', exponent: 0, bsae: 10 } as never),
    path: 'currency.bsae',
    shows: 'got 10',
    writes: 'ledgerbox.currencies',
  },
  {
    name: 'createAccount',
    call: () => createAccount(db.pool, { key: 'dave:USD', currency: 'USD', metdata: { tier: 'gold' } } as never),
    path: 'account.metdata',
    shows: '{"tier":"gold"}',
    writes: 'ledgerbox.accounts',
  },
  {
    name: 'createHold',
    call: () => createHold(db.pool, { key: 'hold:misspelt', from: 'alice:USD', to: 'bob:USD', amount: usd(5_00n), expiresAt: inAnHour, metdata: { order: 7 } } as never),
    path: 'hold.metdata',
    shows: '{"order":7}',
    writes: 'ledgerbox.transfers',
  },
  {
    name: 'createHold, a money object with a field money does not have',
    call: () => createHold(db.pool, { key: 'hold:exponent', from: 'alice:USD', to: 'bob:USD', amount: { amount: 5_00n, currency: 'USD', exponent: 2 } } as never),
    path: 'hold.amount.exponent',
    shows: 'got 2',
    writes: 'ledgerbox.transfers',
  },
  {
    name: 'postHold',
    call: () => postHold(db.pool, { key: 'post:misspelt', holdId: openHold.id, amonut: usd(1_00n) } as never),
    path: 'post.amonut',
    shows: 'amount',
    writes: 'ledgerbox.transfers',
  },
  {
    name: 'postHold, a money object with a scale',
    call: () => postHold(db.pool, { key: 'post:scale', holdId: openHold.id, amount: { amount: 1_000n, currency: 'USD', scale: 3n } } as never),
    path: 'post.amount.scale',
    shows: 'got 3n',
    writes: 'ledgerbox.transfers',
  },
  {
    name: 'voidHold',
    call: () => voidHold(db.pool, { key: 'void:misspelt', holdId: openHold.id, reason: 'customer cancelled' } as never),
    path: 'void.reason',
    shows: '"customer cancelled"',
    writes: 'ledgerbox.transfers',
  },
  {
    name: 'expireHolds',
    call: () => expireHolds(db.pool, { now: new Date(inAnHour.getTime() + 3_600_000), limt: 10 } as never),
    path: 'expire.limt',
    shows: 'got 10',
    writes: 'ledgerbox.transfers',
  },
  {
    name: 'getBalance',
    call: () => getBalance(db.pool, 'alice:USD', { asof: '2026-01-31T00:00:00Z' } as never),
    path: 'options.asof',
    shows: '"2026-01-31T00:00:00Z"',
  },
  {
    name: 'defineTask (its defaults)',
    call: () => defineTask('ops.misspelt_defaults', object({ id: string() }), { maxAttemps: 3 } as never),
    path: 'defaults.maxAttemps',
    shows: 'got 3',
  },
  {
    name: 'enqueue',
    call: () => enqueue(db.pool, mailTask, { mailId: 'm-2' }, { jobkey: 'mail:m-2' } as never),
    path: 'options.jobkey',
    shows: '"mail:m-2"',
    writes: 'graphile_worker._private_jobs',
  },
  {
    name: 'enqueueMany, a job with a misspelt `options`',
    call: () => enqueueMany(db.pool, [{ task: mailTask, payload: { mailId: 'm-3' } }, { task: mailTask, payload: { mailId: 'm-4' }, option: { jobKey: 'mail:m-4' } } as never]),
    path: 'jobs.1.option',
    shows: '{"jobKey":"mail:m-4"}',
    writes: 'graphile_worker._private_jobs',
  },
  {
    name: 'enqueueMany, a misspelt option',
    call: () => enqueueMany(db.pool, [{ task: mailTask, payload: { mailId: 'm-5' }, options: { runat: '2026-01-31T00:00:00Z' } as never }]),
    path: 'jobs.0.options.runat',
    shows: '"2026-01-31T00:00:00Z"',
    writes: 'graphile_worker._private_jobs',
  },
  {
    name: 'fanOut',
    call: () => fanOut(db.pool, mailTask, ['f-1', 'f-2'], (mailId) => ({ mailId }), { batchName: 'nightly' } as never),
    path: 'options.batchName',
    shows: '"nightly"',
    writes: 'graphile_worker._private_jobs',
  },
  {
    name: 'summariseBatches',
    call: () => summariseBatches(db.pool, { limti: 5 } as never),
    path: 'options.limti',
    shows: 'got 5',
    writes: 'ledgerbox.alerts',
  },
  {
    name: 'resumeWorkflow',
    call: () => resumeWorkflow(db.pool, { workflowId: unknownWorkflow, reason: 'provider fixed', force: true } as never),
    path: 'resume.force',
    shows: 'got true',
    writes: 'ledgerbox.operator_actions',
  },
  {
    name: 'cancelWorkflow',
    call: () => cancelWorkflow(db.pool, { workflowId: unknownWorkflow, reason: 'customer asked', compensate: false } as never),
    path: 'cancel.compensate',
    shows: 'got false',
    writes: 'ledgerbox.operator_actions',
  },
  {
    name: 'retryJob',
    call: () => retryJob(db.pool, { jobId: failedJob.jobId, reason: 'smtp fixed', resetAttempts: true } as never),
    path: 'retry.resetAttempts',
    shows: 'got true',
    writes: 'ledgerbox.operator_actions',
  },
  {
    name: 'retryTaskJobs',
    call: () => retryTaskJobs(db.pool, { task: mailTask.name, reason: 'smtp fixed', sinse: '2026-01-01T00:00:00Z' } as never),
    path: 'retry.sinse',
    shows: '"2026-01-01T00:00:00Z"',
    writes: 'ledgerbox.operator_actions',
  },
  {
    name: 'listFailedJobs',
    call: () => listFailedJobs(db.pool, { tsak: mailTask.name } as never),
    path: 'options.tsak',
    shows: `"${mailTask.name}"`,
  },
  {
    name: 'stuckWorkflows',
    call: () => stuckWorkflows(db.pool, { olderThan: 60_000 } as never),
    path: 'options.olderThan',
    shows: 'got 60000',
  },
  {
    name: 'moneyInLimbo',
    call: () => moneyInLimbo(db.pool, { sla: 1_000 } as never),
    path: 'options.sla',
    shows: 'got 1000',
  },
  {
    name: 'reconcile',
    call: () => reconcile(db.pool, { ful: true, logger: quiet } as never),
    path: 'options.ful',
    shows: 'got true',
    writes: 'ledgerbox.reconciliation_runs',
  },
  {
    name: 'importStatement',
    call: () => importStatement(db.pool, { csv: statementCsv, source: 'bank:test', fileName: 'january.csv', format: 'csv' } as never),
    path: 'statement.format',
    shows: '"csv"',
    writes: 'ledgerbox.statements',
  },
  {
    name: 'recordAlert',
    call: () => recordAlert(db.pool, { severity: 'warning', kind: 'payout_failed', message: 'payout p-1 failed', dedupKey: 'payout:p-1' } as never),
    path: 'alert.dedupKey',
    shows: '"payout:p-1"',
    writes: 'ledgerbox.alerts',
  },
  {
    name: 'deliverAlerts',
    call: () => deliverAlerts(db.pool, { logger: quiet, webhookTimeoutMs: 100 } as never),
    path: 'options.webhookTimeoutMs',
    shows: 'got 100',
    writes: 'ledgerbox.alert_deliveries',
  },
  {
    name: 'closeInvestigation',
    call: () => closeInvestigation(db.pool, { id: investigation.id, resolution: 'drift explained', closed_by: 'ops@example.com' } as never),
    path: 'close.closed_by',
    shows: '"ops@example.com"',
    writes: 'ledgerbox.investigations',
  },
  {
    name: 'listOpenInvestigations',
    call: () => listOpenInvestigations(db.pool, { limt: 5 } as never),
    path: 'options.limt',
    shows: 'got 5',
  },
];

/** The call is invalid_input naming `expected.path` and showing `expected.shows`. */
async function assertRefused(call: () => unknown, expected: { name: string; path: string; shows: string }): Promise<InvalidInputError> {
  const error = await (async () => call())().then(
    () => assert.fail(`${expected.name}: accepted the unknown option \`${expected.path}\``),
    (error: unknown) => error,
  );
  assert.ok(error instanceof InvalidInputError, `${expected.name}: expected InvalidInputError, got ${String(error)}`);
  assert.equal(error.code, 'invalid_input', `${expected.name}: ${error.message}`);
  assert.equal(error.path.join('.'), expected.path, `${expected.name}: ${error.message}`);
  assert.equal(error.details.path, expected.path, expected.name);
  assert.ok(error.message.includes(`\`${expected.path}\``), `${expected.name}: the message names \`${expected.path}\`: ${error.message}`);
  assert.ok(error.message.includes('unknown option'), `${expected.name}: the message says it is an unknown option: ${error.message}`);
  assert.ok(error.message.includes(expected.shows), `${expected.name}: the message shows ${expected.shows}: ${error.message}`);
  return error;
}

for (const { name, call, path, shows, writes } of cases) {
  test(`${name} refuses the unknown option \`${path}\` and writes nothing`, async () => {
    const before = await snapshot();
    const rowsBefore = writes === undefined ? undefined : await countRows(writes);
    await assertRefused(call, { name, path, shows });
    if (writes !== undefined) assert.equal(await countRows(writes), rowsBefore, `${name}: no row added to ${writes}`);
    assert.deepEqual(await snapshot(), before, `${name}: nothing was written`);
  });
}

test('the message lists the options the object does take, so a misspelling is easy to spot', async () => {
  const error = await assertRefused(() => createAccount(db.pool, { key: 'erin:USD', currency: 'USD', allownegative: true } as never), {
    name: 'createAccount',
    path: 'account.allownegative',
    shows: 'got true',
  });
  assert.ok(error.message.includes('key, currency, allowNegative, clearing, metadata'), error.message);
  const money = await assertRefused(() => createHold(db.pool, { key: 'hold:curency', from: 'alice:USD', to: 'bob:USD', amount: { amount: 1n, curency: 'USD' } } as never), {
    name: 'createHold',
    path: 'hold.amount.curency',
    shows: '"USD"',
  });
  assert.ok(money.message.includes('amount, currency'), money.message);
});

test('the text of an unknown option next to a credential is not shown: a misspelt credential is a credential', async () => {
  const webhook = `https://hooks.example.com/services/T000/B000/${secret}`;
  const delivery = await assertRefused(() => deliverAlerts(db.pool, { logger: quiet, oncallWebhookURL: webhook } as never), {
    name: 'deliverAlerts',
    path: 'options.oncallWebhookURL',
    shows: '(not shown',
  });
  assert.ok(!JSON.stringify({ message: delivery.message, details: delivery.details, value: delivery.value }).includes(secret), delivery.message);

  const blank = await emptyDatabase();
  const migration = await assertRefused(() => migrate({ connectionString: blank.url, connectionstring: `postgres://postgres:${secret}@127.0.0.1/x` } as never), {
    name: 'migrate',
    path: 'options.connectionstring',
    shows: '(not shown',
  });
  assert.ok(!JSON.stringify({ message: migration.message, details: migration.details, value: migration.value }).includes(secret), migration.message);
});

async function emptyDatabase(): Promise<{ url: string; pool: pg.Pool }> {
  const name = `ledgerbox_unknown_options_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const pool = new pg.Pool({ connectionString: databaseUrl(name), max: 2 });
  after(async () => {
    await pool.end();
    await dropDatabase(name);
  });
  return { url: databaseUrl(name), pool };
}

test('migrate refuses an unknown option before it touches the database: an empty database stays empty', async () => {
  const blank = await emptyDatabase();
  const schemas = async () =>
    (await blank.pool.query<{ n: number }>(`select count(*)::int as n from pg_namespace where nspname in ('ledgerbox', 'graphile_worker')`)).rows[0]!.n;
  await assertRefused(() => migrate({ connectionString: blank.url, dryRun: true } as never), { name: 'migrate', path: 'options.dryRun', shows: 'got true' });
  // text beside a credential is not shown (it may be a misspelt one), but the option is still named
  await assertRefused(() => migrate({ connectionString: blank.url, loger: 'debug' } as never), { name: 'migrate', path: 'options.loger', shows: '(not shown' });
  // a misspelt connection string is named as such, not "needs `connectionString` or `pgPool`"
  await assertRefused(() => migrate({ conectionString: blank.url } as never), { name: 'migrate', path: 'options.conectionString', shows: '(not shown' });
  assert.equal(await schemas(), 0, 'migrate created nothing');
  assert.deepEqual(await snapshot(blank.pool), {});
});

test('a logger is checked by its shape, not its keys: a pino logger is taken, anything else refused naming `options.logger`', async () => {
  const blank = await emptyDatabase();
  for (const [name, call] of [
    ['migrate', () => migrate({ connectionString: blank.url, logger: 'debug' } as never)],
    ['reconcile', () => reconcile(db.pool, { logger: { info: () => undefined } } as never)],
    ['deliverAlerts', () => deliverAlerts(db.pool, { logger: console } as never)],
  ] as const) {
    const runs = await countRows('ledgerbox.reconciliation_runs');
    const error = await (async () => call())().then(
      () => assert.fail(`${name} took a logger that is not one`),
      (error: unknown) => error,
    );
    assert.ok(error instanceof InvalidInputError, `${name}: ${String(error)}`);
    assert.equal(error.path.join('.'), 'options.logger', `${name}: ${error.message}`);
    assert.ok(error.message.includes('`options.logger`'), error.message);
    assert.equal(await countRows('ledgerbox.reconciliation_runs'), runs);
  }
  // and a real one (a pino child, with its own bindings and methods) is taken as it is
  const migrated = await migrate({ connectionString: blank.url, logger: quiet.child({ test: 'unknown-options' }) });
  assert.ok(migrated.applied.length > 0, 'migrated with a pino child logger');
});
