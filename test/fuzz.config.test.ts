// Property-based tests of configuration read from the environment: every malformed value is
// refused with a typed invalid_input error naming the variable (never showing a secret's
// value), before anything starts or is written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { defineTask, deliverAlerts, isLedgerboxError, migrate, startWorker, type ErrorCode } from '../src/index.ts';
import { object } from 'superstruct';
import { resolveDatabase } from '../src/db/connection.ts';
import { defaultLogger } from '../src/logger.ts';
import { deliverReport, reportDeliveryFromEnv } from '../src/reconcile/report/index.ts';
import { useTestDatabase } from './support/database.ts';
import { anyText, databaseSnapshot, fuzzParameters } from './support/fuzz.ts';
import { capturingLogger } from './support/logs.ts';

const db = await useTestDatabase();
const secret = 'env-s3cret-91ab';

/** Runs `attempt` with `variables` set in process.env, restoring them after. */
async function withEnvironment<T>(variables: Record<string, string>, attempt: () => Promise<T> | T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  Object.assign(process.env, variables);
  try {
    return await attempt();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function refusal(attempt: () => Promise<unknown> | unknown): Promise<Error & { code?: string }> {
  try {
    await attempt();
  } catch (error) {
    return error as Error & { code?: string };
  }
  assert.fail('expected the configuration to be refused');
}

function assertNamesVariable(error: Error & { code?: string }, variable: string): void {
  assert.ok(isLedgerboxError(error, 'invalid_input'), `expected invalid_input naming ${variable}, got ${error.stack}`);
  assert.ok(error.message.includes(variable), `the refusal names ${variable}: ${error.message}`);
  assert.ok(!JSON.stringify({ message: error.message, details: (error as { details?: unknown }).details }).includes(secret), `no secret in: ${error.message}`);
}

const notAClockTime = anyText.filter((text) => !/^([01]\d|2[0-3]):([0-5]\d)$/.test(text.trim()) && text.trim() !== '');
/** What the worker would accept as a webhook URL (after trimming, as it reads the environment). */
function isHttpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text.trim()).protocol);
  } catch {
    return false;
  }
}
const notAWebhookUrl = fc
  .oneof(
    fc.constantFrom(`ftp://hook:${secret}@example.com/x`, `hooks.example.com/services/${secret}`, `https//example.com/${secret}`, `javascript:alert(1)//${secret}`, `mailto:${secret}@example.com`),
    anyText.map((text) => `${text}${secret}`),
  )
  .filter((value) => !isHttpUrl(value));

test('a malformed RECONCILE_AT, LEDGERBOX_ONCALL_WEBHOOK_URL or LEDGERBOX_OPS_WEBHOOK_URL stops the worker before it starts, naming the variable', async () => {
  const before = await databaseSnapshot(db.pool);
  const { logger } = capturingLogger();
  const settings = fc.oneof(
    notAClockTime.map((value) => ({ variable: 'RECONCILE_AT', value })),
    notAWebhookUrl.map((value) => ({ variable: 'LEDGERBOX_ONCALL_WEBHOOK_URL', value })),
    notAWebhookUrl.map((value) => ({ variable: 'LEDGERBOX_OPS_WEBHOOK_URL', value })),
  );
  await fc.assert(
    fc.asyncProperty(settings, async ({ variable, value }) => {
      const error = await withEnvironment({ [variable]: value }, () =>
        refusal(() => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true })),
      );
      assertNamesVariable(error, variable);
    }),
    fuzzParameters(400),
  );
  assert.deepEqual(await databaseSnapshot(db.pool), before, 'no worker wrote anything');
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.workers`);
  assert.equal(rows[0].n, 0);
});

test('a malformed SMTP_URL, or SMTP_URL without REPORT_TO, is refused naming the variable and never showing the password', async () => {
  const { logger } = capturingLogger();
  const rendered = { subject: 'report', text: 'text', html: '<p>html</p>' };
  const settings = fc.oneof(
    fc
      .constantFrom(
        `smtp://user:${secret}@mail.example.com:99999`,
        `http://user:${secret}@mail.example.com`,
        `user:${secret}@mail.example.com:587`,
        `smtp//user:${secret}@mail.example.com`,
        `mail.example.com ${secret}`,
      )
      .map((smtpUrl) => ({ env: { SMTP_URL: smtpUrl, REPORT_TO: 'ops@example.com' }, variable: 'SMTP_URL' })),
    anyText
      .filter((text) => { try { return !['smtp:', 'smtps:'].includes(new URL(text.trim()).protocol); } catch { return true; } })
      .filter((text) => text.trim() !== '')
      .map((text) => ({ env: { SMTP_URL: `${text}${secret}`, REPORT_TO: 'ops@example.com' }, variable: 'SMTP_URL' })),
    fc.constantFrom('', ' ', ',', ' , ,').map((to) => ({ env: { SMTP_URL: `smtp://user:${secret}@127.0.0.1:9`, REPORT_TO: to }, variable: 'REPORT_TO' })),
  );
  await fc.assert(
    fc.asyncProperty(settings, async ({ env, variable }) => {
      const error = await refusal(() => deliverReport(rendered, { runId: 'config-1', logger, ...reportDeliveryFromEnv(env) }));
      assertNamesVariable(error, variable);
    }),
    fuzzParameters(300),
  );
});

test('a malformed DATABASE_URL, LEDGERBOX_EMBEDDED_PORT or LEDGERBOX_LOG_LEVEL is refused naming the variable, before any server starts', async () => {
  const settings = fc.oneof(
    fc
      .constantFrom(
        `postgres://user:${secret}@127.0.0.1:99999/db`,
        `mysql://user:${secret}@127.0.0.1/db`,
        `http://user:${secret}@127.0.0.1:5432/db`,
        `postgres://user:${secret}@[::1/db`,
      )
      .map((value) => ({ env: { DATABASE_URL: value }, variable: 'DATABASE_URL', attempt: () => resolveDatabase() })),
    fc
      .oneof(fc.integer({ min: 65_536 }), fc.integer({ max: 0 }), fc.double({ noInteger: true, min: 1, max: 65_000 }), anyText)
      // what would start the embedded server (an empty value means the default port) is not generated
      .filter((port) => String(port) !== '' && !(Number.isInteger(Number(port)) && Number(port) >= 1 && Number(port) <= 65_535))
      .map((port) => ({ env: { DATABASE_URL: '', LEDGERBOX_EMBEDDED_PORT: String(port) }, variable: 'LEDGERBOX_EMBEDDED_PORT', attempt: () => resolveDatabase() })),
    anyText
      .filter((level) => !['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(level))
      .map((level) => ({ env: { LEDGERBOX_LOG_LEVEL: level }, variable: 'LEDGERBOX_LOG_LEVEL', attempt: () => defaultLogger() })),
  );
  await fc.assert(
    fc.asyncProperty(settings, async ({ env, variable, attempt }) => {
      const error = await withEnvironment(env, () => refusal(attempt));
      assertNamesVariable(error, variable);
    }),
    fuzzParameters(400),
  );
});

test('startWorker, migrate and deliverAlerts refuse malformed options with their code before they connect or start anything', async () => {
  const before = await databaseSnapshot(db.pool);
  const { logger } = capturingLogger();
  const badNumber = fc.oneof(fc.integer({ max: 0 }), fc.double({ noInteger: true }), fc.constantFrom(2 ** 31, Number.NaN, Infinity), anyText, fc.constant(null));
  const task = defineTask('config.fuzz', object({}));
  const cases: fc.Arbitrary<{ what: string; code: ErrorCode; attempt: () => Promise<unknown> }> = fc.oneof(
    fc.tuple(fc.constantFrom('concurrency', 'pollInterval_ms', 'heartbeat_ms', 'staleWorkerAfter_ms', 'providerTimeout_ms'), badNumber).map(([option, value]) => ({
      what: `startWorker with ${option} ${fc.stringify(value)}`,
      code: 'invalid_input' as const,
      attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, [option]: value }),
    })),
    fc.oneof(fc.integer({ max: -1 }), fc.double({ noInteger: true }), anyText).map((value) => ({
      what: `startWorker with compensationDelay_ms ${fc.stringify(value)}`,
      code: 'invalid_input' as const,
      attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, compensationDelay_ms: value as number }),
    })),
    fc.oneof(fc.integer({ max: 1 }), fc.integer({ min: 10_001 }), fc.double({ noInteger: true }), anyText, fc.constant(null)).map((value) => ({
      what: `startWorker with localQueueSize ${fc.stringify(value)}`,
      code: 'invalid_input' as const,
      attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, localQueueSize: value as never }),
    })),
    fc.oneof(fc.integer(), anyText, fc.constant(null), fc.object()).map((value) => ({
      what: `startWorker with noPreparedStatements ${fc.stringify(value)}`,
      code: 'invalid_input' as const,
      attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, noPreparedStatements: value as never }),
    })),
    fc.tuple(fc.constantFrom('base_ms', 'max_ms'), badNumber).map(([field, value]) => ({
      what: `startWorker with retry.${field} ${fc.stringify(value)}`,
      code: 'invalid_input' as const,
      attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, retry: { [field]: value } }),
    })),
    anyText
      .filter((text) => text.trim() !== '' && !text.trim().startsWith('#'))
      .map((crontab) => ({ what: `startWorker with crontab ${fc.stringify(crontab)}`, code: 'invalid_input' as const, attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, crontab: `* * * * * ${crontab}\n${crontab} task` }) })),
    fc.oneof(fc.constant({ task: {}, handler: async () => undefined }), fc.constant({ task, handler: 'not a function' }), fc.constant(null), anyText).map((hostTask) => ({
      what: `startWorker with the host task ${fc.stringify(hostTask)}`,
      code: 'unknown_task' as const,
      attempt: () => startWorker({ connectionString: db.connectionString, logger, noHandleSignals: true, tasks: [hostTask as never] }),
    })),
    fc.oneof(fc.integer(), fc.constant(''), fc.object()).map((connectionString) => ({
      what: `migrate and startWorker with the connection string ${fc.stringify(connectionString)}`,
      code: 'invalid_input' as const,
      attempt: async () => {
        await assert.rejects(startWorker({ connectionString: connectionString as never, logger, noHandleSignals: true }), { code: 'invalid_input' });
        return migrate({ connectionString: connectionString as never, logger });
      },
    })),
    fc.oneof(anyText, fc.object(), fc.integer()).map((pgPool) => ({ what: `migrate with the pool ${fc.stringify(pgPool)}`, code: 'invalid_input' as const, attempt: () => migrate({ pgPool: pgPool as never, logger }) })),
    fc.oneof(
      fc.record({ limit: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 1_001 }), anyText) }),
      fc.record({ webhookTimeout_ms: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 60_001 }), fc.double({ noInteger: true })) }),
    ).map((options) => ({ what: `deliverAlerts with ${fc.stringify(options)}`, code: 'invalid_input' as const, attempt: () => deliverAlerts(db.pool, { logger, ...options } as never) })),
    fc.oneof(fc.constant({}), fc.constant(null), anyText).map((bad) => ({ what: `deliverAlerts with the logger ${fc.stringify(bad)}`, code: 'invalid_input' as const, attempt: () => deliverAlerts(db.pool, { logger: bad as never }) })),
  );
  await fc.assert(
    fc.asyncProperty(cases.map((found) => Object.assign(found, { [fc.toStringMethod]: () => found.what })), async ({ what, code, attempt }) => {
      const error = await refusal(attempt);
      assert.ok(isLedgerboxError(error, code), `${what}: expected ${code}, got ${error.stack}`);
    }),
    fuzzParameters(400),
  );
  assert.deepEqual(await databaseSnapshot(db.pool), before, 'nothing started wrote anything');
  const { rows } = await db.pool.query(`select count(*)::int as n from ledgerbox.workers`);
  assert.equal(rows[0].n, 0);
});
