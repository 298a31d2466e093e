// Property-based tests of the job payload contracts (ledgerbox's own tasks, the workflow step,
// the host's), the outbox, alerts, workflows and operator recovery: every invalid input is a
// LedgerboxError with its code and writes nothing; every valid payload is stored exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { array, boolean, integer, object, optional, string } from 'superstruct';
import {
  cancelWorkflow,
  closeInvestigation,
  createAccount,
  defineTask,
  enqueue,
  enqueueMany,
  fanOut,
  getExchange,
  listFailedJobs,
  listOpenInvestigations,
  moneyInLimbo,
  postTransfer,
  recordAlert,
  reconcile,
  resumeWorkflow,
  retryJob,
  retryTaskJobs,
  startExchange,
  stuckWorkflows,
  workflowTimeline,
  type ErrorCode,
  type TaskDefinition,
} from '../src/index.ts';
import { FakeComplianceProvider, FakeFxRateProvider } from '../src/testing/index.ts';
import { deliverAlertsTask } from '../src/alerts/deliver-task.ts';
import { checkPayload } from '../src/jobs/tasks.ts';
import { reconcileTask, sendReportTask } from '../src/reconcile/tasks.ts';
import { expireHoldsTask } from '../src/worker/runner.ts';
import { exchangeSettled, exchangeWorkflowFor } from '../src/workflows/exchange/exchange.ts';
import { registryOf } from '../src/workflows/definition.ts';
import { compiledWorkflow } from '../src/workflows/define.ts';
import { runStep } from '../src/workflows/run-step.ts';
import { stepTask } from '../src/workflows/step-job.ts';
import { useTestDatabase } from './support/database.ts';
import { anyText, assertRefused, databaseSnapshot, fuzzParameters, invalidKeyText, invalidMetadata, notAString, unstorableText, validKeyText, validMetadata } from './support/fuzz.ts';
import { usd } from './support/money.ts';

const db = await useTestDatabase();
await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'sam:USD', currency: 'USD' });
await createAccount(db.pool, { key: 'sam:EUR', currency: 'EUR' });
await postTransfer(db.pool, { key: 'fund', legs: [{ from: 'world:USD', to: 'sam:USD', amount: usd(1_000_00n) }] });
const exchange = await startExchange(db.pool, { key: 'exchange:1', from: 'sam:USD', to: 'sam:EUR', amount: usd(10_00n) });

type Case = { what: string; code: ErrorCode; attempt: () => Promise<unknown> | unknown };
const label = (found: Case) => Object.assign(found, { [fc.toStringMethod]: () => `${found.what} (expects ${found.code})` });

async function assertAllRefused(cases: fc.Arbitrary<Case>, numRuns: number): Promise<void> {
  const before = await databaseSnapshot(db.pool);
  await fc.assert(
    fc.asyncProperty(cases.map(label), async ({ what, code, attempt }) => {
      await assertRefused(attempt, code, what);
    }),
    fuzzParameters(numRuns),
  );
  assert.deepEqual(await databaseSnapshot(db.pool), before, 'refused calls wrote nothing');
}

const uuidText = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const notUuid = fc.oneof(notAString, anyText.filter((text) => !uuidText.test(text)));
const identifier = fc.oneof(anyText, validKeyText).filter((text) => text.length <= 200);

/** Every task ledgerbox defines, with a generator of payloads its contract accepts. */
const ownTasks: { task: TaskDefinition<any>; valid: fc.Arbitrary<Record<string, unknown>> }[] = [
  { task: stepTask, valid: fc.record({ workflowId: fc.uuid(), step: identifier }) },
  { task: exchangeSettled, valid: fc.record({ exchangeId: fc.uuid() }) },
  { task: sendReportTask, valid: fc.record({ runId: fc.bigInt({ min: 1n, max: 2n ** 62n }).map(String) }) },
  { task: reconcileTask, valid: fc.constant({}) },
  { task: expireHoldsTask, valid: fc.constant({}) },
  { task: deliverAlertsTask, valid: fc.constant({}) },
];

/** Payload values no job may carry: state instead of identifiers, or what JSON in PostgreSQL cannot hold. */
const forbiddenValue = fc.oneof(
  fc.double().filter((value) => !Number.isSafeInteger(value)),
  fc.bigInt(),
  fc.constant(null),
  fc.constant(undefined).map(() => ({ nested: { amount: '10.00' } })),
  fc.string({ minLength: 201, maxLength: 300 }),
  fc.array(fc.string({ maxLength: 3 }), { minLength: 1_001, maxLength: 1_001 }).map((items) => items),
  fc.date(),
  unstorableText,
);

test("every ledgerbox task's payload contract, and the identifiers-only rule, refuse bad payloads (checked when enqueued and again when run) and write nothing", async () => {
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc.tuple(fc.constantFrom(...ownTasks), fc.oneof(notAString.filter((value) => value === null || typeof value !== 'object' || ![Object.prototype, null].includes(Object.getPrototypeOf(value))), fc.array(fc.integer()))).map(([{ task }, payload]) => ({
      what: `${task.name} with a payload that is not an object`,
      code: 'invalid_input' as const,
      attempt: () => enqueue(db.pool, task, payload),
    })),
    fc.tuple(fc.constantFrom(...ownTasks), fc.string({ minLength: 1, maxLength: 10 }), forbiddenValue).chain(([{ task, valid }, field, value]) =>
      valid.map((payload) => ({
        what: `${task.name} carrying ${fc.stringify(value).slice(0, 60)} in \`${field}\``,
        code: 'invalid_input' as const,
        attempt: () => enqueue(db.pool, task, { ...payload, [field]: value }),
      })),
    ),
    fc.tuple(notUuid, identifier).map(([workflowId, step]) => ({
      what: 'a step job naming no workflow id',
      code: 'invalid_input' as const,
      attempt: () => checkPayload(stepTask, { workflowId, step }),
    })),
    fc.tuple(fc.uuid(), fc.oneof(fc.integer(), fc.boolean(), fc.constant(null))).map(([workflowId, step]) => ({
      what: 'a step job whose step is not a string',
      code: 'invalid_input' as const,
      attempt: () => enqueue(db.pool, stepTask, { workflowId, step } as never),
    })),
    notUuid.map((exchangeId) => ({ what: 'exchangeSettled without an exchange id', code: 'invalid_input' as const, attempt: () => enqueue(db.pool, exchangeSettled, { exchangeId } as never) })),
    fc.oneof(notAString, anyText.filter((text) => !/^\d+$/.test(text))).map((runId) => ({
      what: 'send_report with a run id that is not digits',
      code: 'invalid_input' as const,
      attempt: () => enqueue(db.pool, sendReportTask, { runId } as never),
    })),
    fc.oneof(notAString.filter((value) => typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date), fc.record({ ts: fc.integer() })).map((cron) => ({
      what: 'reconcile with a malformed _cron',
      code: 'invalid_input' as const,
      attempt: () => checkPayload(reconcileTask, { _cron: cron }),
    })),
  );
  await assertAllRefused(cases, 2_000);
});

test("valid payloads of every ledgerbox task, hostile identifiers included, are stored in graphile-worker's queue exactly as given", async () => {
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...ownTasks).chain(({ task, valid }) => valid.map((payload) => ({ task, payload, [fc.toStringMethod]: () => `${task.name} ${fc.stringify(payload)}` }))), async ({ task, payload }) => {
      const { jobId } = await enqueue(db.pool, task, payload, { runAt: new Date(Date.now() + 86_400_000) });
      const { rows } = await db.pool.query(`select t.identifier as task_identifier, j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where j.id = $1`, [jobId]);
      assert.equal(rows[0].task_identifier, task.name);
      assert.deepEqual(rows[0].payload, { ...payload });
      assert.deepEqual(checkPayload(task, rows[0].payload), { ...payload });
    }),
    fuzzParameters(150),
  );
});

test('a step job for no workflow, or for a step the workflow does not have, is refused with its code and writes nothing', async () => {
  const environment = {
    db: db.pool,
    workflows: registryOf([compiledWorkflow(exchangeWorkflowFor({ fx: new FakeFxRateProvider({ rates: {} }), compliance: new FakeComplianceProvider() }))!]),
    providers: undefined,
    retry: { base_ms: 1_000, max_ms: 10_000 },
    providerTimeout_ms: 1_000,
    compensationDelay_ms: 0,
    logger: pino({ level: 'silent' }),
  };
  const job = { id: '1', workerId: null };
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc.uuid().map((workflowId) => ({ what: 'a step of no workflow', code: 'workflow_not_found' as const, attempt: () => runStep(environment, { workflowId, step: 'lock_rate' }, job) })),
    fc
      // Object.prototype's members too: a step is looked up among the workflow's own steps only
      .oneof(identifier, fc.constantFrom('constructor', 'valueOf', 'toString', 'hasOwnProperty', '__proto__'))
      .filter((step) => !['lock_rate', 'compliance', 'settle', 'notify', 'compensate'].includes(step))
      .map((step) => ({ what: `step ${fc.stringify(step)}`, code: 'unknown_step' as const, attempt: () => runStep(environment, { workflowId: exchange.exchangeId, step }, job) })),
  );
  await assertAllRefused(cases, 500);
});

test('host tasks: bad names, contracts and defaults are refused by defineTask; bad options, keys and batches by enqueue, enqueueMany and fanOut; nothing is written', async () => {
  const hostTask = defineTask('host.fuzz', object({ orderId: string(), lines: optional(array(integer())), urgent: optional(boolean()) }));
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc.oneof(notAString, anyText.filter((text) => !/^[a-z][a-z0-9_.:-]{0,99}$/.test(text))).map((name) => ({
      what: `a task named ${fc.stringify(name)}`,
      code: 'invalid_input' as const,
      attempt: () => defineTask(name as never, object({})),
    })),
    fc.oneof(notAString, fc.constant({ validate: 'no' })).map((struct) => ({ what: 'a task whose contract is not a struct', code: 'invalid_input' as const, attempt: () => defineTask('host.ok', struct as never) })),
    fc
      .oneof(
        fc.record({ queue: fc.oneof(notAString, anyText.filter((text) => !/^[A-Za-z0-9_.:-]{1,100}$/.test(text))) }),
        fc.record({ maxAttempts: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 32_768 }), fc.double({ noInteger: true })) }),
        fc.record({ priority: fc.oneof(fc.integer({ max: -32_769 }), fc.integer({ min: 32_768 }), anyText) }),
      )
      .map((defaults) => ({ what: `task defaults ${fc.stringify(defaults)}`, code: 'invalid_input' as const, attempt: () => defineTask('host.ok', object({}), defaults as never) })),
    fc.oneof(notAString, fc.constant({ name: 'host.fuzz', payload: object({}), defaults: {} })).map((task) => ({
      what: 'a task not made by defineTask',
      code: 'unknown_task' as const,
      attempt: () => enqueue(db.pool, task as never, { orderId: '1' }),
    })),
    fc.oneof(
      fc.record({ orderId: fc.oneof(fc.integer(), fc.boolean()) }),
      fc.record({ orderId: identifier, lines: fc.array(anyText, { minLength: 1, maxLength: 3 }) }),
      fc.record({ orderId: identifier, extra: fc.oneof(fc.double({ noInteger: true }), fc.object({ maxDepth: 1 }).filter((value) => Object.keys(value).length > 0)) }),
      fc.record({ orderId: unstorableText }),
    ).map((payload) => ({ what: `host payload ${fc.stringify(payload).slice(0, 80)}`, code: 'invalid_input' as const, attempt: () => enqueue(db.pool, hostTask, payload as never) })),
    fc
      .oneof(
        fc.record({ jobKey: fc.oneof(notAString, fc.constant(''), fc.string({ minLength: 201, maxLength: 300 }), unstorableText) }),
        fc.record({ jobKeyMode: anyText.filter((text) => text !== 'replace' && text !== 'preserve_run_at') }),
        fc.record({ runAt: fc.oneof(anyText, fc.constant(new Date(Number.NaN))) }),
        fc.record({ priority: fc.oneof(fc.double({ noInteger: true }), fc.integer({ min: 32_768 })) }),
        fc.record({ queue: anyText.filter((text) => !/^[A-Za-z0-9_.:-]{1,100}$/.test(text)) }),
      )
      .map((options) => ({ what: `enqueue options ${fc.stringify(options).slice(0, 80)}`, code: 'invalid_input' as const, attempt: () => enqueue(db.pool, hostTask, { orderId: '1' }, options as never) })),
    fc.tuple(validKeyText, fc.integer({ min: 2, max: 5 })).map(([jobKey, count]) => ({
      what: 'one job key twice in a batch',
      code: 'invalid_input' as const,
      attempt: () => enqueueMany(db.pool, Array.from({ length: count }, (_, index) => ({ task: hostTask, payload: { orderId: String(index) }, options: { jobKey } }))),
    })),
    fc.oneof(notAString.filter((value) => !Array.isArray(value)), fc.constant([])).map((jobs) => ({ what: 'enqueueMany of no batch', code: 'invalid_input' as const, attempt: () => enqueueMany(db.pool, jobs as never) })),
    fc.oneof(
      fc.oneof(notAString.filter((value) => !Array.isArray(value)), fc.constant([])).map((ids) => ({ ids, options: {} })),
      fc.array(fc.oneof(fc.constant(''), fc.string({ minLength: 201, maxLength: 220 }), unstorableText), { minLength: 1, maxLength: 3 }).map((ids) => ({ ids, options: {} })),
      validKeyText.map((id) => ({ ids: [id, id], options: {} })),
      fc.record({ spreadOver_ms: fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 604_800_001 }), fc.double({ noInteger: true })) }).map((options) => ({ ids: ['a'], options })),
      fc.record({ queueConcurrency: fc.integer({ min: 1, max: 5 }) }).map((options) => ({ ids: ['a'], options })),
      fc.record({ jobKeyPrefix: fc.oneof(fc.constant(''), unstorableText) }).map((options) => ({ ids: ['a'], options })),
    ).map(({ ids, options }) => ({
      what: `fanOut of ${fc.stringify(ids).slice(0, 60)} with ${fc.stringify(options)}`,
      code: 'invalid_input' as const,
      attempt: () => fanOut(db.pool, hostTask, ids as never, (id) => ({ orderId: id }), options as never),
    })),
  );
  await assertAllRefused(cases, 2_000);
});

test('alerts, investigations, workflows and operator recovery refuse every bad input with its code and write nothing', async () => {
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc
      .oneof(
        fc.record({ severity: fc.oneof(anyText.filter((text) => !['critical', 'warning', 'info'].includes(text)), notAString) }),
        fc.record({ kind: fc.oneof(notAString, anyText.filter((text) => !/^[a-z][a-z0-9_.:-]*$/.test(text) || text.length > 100)) }),
        fc.record({ message: fc.oneof(notAString, fc.constantFrom('', '   ', '\n\t'), fc.string({ minLength: 4_001, maxLength: 4_100 }), unstorableText) }),
        fc.record({ details: invalidMetadata }),
        fc.record({ workflowId: notUuid }),
        fc.record({ dedupeKey: fc.oneof(notAString, invalidKeyText) }),
      )
      .map((wrong) => ({
        what: `recordAlert with ${fc.stringify(wrong).slice(0, 80)}`,
        code: 'invalid_input' as const,
        attempt: () => recordAlert(db.pool, { severity: 'warning', kind: 'fuzz', message: 'a message', ...wrong } as never),
      })),
    fc.tuple(fc.oneof(notAString, anyText.filter((text) => !/^[1-9]\d{0,18}$/.test(text))), anyText).map(([id, resolution]) => ({
      what: 'closeInvestigation of a malformed id',
      code: 'invalid_input' as const,
      attempt: () => closeInvestigation(db.pool, { id, resolution: `r${resolution}` } as never),
    })),
    fc.bigInt({ min: 1_000_000n, max: 2n ** 62n }).map((id) => ({
      what: 'closeInvestigation of no investigation',
      code: 'investigation_not_found' as const,
      attempt: () => closeInvestigation(db.pool, { id: String(id), resolution: 'fixed' }),
    })),
    fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 1_001 }), anyText).map((limit) => ({
      what: 'listOpenInvestigations with a bad limit',
      code: 'invalid_input' as const,
      attempt: () => listOpenInvestigations(db.pool, { limit } as never),
    })),
    fc.tuple(notUuid, fc.boolean()).map(([workflowId, resume]) => ({
      what: `${resume ? 'resume' : 'cancel'}Workflow of a malformed id`,
      code: 'invalid_input' as const,
      attempt: () => (resume ? resumeWorkflow : cancelWorkflow)(db.pool, { workflowId, reason: 'fuzz' } as never),
    })),
    fc.tuple(fc.oneof(notAString, fc.constantFrom('', '   ', '\t\n'), fc.string({ minLength: 1_001, maxLength: 1_100 }), unstorableText), fc.nat(3)).map(([reason, which]) => ({
      what: `operator reason ${fc.stringify(reason).slice(0, 40)}`,
      code: 'invalid_input' as const,
      attempt: () =>
        [
          () => resumeWorkflow(db.pool, { workflowId: exchange.exchangeId, reason } as never),
          () => cancelWorkflow(db.pool, { workflowId: exchange.exchangeId, reason } as never),
          () => retryJob(db.pool, { jobId: '1', reason } as never),
          () => retryTaskJobs(db.pool, { task: 'host.fuzz', reason } as never),
        ][which]!(),
    })),
    fc.uuid().map((workflowId) => ({ what: 'resumeWorkflow of no workflow', code: 'workflow_not_found' as const, attempt: () => resumeWorkflow(db.pool, { workflowId, reason: 'fixed the rate' }) })),
    fc.constant(0).map(() => ({ what: 'resumeWorkflow of a running workflow', code: 'workflow_not_resumable' as const, attempt: () => resumeWorkflow(db.pool, { workflowId: exchange.exchangeId, reason: 'fuzz' }) })),
    fc.oneof(notAString, anyText.filter((text) => !/^[1-9]\d{0,18}$/.test(text))).map((jobId) => ({ what: 'retryJob of a malformed id', code: 'invalid_input' as const, attempt: () => retryJob(db.pool, { jobId, reason: 'fuzz' } as never) })),
    fc.bigInt({ min: 1_000_000n, max: 2n ** 62n }).map((jobId) => ({ what: 'retryJob of no job', code: 'job_not_found' as const, attempt: () => retryJob(db.pool, { jobId: String(jobId), reason: 'fuzz' }) })),
    notUuid.map((workflowId) => ({ what: 'workflowTimeline of a malformed id', code: 'invalid_input' as const, attempt: () => workflowTimeline(db.pool, workflowId as never) })),
    fc.uuid().map((workflowId) => ({ what: 'workflowTimeline of no workflow', code: 'workflow_not_found' as const, attempt: () => workflowTimeline(db.pool, workflowId) })),
    fc.oneof(fc.record({ limit: fc.oneof(fc.integer({ max: 0 }), anyText) }), fc.record({ task: fc.oneof(notAString, unstorableText) })).map((options) => ({
      what: `listFailedJobs with ${fc.stringify(options).slice(0, 60)}`,
      code: 'invalid_input' as const,
      attempt: () => listFailedJobs(db.pool, options as never),
    })),
    fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true }), anyText).map((value) => ({
      what: 'stuckWorkflows / moneyInLimbo with a bad threshold',
      code: 'invalid_input' as const,
      attempt: () => (typeof value === 'string' ? stuckWorkflows(db.pool, { olderThan_ms: value } as never) : moneyInLimbo(db.pool, { sla_ms: value })),
    })),
    fc
      .oneof(
        fc.record({ asOf: fc.oneof(anyText, fc.constant(new Date(Number.NaN))) }),
        fc.record({ full: fc.oneof(anyText, fc.integer()) }),
        fc.record({ limboSla_ms: fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true })) }),
        fc.record({ statementTolerance: fc.oneof(fc.integer({ max: -1 }), anyText) }),
      )
      .map((options) => ({ what: `reconcile with ${fc.stringify(options).slice(0, 60)}`, code: 'invalid_input' as const, attempt: () => reconcile(db.pool, options as never) })),
    fc
      .oneof(
        fc.record({ key: fc.oneof(notAString, invalidKeyText) }),
        fc.record({ from: fc.oneof(notAString, invalidKeyText) }),
        fc.record({ to: fc.constant('sam:USD') }),
        fc.record({ amount: fc.oneof(fc.double(), fc.bigInt({ max: 0n }).map(usd), anyText) }),
        fc.record({ metadata: invalidMetadata }),
        fc.record({ holdFor_ms: fc.oneof(fc.integer({ max: 999 }), fc.constantFrom(30 * 86_400_000 + 1, 2 ** 40), fc.double({ noInteger: true })) }),
      )
      .map((wrong) => ({
        what: `startExchange with ${fc.stringify(wrong).slice(0, 60)}`,
        code: 'invalid_input' as const,
        attempt: () => startExchange(db.pool, { key: 'exchange:fuzz', from: 'sam:USD', to: 'sam:EUR', amount: usd(1n), ...wrong } as never),
      })),
    fc.bigInt({ min: 1_000_000_00n, max: 2n ** 62n }).map((amount) => ({
      what: 'an exchange larger than the balance',
      code: 'insufficient_funds' as const,
      attempt: () => startExchange(db.pool, { key: `exchange:big:${amount}`, from: 'sam:USD', to: 'sam:EUR', amount: usd(amount) }),
    })),
    fc.bigInt({ min: 2n, max: 1_000n }).map((amount) => ({
      what: 'an exchange key reused for a different amount',
      code: 'exists_with_different_request' as const,
      attempt: () => startExchange(db.pool, { key: 'exchange:1', from: 'sam:USD', to: 'sam:EUR', amount: usd(amount * 1_000n + 1n) }),
    })),
    notUuid.map((id) => ({ what: 'getExchange of a malformed id', code: 'invalid_input' as const, attempt: () => getExchange(db.pool, id as never) })),
    fc.uuid().map((id) => ({ what: 'getExchange of no exchange', code: 'workflow_not_found' as const, attempt: () => getExchange(db.pool, id) })),
  );
  await assertAllRefused(cases, 1_500);
});

test('valid alerts with hostile messages, kinds, details and dedupe keys are stored exactly', async () => {
  let sequence = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('critical' as const, 'warning' as const, 'info' as const),
      anyText.filter((text) => text.trim() !== ''),
      validMetadata,
      validKeyText,
      async (severity, message, details, dedupe) => {
        const dedupeKey = `${sequence++}:${dedupe}`.slice(0, 200);
        const recorded = await recordAlert(db.pool, { severity, kind: 'fuzz.alert', message, details, dedupeKey });
        const { rows } = await db.pool.query(`select severity, message, details, dedupe_key from ledgerbox.alerts where id = $1`, [recorded.id]);
        assert.deepEqual(rows[0], { severity, message, details: JSON.parse(JSON.stringify(details)), dedupe_key: dedupeKey });
      },
    ),
    fuzzParameters(200),
  );
});
