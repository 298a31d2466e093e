/**
 * The step engine's two ways of finishing a step (src/workflows/run-step.ts): a step declared
 * pure (it touches no table) is recorded in one statement that checks, under the workflow's lock, that
 * nothing changed since the step read it; any other step runs in a transaction. These tests
 * drive runStep directly, race it on purpose, and read back what was written.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { pino } from 'pino';
import { sql } from '@databases/pg';
import { autocommitSession, type Session } from '../src/db/handle.ts';
import { registryOf, type WorkflowDefinition } from '../src/workflows/definition.ts';
import { JobTakenOver, runStep, type StepEnvironment, type StepJob } from '../src/workflows/run-step.ts';
import { enqueueStep, stepJobKey } from '../src/workflows/step-job.ts';
import { insertWorkflow } from '../src/workflows/workflow-queries.ts';
import { useTestDatabase } from './support/database.ts';

const db = await useTestDatabase();
await db.pool.query('create table step_probe (workflow_id uuid not null, note text not null)');

/** Counts what runStep asks of the pool: one-off statements and checked-out connections. */
/**
 * Counts the statements run on a pool (by pool.query, or on a client checked out for one
 * statement) and the transactions begun on it: ledgerbox checks a client out for each
 * statement too, so that its connection failures are told from the statement's.
 */
function countingPool(pool: pg.Pool): { handle: pg.Pool; statements: () => number; connections: () => number } {
  let statements = 0;
  let transactions = 0;
  const countedClient = (client: pg.PoolClient) =>
    new Proxy(client, {
      get(target, property, receiver) {
        if (property === 'query') {
          return (...args: unknown[]) => {
            const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string } | undefined)?.text ?? '';
            if (/^\s*begin\b/i.test(text)) transactions += 1;
            else if (!/^\s*(commit|rollback)\b/i.test(text)) statements += 1;
            return (target.query as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const handle = new Proxy(pool, {
    get(target, property, receiver) {
      if (property === 'query') return (...args: unknown[]) => ((statements += 1), (target.query as (...a: unknown[]) => unknown)(...args));
      if (property === 'connect') return async () => countedClient(await target.connect());
      return Reflect.get(target, property, receiver);
    },
  });
  return { handle, statements: () => statements, connections: () => transactions };
}

function environment(handle: pg.Pool, definition: WorkflowDefinition<Record<string, never>>): StepEnvironment<Record<string, never>> {
  return {
    db: handle,
    workflows: registryOf([definition]),
    providers: {},
    retry: { base_ms: 1, max_ms: 10 },
    providerTimeout_ms: 1_000,
    compensationDelay_ms: 0,
    logger: pino({ level: 'silent' }),
  };
}

let serial = 0;
async function newWorkflow(kind: string, firstStep: string): Promise<string> {
  serial += 1;
  const workflow = await insertWorkflow(autocommitSession(db.pool), { kind, key: `steps:${serial}`, firstStep, subject: {} });
  return workflow!.id;
}

async function written(workflowId: string) {
  const results = await db.pool.query<{ step: string; result: unknown }>('select step, result from ledgerbox.step_results where workflow_id = $1 order by recorded_at, step', [workflowId]);
  const attempts = await db.pool.query<{ step: string; outcome: string }>('select step, outcome from ledgerbox.step_attempts where workflow_id = $1 order by id', [workflowId]);
  const [workflow] = (await db.pool.query<{ status: string; current_step: string }>('select status, current_step from ledgerbox.workflows where id = $1', [workflowId])).rows;
  const jobs = await db.pool.query<{ key: string }>(`select key from graphile_worker._private_jobs where key like 'ledgerbox:step:' || $1 || ':%' order by key`, [workflowId]);
  const probes = await db.pool.query<{ note: string }>('select note from step_probe where workflow_id = $1', [workflowId]);
  return {
    results: results.rows.map(({ step, result }) => ({ step, result })),
    attempts: attempts.rows.map(({ step, outcome }) => `${step}:${outcome}`),
    workflow: workflow && `${workflow.status}@${workflow.current_step}`,
    jobs: jobs.rows.map(({ key }) => key.slice(key.lastIndexOf(':') + 1)),
    probes: probes.rows.map(({ note }) => note),
  };
}

const noJob: StepJob = { id: '0', workerId: null };

test('a step that touches no table is finished in one statement: the read before it and one more, no transaction', async () => {
  let runs = 0;
  const pure: WorkflowDefinition<Record<string, never>> = {
    kind: 'pure',
    firstStep: 'decide',
    steps: {
      decide: {
        pure: true,
        // a job of the host's, added with the step's result in the same statement
        run: async (_session, { workflow }) => (
          (runs += 1),
          { result: { decided: 'yes' }, next: 'record', jobs: [{ task: 'host.decided', payload: { workflowId: workflow.id }, queue: null, runAt: null, maxAttempts: 3, jobKey: `decided:${workflow.id}`, priority: null }] }
        ),
      },
      record: { run: async (session: Session, { workflow }) => (await session.query(sql`insert into step_probe values (${workflow.id}::uuid, 'recorded')`), { result: null, done: true }) },
    },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  const workflowId = await newWorkflow(pure.kind, 'decide');
  const counted = countingPool(db.pool);
  await runStep(environment(counted.handle, pure), { workflowId, step: 'decide' }, noJob);
  assert.equal(runs, 1);
  assert.equal(counted.statements(), 2, 'the step context read and finish_step');
  assert.equal(counted.connections(), 0, 'no transaction');
  assert.deepEqual(await written(workflowId), {
    results: [{ step: 'decide', result: { decided: 'yes' } }],
    attempts: ['decide:succeeded'],
    workflow: 'running@record',
    jobs: ['record'],
    probes: [],
  });
  const hostJobs = await db.pool.query<{ task: string; payload: unknown; max_attempts: number }>(
    `select t.identifier as task, j.payload, j.max_attempts from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where j.key = $1`,
    [`decided:${workflowId}`],
  );
  assert.deepEqual(hostJobs.rows, [{ task: 'host.decided', payload: { workflowId }, max_attempts: 3 }]);

  // the next step writes, so it runs in a transaction, and its write commits with its result
  const before = { statements: counted.statements(), connections: counted.connections() };
  await runStep(environment(counted.handle, pure), { workflowId, step: 'record' }, noJob);
  assert.equal(counted.connections() - before.connections, 1, 'one transaction');
  assert.deepEqual(await written(workflowId), {
    results: [
      { step: 'decide', result: { decided: 'yes' } },
      { step: 'record', result: null },
    ],
    attempts: ['decide:succeeded', 'record:succeeded'],
    workflow: 'completed@record',
    jobs: ['record'],
    probes: ['recorded'],
  });
});

test('a step that touches no table, raced by a second delivery that finishes it first: written once, the late one recorded as already done', async () => {
  let runs = 0;
  let env!: StepEnvironment<Record<string, never>>;
  const raced: WorkflowDefinition<Record<string, never>> = {
    kind: 'raced',
    firstStep: 'decide',
    steps: {
      decide: {
        pure: true,
        async run(_session, { workflow }) {
          runs += 1;
          // the first delivery pauses here while a second delivery of the same job runs whole
          if (runs === 1) await runStep(env, { workflowId: workflow.id, step: 'decide' }, noJob);
          return { result: { run: runs }, next: 'after' };
        },
      },
      after: { run: async () => ({ result: null, done: true }) },
    },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  env = environment(db.pool, raced);
  const workflowId = await newWorkflow(raced.kind, 'decide');
  await runStep(env, { workflowId, step: 'decide' }, noJob);
  assert.equal(runs, 2, 'the late delivery does not run the step again under the lock: it finds the result');
  assert.deepEqual(await written(workflowId), {
    results: [{ step: 'decide', result: { run: 2 } }],
    attempts: ['decide:succeeded', 'decide:already_done'],
    workflow: 'running@after',
    jobs: ['after'],
    probes: [],
  });
});

test('a step that touches no table, whose workflow changed after it was read: run again under the lock, finished once', async () => {
  let runs = 0;
  const changed: WorkflowDefinition<Record<string, never>> = {
    kind: 'changed',
    firstStep: 'decide',
    steps: {
      decide: {
        pure: true,
        async run(_session, { workflow }) {
          runs += 1;
          // someone else touches the workflow row between the read and the finish (an operator's
          // update, a resume): the inputs may be stale, so this attempt must not be recorded
          if (runs === 1) await db.pool.query(`update ledgerbox.workflows set updated_at = now() where id = $1`, [workflow.id]);
          return { result: { run: runs }, next: 'after' };
        },
      },
      after: { run: async () => ({ result: null, done: true }) },
    },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  const workflowId = await newWorkflow(changed.kind, 'decide');
  await runStep(environment(db.pool, changed), { workflowId, step: 'decide' }, noJob);
  assert.equal(runs, 2);
  assert.deepEqual(await written(workflowId), {
    results: [{ step: 'decide', result: { run: 2 } }],
    attempts: ['decide:succeeded'],
    workflow: 'running@after',
    jobs: ['after'],
    probes: [],
  });
});

test('a database step runs once, in a transaction, and its write is kept; a pure step that queries fails its attempt and writes nothing', async () => {
  let runs = 0;
  const steps: WorkflowDefinition<Record<string, never>> = {
    kind: 'declared',
    firstStep: 'write',
    steps: {
      write: {
        async run(session, { workflow }) {
          runs += 1;
          await session.query(sql`insert into step_probe values (${workflow.id}::uuid, 'written')`);
          return { result: null, next: 'sneaky' };
        },
      },
      sneaky: {
        // says it touches no table, and queries: refused, never half-finished without its write
        pure: true,
        async run(session, { workflow }) {
          await session.query(sql`insert into step_probe values (${workflow.id}::uuid, 'sneaky')`);
          return { result: null, done: true };
        },
      },
    },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  const workflowId = await newWorkflow(steps.kind, 'write');
  await runStep(environment(db.pool, steps), { workflowId, step: 'write' }, noJob);
  assert.equal(runs, 1, 'no probing run before the real one');
  await runStep(environment(db.pool, steps), { workflowId, step: 'sneaky' }, noJob);
  assert.deepEqual(await written(workflowId), {
    results: [{ step: 'write', result: null }],
    attempts: ['write:succeeded', 'sneaky:failed'],
    workflow: 'running@sneaky',
    jobs: ['sneaky'],
    probes: ['written'],
  });
  const [attempt] = (await db.pool.query<{ error: string }>(`select error from ledgerbox.step_attempts where workflow_id = $1 and step = 'sneaky'`, [workflowId])).rows;
  assert.match(attempt!.error, /\[invalid_input\] .*pure step/);
});

test('a job another worker holds now is not finished by the worker that lost it, with or without a transaction, and its new holder finishes it', async () => {
  const fenced: WorkflowDefinition<Record<string, never>> = {
    kind: 'fenced',
    firstStep: 'pure',
    steps: {
      pure: { pure: true, run: async () => ({ result: null, next: 'writes' }) },
      writes: { run: async (session, { workflow }) => (await session.query(sql`insert into step_probe values (${workflow.id}::uuid, 'fenced')`), { result: null, done: true }) },
    },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  for (const step of ['pure', 'writes']) {
    const workflowId = await newWorkflow(fenced.kind, step);
    await enqueueStep(autocommitSession(db.pool), workflowId, step);
    // the job was handed to worker-b after worker-a was taken for dead; worker-a still runs it
    const { rows } = await db.pool.query<{ id: string }>(
      `update graphile_worker._private_jobs set locked_by = 'worker-b', locked_at = now() where key = $1 returning id::text`,
      [stepJobKey(workflowId, step)],
    );
    const jobId = rows[0]!.id;
    // worker-a stands down by rejecting, so graphile-worker fails the job rather than completing
    // it: its failure is guarded by the holder, where completing would delete worker-b's job
    await assert.rejects(runStep(environment(db.pool, fenced), { workflowId, step }, { id: jobId, workerId: 'worker-a' }), JobTakenOver);
    assert.deepEqual(await written(workflowId), { results: [], attempts: [], workflow: `running@${step}`, jobs: [step], probes: [] }, step);
    // what graphile-worker does with a rejected job, as worker-a: nothing, the job is worker-b's
    const failed = await db.pool.query(`update graphile_worker._private_jobs set locked_by = null, last_error = 'stood down' where id = $1 and locked_by = 'worker-a'`, [jobId]);
    assert.equal(failed.rowCount, 0);
    // worker-b still holds its job and finishes the step
    await runStep(environment(db.pool, fenced), { workflowId, step }, { id: jobId, workerId: 'worker-b' });
    const after = await written(workflowId);
    assert.deepEqual(after.results.map((row) => row.step), [step], step);
    assert.deepEqual(after.attempts, [`${step}:succeeded`], step);
    assert.ok(!after.jobs.includes(step), `${step}: its job went with its result`);
  }
});

test("a finished step's job is deleted with its result, so it cannot be delivered again; an unfinished one's job is left alone", async () => {
  const retiring: WorkflowDefinition<Record<string, never>> = {
    kind: 'retiring',
    firstStep: 'pure',
    steps: {
      pure: { pure: true, run: async () => ({ result: null, next: 'writes' }) },
      writes: { run: async (session, { workflow }) => (await session.query(sql`insert into step_probe values (${workflow.id}::uuid, 'retired')`), { result: null, done: true }) },
    },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  const workflowId = await newWorkflow(retiring.kind, 'pure');
  const hold = async (step: string) => {
    const { rows } = await db.pool.query<{ id: string }>(
      `update graphile_worker._private_jobs set locked_by = 'worker-a', locked_at = now() where key = $1 returning id::text`,
      [stepJobKey(workflowId, step)],
    );
    return rows[0]!.id;
  };
  await enqueueStep(autocommitSession(db.pool), workflowId, 'pure');
  // a step without a result yet: its job is not retired, whoever asks
  const pureJob = await hold('pure');
  const early = await db.pool.query<{ retired: boolean }>(`select ledgerbox.retire_step_job($1, 'worker-a', $2, 'pure') as retired`, [pureJob, workflowId]);
  assert.equal(early.rows[0]!.retired, false);

  // finished without a transaction: its job goes with it; the next step's job is there
  await runStep(environment(db.pool, retiring), { workflowId, step: 'pure' }, { id: pureJob, workerId: 'worker-a' });
  assert.deepEqual((await written(workflowId)).jobs, ['writes']);
  // finished in a transaction: the same
  await runStep(environment(db.pool, retiring), { workflowId, step: 'writes' }, { id: await hold('writes'), workerId: 'worker-a' });
  assert.deepEqual(await written(workflowId), {
    results: [
      { step: 'pure', result: null },
      { step: 'writes', result: null },
    ],
    attempts: ['pure:succeeded', 'writes:succeeded'],
    workflow: 'completed@writes',
    jobs: [],
    probes: ['retired'],
  });
});

// The step record in the database (migration lean_steps): a step's result lives on the attempt
// that recorded it, and ledgerbox.step_results is a view of those. These hold for any writer,
// raw SQL included, not only for runStep.

const attemptColumns = `workflow_id, step, attempt, max_attempts, outcome, started_at`;

test('a second result for the same workflow step is refused by the database, from raw SQL and from finish_step, and nothing of it is written', async () => {
  const workflowId = await newWorkflow('raw', 'first');
  await db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}, result) values ($1, 'first', 1, 3, 'succeeded', now(), '{"n": 1}')`, [workflowId]);
  await assert.rejects(
    db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}, result) values ($1, 'first', 2, 3, 'succeeded', now(), '{"n": 2}')`, [workflowId]),
    { code: '23505', constraint: 'step_attempts_one_result' },
  );
  // finish_step for a step that has its result: refused whole, the workflow's state untouched
  await assert.rejects(
    db.pool.query(`select ledgerbox.finish_step($1, 'first', null, null, null, 3, now(), '{"n": 3}', 'completed', 'first', null)`, [workflowId]),
    { code: '23505', constraint: 'step_attempts_one_result' },
  );
  assert.deepEqual(await written(workflowId), { results: [{ step: 'first', result: { n: 1 } }], attempts: ['first:succeeded'], workflow: 'running@first', jobs: [], probes: [] });
  // attempts without a result (a failure, a duplicate delivery) are as many as happen
  await db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}, error) values ($1, 'first', 1, 3, 'failed', now(), 'boom')`, [workflowId]);
  await db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}) values ($1, 'first', 1, 3, 'already_done', now())`, [workflowId]);
  assert.deepEqual((await written(workflowId)).attempts, ['first:succeeded', 'first:failed', 'first:already_done']);
});

test('a result belongs to a succeeded attempt, and a succeeded attempt has its result', async () => {
  const workflowId = await newWorkflow('raw', 'first');
  await assert.rejects(
    db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}) values ($1, 'first', 1, 3, 'succeeded', now())`, [workflowId]),
    { code: '23514', constraint: 'step_attempt_result_when_succeeded' },
  );
  await assert.rejects(
    db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}, error, result) values ($1, 'first', 1, 3, 'failed', now(), 'boom', 'null')`, [workflowId]),
    { code: '23514', constraint: 'step_attempt_result_when_succeeded' },
  );
  // an attempt of no workflow: the foreign key stays
  await assert.rejects(
    db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}, result) values (gen_random_uuid(), 'first', 1, 3, 'succeeded', now(), 'null')`),
    { code: '23503' },
  );
  // a JSON null is a result (a step that decided nothing worth keeping), not a missing one
  await db.pool.query(`insert into ledgerbox.step_attempts (${attemptColumns}, result) values ($1, 'first', 1, 3, 'succeeded', now(), 'null')`, [workflowId]);
  assert.deepEqual((await written(workflowId)).results, [{ step: 'first', result: null }]);
});

test('ledgerbox.step_results reads as the table did (same columns, one row per recorded result) and is append-only through the view too', async () => {
  const columns = await db.pool.query<{ column_name: string; data_type: string }>(
    `select column_name, data_type from information_schema.columns where table_schema = 'ledgerbox' and table_name = 'step_results' order by ordinal_position`,
  );
  assert.deepEqual(columns.rows, [
    { column_name: 'workflow_id', data_type: 'uuid' },
    { column_name: 'step', data_type: 'text' },
    { column_name: 'result', data_type: 'jsonb' },
    { column_name: 'recorded_at', data_type: 'timestamp with time zone' },
  ]);
  const declining: WorkflowDefinition<Record<string, never>> = {
    kind: 'declining',
    firstStep: 'check',
    steps: {
      check: { pure: true, run: async () => ({ result: { checked: true }, next: 'decide' }) },
      // a business outcome: its result is recorded, and the workflow fails towards compensation
      decide: { run: async () => ({ result: { declined: 'limit' }, fail: 'over the limit' }) },
    },
    compensate: { run: async () => ({ result: { undone: true }, done: true }) },
    maxAttempts: 3,
  };
  const workflowId = await newWorkflow(declining.kind, 'check');
  await runStep(environment(db.pool, declining), { workflowId, step: 'check' }, noJob);
  await runStep(environment(db.pool, declining), { workflowId, step: 'decide' }, noJob);
  await runStep(environment(db.pool, declining), { workflowId, step: 'compensate' }, noJob);
  // what a psql user reads: every step's result once, recorded when its attempt finished
  const { rows } = await db.pool.query(
    `select r.step, r.result, r.recorded_at = a.finished_at as at_its_attempt
     from ledgerbox.step_results r join ledgerbox.step_attempts a on a.workflow_id = r.workflow_id and a.step = r.step and a.outcome = 'succeeded'
     where r.workflow_id = $1 order by r.recorded_at, r.step`,
    [workflowId],
  );
  assert.deepEqual(rows, [
    { step: 'check', result: { checked: true }, at_its_attempt: true },
    { step: 'decide', result: { declined: 'limit' }, at_its_attempt: true },
    { step: 'compensate', result: { undone: true }, at_its_attempt: true },
  ]);
  assert.equal((await written(workflowId)).workflow, 'compensated@compensate');

  await assert.rejects(db.pool.query(`update ledgerbox.step_results set result = '{}' where workflow_id = $1`, [workflowId]), { code: '42501', message: /append-only: UPDATE refused/ });
  await assert.rejects(db.pool.query(`delete from ledgerbox.step_results where workflow_id = $1`, [workflowId]), { code: '42501', message: /append-only: DELETE refused/ });
  await assert.rejects(
    db.pool.query(`insert into ledgerbox.step_results (workflow_id, step, result) values ($1, 'extra', '{}')`, [workflowId]),
    { code: '42501', message: /written with its attempt/ },
  );
  assert.equal((await written(workflowId)).results.length, 3);
});

test('a pure step that declines runs once: its outcome is written in the transaction that fails the workflow, not decided again there', async () => {
  let runs = 0;
  const declines: WorkflowDefinition<Record<string, never>> = {
    kind: 'declines',
    firstStep: 'decide',
    steps: { decide: { pure: true, run: async () => ((runs += 1), { result: { declined: true }, fail: 'declined by the rules' }) } },
    compensate: { run: async () => ({ result: null, done: true }) },
    maxAttempts: 3,
  };
  const workflowId = await newWorkflow(declines.kind, 'decide');
  await runStep(environment(db.pool, declines), { workflowId, step: 'decide' }, noJob);
  assert.equal(runs, 1);
  assert.deepEqual(await written(workflowId), {
    results: [{ step: 'decide', result: { declined: true } }],
    attempts: ['decide:succeeded'],
    workflow: 'failed@compensate',
    jobs: ['compensate'],
    probes: [],
  });
});
