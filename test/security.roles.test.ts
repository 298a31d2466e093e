// The database's own enforcement: what the application role and the reporting role may do,
// and the PostgreSQL error each refusal gives. Every statement runs under `set local role`,
// exactly as a login role that is a member of the role would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { object, string } from 'superstruct';
import type pg from 'pg';
import { createAccount, createHold, defineTask, enqueue, getBalance, postHold, postTransfer, reconcile, recordAlert } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { minor, usd } from './support/money.ts';
import { run } from './support/processes.ts';

const db = await useTestDatabase();
await createAccount(db.pool, { key: 'world', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'kim', currency: 'USD' });
const seeded = await postTransfer(db.pool, { key: 'seed', legs: [{ from: 'world', to: 'kim', amount: usd(50_00n) }] });

type Role = 'ledgerbox_app' | 'ledgerbox_reporting';

/** Runs `work` as `role` in a transaction that is rolled back (or committed), on a connection of its own. */
async function as<T>(role: Role, work: (client: pg.PoolClient) => Promise<T>, outcome: 'commit' | 'rollback' = 'rollback'): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query(`set local role ${role}`);
    const result = await work(client);
    await client.query(outcome);
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

/** The statement fails for `role` with insufficient_privilege (42501) and this message. */
async function refused(role: Role, statement: string, message: RegExp): Promise<void> {
  await assert.rejects(as(role, (client) => client.query(statement)), (error: Error & { code?: string }) => {
    assert.equal(error.code, '42501', `${role}: ${statement}: ${error.message}`);
    assert.match(error.message, message);
    return true;
  });
}

async function relations(kinds: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ name: string }>(
    `select relname as name from pg_class where relnamespace = 'ledgerbox'::regnamespace and relkind = any($1::char[]) order by 1`,
    [kinds.split('')],
  );
  return rows.map((row) => row.name);
}

test('ledgerbox_app posts transfers and holds, enqueues jobs, records alerts and reads, all committed', async () => {
  const receipt = defineTask('security.receipt', object({ transferId: string() }));
  const hold = await as(
    'ledgerbox_app',
    async (client) => {
      await createAccount(client, { key: 'app:lee', currency: 'USD' });
      const transfer = await postTransfer(client, { key: 'app:pay', legs: [{ from: 'kim', to: 'app:lee', amount: usd(10_00n) }] });
      const held = await createHold(client, { key: 'app:hold', from: 'kim', to: 'app:lee', amount: usd(5_00n) });
      await postHold(client, { key: 'app:hold:post', holdId: held.id, amount: usd(2_00n) });
      await enqueue(client, receipt, { transferId: transfer.id });
      await recordAlert(client, { severity: 'info', kind: 'security.test', message: 'recorded by the app role' });
      const { rows } = await client.query(`select count(*)::int as n from ledgerbox.entries`);
      assert.ok(rows[0].n >= 2);
      await client.query(`select * from ledgerbox.holds`);
      await client.query(`select * from ledgerbox.failed_jobs`);
      return held;
    },
    'commit',
  );
  assert.equal(minor((await getBalance(db.pool, 'app:lee')).posted), 12_00n);
  assert.equal(minor((await getBalance(db.pool, 'kim')).pendingOutgoing), 0n, `hold ${hold.id} released`);
  const { rows } = await db.pool.query(
    `select count(*)::int as n from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where t.identifier = 'security.receipt'`,
  );
  assert.equal(rows[0].n, 1);
});

test('ledgerbox_app cannot update, delete or truncate ledger history, nor write a balance', async () => {
  for (const table of ['entries', 'transfers']) {
    await refused('ledgerbox_app', `update ledgerbox.${table} set created_at = now()`, new RegExp(`permission denied for table ${table}`));
    await refused('ledgerbox_app', `delete from ledgerbox.${table}`, new RegExp(`permission denied for table ${table}`));
    await refused('ledgerbox_app', `truncate ledgerbox.${table} cascade`, new RegExp(`permission denied for table ${table}`));
  }
  await refused('ledgerbox_app', `update ledgerbox.accounts set posted_balance = posted_balance + 100`, /permission denied for table accounts/);
  await refused('ledgerbox_app', `delete from ledgerbox.accounts`, /permission denied for table accounts/);
  await refused('ledgerbox_app', `update ledgerbox.currencies set exponent = 0`, /permission denied for table currencies/);

  // and no table of the schema grants it TRUNCATE, nor DELETE beyond its own heartbeat rows
  const { rows } = await db.pool.query<{ name: string; privilege: string }>(`
    select c.relname as name, p.privilege
    from pg_class c, unnest(array['TRUNCATE', 'DELETE', 'TRIGGER', 'REFERENCES']) p(privilege)
    where c.relnamespace = 'ledgerbox'::regnamespace and c.relkind in ('r', 'v', 'p')
      and has_table_privilege('ledgerbox_app', c.oid, p.privilege)
    order by 1, 2`);
  assert.deepEqual(rows, [{ name: 'workers', privilege: 'DELETE' }]);
  assert.equal(minor((await getBalance(db.pool, 'kim')).posted) > 0n, true);
  const { rows: seed } = await db.pool.query(`select count(*)::int as n from ledgerbox.entries where transfer_id = $1`, [seeded.id]);
  assert.equal(seed[0].n, 2);
});

test('ledgerbox_app cannot alter the schema: no CREATE, ALTER, DROP, nor switching triggers off', async () => {
  await refused('ledgerbox_app', `create table ledgerbox.shadow_entries (id int)`, /permission denied for schema ledgerbox/);
  await refused('ledgerbox_app', `alter table ledgerbox.entries disable trigger all`, /must be owner of table entries/);
  await refused('ledgerbox_app', `alter table ledgerbox.accounts drop constraint account_available_not_negative`, /must be owner of table accounts/);
  await refused('ledgerbox_app', `drop table ledgerbox.entries cascade`, /must be owner of table entries/);
  await refused('ledgerbox_app', `drop function ledgerbox.add_jobs(json, boolean)`, /must be owner of function/);
  await refused('ledgerbox_app', `create or replace function ledgerbox.transfers_check_and_track() returns trigger language plpgsql as $$ begin return null; end $$`, /permission denied for schema ledgerbox/);
  await refused('ledgerbox_app', `set session_replication_role = replica`, /permission denied to set parameter "session_replication_role"/);
});

test("ledgerbox_app reaches graphile-worker only through ledgerbox's functions, never its tables or its own functions", async () => {
  await refused('ledgerbox_app', `select * from graphile_worker._private_jobs`, /permission denied for schema graphile_worker/);
  await refused('ledgerbox_app', `delete from graphile_worker._private_jobs`, /permission denied for schema graphile_worker/);
  await refused('ledgerbox_app', `select graphile_worker.add_job('ledgerbox:step', '{}')`, /permission denied for schema graphile_worker/);
  await refused('ledgerbox_app', `update graphile_worker._private_jobs set locked_by = null`, /permission denied for schema graphile_worker/);
  const { rows } = await db.pool.query<{ name: string }>(`
    select p.oid::regprocedure::text as name from pg_proc p
    where p.pronamespace = 'ledgerbox'::regnamespace and p.prosecdef and has_function_privilege('ledgerbox_app', p.oid, 'EXECUTE')
    order by 1`);
  // the SECURITY DEFINER doors it has: add jobs (and read back the ids of those just added, in
  // order), enqueue a step, ask who holds a job, retire the job of a step whose result is
  // recorded (test/workflows.steps.test.ts), list stuck workflows with their pending jobs
  // (read-only); the trigger functions cannot be called outside a trigger
  assert.deepEqual(
    rows.map((row) => row.name).filter((name) => !['ledgerbox.entries_check_and_apply()', 'ledgerbox.transfers_check_and_track()'].includes(name)),
    ['ledgerbox.add_jobs(json,boolean)', 'ledgerbox.complete_job(bigint,text)', 'ledgerbox.enqueue_step(uuid,text)', 'ledgerbox.job_lock_holder(bigint)', 'ledgerbox.retire_step_job(bigint,text,uuid,text)', 'ledgerbox.stuck_workflows(interval)', 'ledgerbox.try_add_jobs(json,boolean)'],
  );
  // retiring deletes nothing that is not a finished step's job held by that worker
  await as('ledgerbox_app', async (client) => {
    const { rows: retired } = await client.query(`select ledgerbox.retire_step_job(j, 'anyone', gen_random_uuid(), 'step') as retired from generate_series(1, 50) j`);
    assert.equal(retired.length, 50);
    assert.ok(retired.every((row: { retired: boolean }) => row.retired === false));
  });
  await assert.rejects(as('ledgerbox_app', (client) => client.query(`select ledgerbox.transfers_check_and_track()`)), { code: '0A000', message: /trigger functions can only be called as triggers/ });
});

test('ledgerbox_reporting reads every table and view of the schema, including later migrations and tables added after it', async () => {
  const everything = await relations('rvm');
  assert.ok(everything.includes('entries') && everything.includes('failed_jobs') && everything.includes('holds'));
  await as('ledgerbox_reporting', async (client) => {
    for (const name of everything) await client.query(`select count(*) from ledgerbox.${JSON.stringify(name)}`);
    const { rows } = await client.query(`select posted_balance::text from ledgerbox.accounts where key = 'kim'`);
    assert.ok(BigInt(rows[0].posted_balance) > 0n);
    await client.query(`select * from ledgerbox.money_in_limbo()`);
  });
  // stuck_workflows() counts a workflow's jobs in graphile-worker's own table, which the role
  // does not reach itself: the function reads it for the role (SECURITY DEFINER, read-only)
  await as('ledgerbox_reporting', (client) => client.query(`select * from ledgerbox.stuck_workflows()`));
  await refused('ledgerbox_reporting', `select count(*) from graphile_worker._private_jobs`, /permission denied for schema graphile_worker/);
  // a table a later migration creates, as the owner that ran the migrations
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query(`create table ledgerbox.from_a_later_migration (id int)`);
    await client.query(`insert into ledgerbox.from_a_later_migration values (1)`);
    await client.query('set local role ledgerbox_reporting');
    const { rows } = await client.query(`select id from ledgerbox.from_a_later_migration`);
    assert.deepEqual(rows, [{ id: 1 }]);
  } finally {
    await client.query('rollback');
    client.release();
  }
});

test('ledgerbox_reporting changes nothing: no writes, no jobs, no DDL, no graphile-worker', async () => {
  await refused('ledgerbox_reporting', `insert into ledgerbox.accounts (key, currency) values ('sneaky', 'USD')`, /permission denied for table accounts/);
  await refused('ledgerbox_reporting', `insert into ledgerbox.transfers (key, kind) values ('sneaky', 'posted')`, /permission denied for table transfers/);
  await refused('ledgerbox_reporting', `update ledgerbox.accounts set metadata = '{}'`, /permission denied for table accounts/);
  await refused('ledgerbox_reporting', `delete from ledgerbox.alerts`, /permission denied for table alerts/);
  await refused('ledgerbox_reporting', `truncate ledgerbox.entries cascade`, /permission denied for table entries/);
  await refused('ledgerbox_reporting', `insert into ledgerbox.operator_actions (action, reason) values ('x', 'y')`, /permission denied for table operator_actions/);
  await refused('ledgerbox_reporting', `select ledgerbox.add_jobs('[]'::json)`, /permission denied for function add_jobs/);
  await refused('ledgerbox_reporting', `select ledgerbox.enqueue_step(gen_random_uuid(), 'settle')`, /permission denied for function enqueue_step/);
  await refused('ledgerbox_reporting', `select * from graphile_worker._private_jobs`, /permission denied for schema graphile_worker/);
  await refused('ledgerbox_reporting', `create table ledgerbox.notes (id int)`, /permission denied for schema ledgerbox/);
  // the library's writes fail the same way, with PostgreSQL's error
  await assert.rejects(
    as('ledgerbox_reporting', (client) => postTransfer(client, { key: 'reporting:pay', legs: [{ from: 'kim', to: 'world', amount: usd(1n) }] })),
    (error: Error & { code?: string; cause?: { code?: string } }) => {
      assert.equal(error.code ?? error.cause?.code, '42501', error.message);
      return true;
    },
  );
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.transfers where key like 'reporting:%' or key = 'sneaky'`);
  assert.equal(rows[0].n, 0);
  const { rows: privileges } = await db.pool.query(`
    select c.relname, p.privilege from pg_class c, unnest(array['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) p(privilege)
    where c.relnamespace = 'ledgerbox'::regnamespace and c.relkind in ('r', 'v', 'p') and has_table_privilege('ledgerbox_reporting', c.oid, p.privilege)`);
  assert.deepEqual(privileges, []);
});

test("an operator's psql session as ledgerbox_reporting runs the read-only sql/ files and is refused the recovery ones", async () => {
  const psql = (file: string, variables: string[] = []) =>
    run('psql', [db.connectionString, '-X', '-v', 'ON_ERROR_STOP=1', '--pset=pager=off', ...variables, '-f', file], { PGOPTIONS: '-c role=ledgerbox_reporting' });
  const reads: [string, string[]][] = [
    ['sql/failed_jobs.sql', []],
    ['sql/balance_drift.sql', []],
    ['sql/money_in_limbo.sql', []],
    ['sql/transfer.sql', ['-v', `key='seed'`]],
  ];
  for (const [file, variables] of reads) {
    const result = await psql(file, variables);
    assert.equal(result.code, 0, `${file}: ${result.stderr}`);
  }
  const refusal = await psql('sql/retry_task_jobs.sql', ['-v', 'task=security.receipt', '-v', 'reason=trying']);
  assert.notEqual(refusal.code, 0);
  assert.match(refusal.stderr, /permission denied/);
});

test('ledgerbox_app cannot rewrite a finished reconciliation run nor a closed investigation', async () => {
  const report = await reconcile(db.pool);
  const checkViolation = (constraint: string) => (error: Error & { code?: string; constraint?: string }) => {
    assert.equal(error.code, '23514', error.message);
    assert.equal(error.constraint, constraint);
    return true;
  };
  await assert.rejects(
    as('ledgerbox_app', (client) => client.query(`update ledgerbox.reconciliation_runs set status = 'clean', headline = 'all fine' where id = $1`, [report.runId])),
    checkViolation('finished_run_is_history'),
  );
  await assert.rejects(as('ledgerbox_app', (client) => client.query(`update ledgerbox.reconciliation_runs set as_of = now() where id = $1`, [report.runId])), /permission denied for table reconciliation_runs/);
  // its report may still be stored, once
  await as('ledgerbox_app', (client) => client.query(`update ledgerbox.reconciliation_runs set report_subject = 's', report_text = 't', report_html = 'h' where id = $1`, [report.runId]), 'commit');
  await assert.rejects(
    as('ledgerbox_app', (client) => client.query(`update ledgerbox.reconciliation_runs set report_text = 'rewritten' where id = $1`, [report.runId])),
    checkViolation('finished_run_is_history'),
  );

  await recordAlert(db.pool, { severity: 'warning', kind: 'roles_test', message: 'needs a look', dedupeKey: 'roles:closed' });
  const { rows } = await db.pool.query(
    `insert into ledgerbox.investigations (dedupe_key, severity, title) values ('roles:closed', 'warning', 'needs a look') returning id::text as id`,
  );
  const id: string = rows[0].id;
  await as('ledgerbox_app', (client) => client.query(`update ledgerbox.investigations set closed_at = now(), resolution = 'done' where id = $1`, [id]), 'commit');
  await assert.rejects(
    as('ledgerbox_app', (client) => client.query(`update ledgerbox.investigations set resolution = 'never happened' where id = $1`, [id])),
    checkViolation('closed_investigation_is_history'),
  );
  await assert.rejects(as('ledgerbox_app', (client) => client.query(`update ledgerbox.investigations set title = 'other' where id = $1`, [id])), /permission denied for table investigations/);
});
