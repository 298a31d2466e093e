// Traces (issue 14): spans through @opentelemetry/api, recorded here by the SDK's in-memory
// exporter, parent-linked from the host's span and transaction to every step; and nothing
// breaks, nor is carried, with no SDK registered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { context, trace, SpanStatusCode, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { object, string } from 'superstruct';
import { defineTask, defineWorkflow, enqueue, getWorkflow, startWorker, startWorkflow, type StepDatabase } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { waitFor } from './support/wait.ts';

const db = await useTestDatabase();

// a strict host contract (object(): no other key): the traceparent must not reach it
const receipt = defineTask('host.traced_receipt', object({ order: string() }));
const received: Record<string, unknown>[] = [];

// the external call fails the first time it is made for an order, then answers
const failedOnce = new Set<string>();
const traced = defineWorkflow({
  kind: 'traced',
  version: 1,
  input: object({ order: string() }),
  steps: {
    reserve: {
      type: 'database',
      async run(tx, { input }) {
        await tx.query(`select 1`);
        return { result: { order: input.order }, next: 'charge' };
      },
    },
    charge: {
      type: 'external',
      provider: 'card',
      async call({ input, idempotencyKey }) {
        if (!failedOnce.has(input.order)) {
          failedOnce.add(input.order);
          throw new Error('card processor unavailable');
        }
        return { charged: idempotencyKey };
      },
      decide: ({ answer }) => ({ result: answer, complete: true }),
    },
  },
  compensate: { type: 'database', run: async () => ({ result: null, complete: true }) },
});

// registered by the second test, before which there is no SDK
const exporter = new InMemorySpanExporter();

const worker = await startWorker({
  connectionString: db.connectionString,
  workflows: [traced],
  tasks: [{ task: receipt, handler: async (payload) => void received.push({ ...payload }) }],
  pollInterval_ms: 50,
  retry: { base_ms: 10, max_ms: 50 },
  reconciliation: false,
  noHandleSignals: true,
  logger: pino({ level: 'silent' }),
});
db.onClose(() => worker.stop());

async function inHostTransaction<T>(work: (client: StepDatabase) => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Starts a workflow and enqueues a receipt in one host transaction; waits until both have run.
 * Returns the workflow's id and the payloads of the two jobs as they were written.
 */
async function startAndFinish(order: string): Promise<{ workflowId: string; payloads: Record<string, unknown>[] }> {
  const { workflow: started, payloads } = await inHostTransaction(async (client) => {
    const workflow = await startWorkflow(client, traced, { key: `order:${order}`, input: { order } });
    await enqueue(client, receipt, { order });
    // uncommitted: no worker has them yet
    const { rows } = await client.query(`select payload from graphile_worker._private_jobs where payload->>'workflowId' = $1 or payload->>'order' = $2 order by id`, [workflow.workflowId, order]);
    return { workflow, payloads: rows.map((row: { payload: Record<string, unknown> }) => row.payload) };
  });
  await waitFor(`workflow ${order} to complete`, async () => ((await getWorkflow(db.pool, { id: started.workflowId })).status === 'completed' ? true : undefined));
  await waitFor(`receipt ${order}`, async () => (received.some((payload) => payload.order === order) ? true : undefined));
  return { workflowId: started.workflowId, payloads };
}

test('with no OpenTelemetry SDK registered, workflows and jobs run as before and their payloads carry no traceparent', async () => {
  const { workflowId, payloads } = await startAndFinish('untraced');
  assert.deepEqual(payloads, [{ workflowId, step: 'reserve' }, { order: 'untraced' }]);
  assert.deepEqual(received.find((payload) => payload.order === 'untraced'), { order: 'untraced' });
  assert.equal((await getWorkflow(db.pool, { id: workflowId })).status, 'completed');
});

test('spans from the host request through startWorkflow, enqueue, every job, step and external call: one trace, parent-linked', async () => {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  assert.ok(context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable()));
  assert.ok(trace.setGlobalTracerProvider(provider));
  db.onClose(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  const host = trace.getTracer('host');
  const { workflowId, payloads } = await host.startActiveSpan('host.request', async (span: Span) => {
    try {
      return await startAndFinish('traced');
    } finally {
      span.end();
    }
  });
  // written with the traceparent of the span that enqueued them
  assert.equal(payloads.length, 2);
  for (const payload of payloads) assert.match(String(payload.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  // the host's strict contract got the payload it was given, nothing more
  assert.deepEqual(received.find((payload) => payload.order === 'traced'), { order: 'traced' });

  const spans = () => exporter.getFinishedSpans();
  const idOf = (span: ReadableSpan) => span.spanContext().spanId;
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;
  const byId = (id: string | undefined) => spans().find((span) => idOf(span) === id);
  const named = (name: string) => spans().filter((span) => span.name === name && (span.attributes['ledgerbox.workflow.id'] === workflowId || span.attributes['ledgerbox.task'] === receipt.name));
  // the last step's job span ends just after the workflow is seen completed: wait for it
  const charged = await waitFor('the charge step that succeeded and its job span', async () => {
    const step = named('ledgerbox.step traced.charge').find((span) => span.status.code !== SpanStatusCode.ERROR);
    return step !== undefined && byId(parentOf(step)) !== undefined ? step : undefined;
  });
  await waitFor('the receipt job span', async () => (named(`ledgerbox.job ${receipt.name}`).length === 1 ? true : undefined));

  const [request] = spans().filter((span) => span.name === 'host.request');
  assert.ok(request);
  const [start] = named('ledgerbox.startWorkflow');
  assert.ok(start, 'a startWorkflow span with the workflow id');
  assert.equal(parentOf(start), idOf(request), "startWorkflow is the host request's child");
  assert.deepEqual(
    { kind: start.attributes['ledgerbox.workflow.kind'], key: start.attributes['ledgerbox.workflow.key'], status: start.attributes['ledgerbox.workflow.status'] },
    { kind: 'traced', key: 'order:traced', status: 'running' },
  );

  // the host task: enqueue is the request's child, its job the enqueue's
  const [enqueued] = spans().filter((span) => span.name === 'ledgerbox.enqueue' && span.attributes['ledgerbox.task'] === receipt.name);
  assert.ok(enqueued);
  assert.equal(parentOf(enqueued), idOf(request));
  const [receiptJob] = named(`ledgerbox.job ${receipt.name}`);
  assert.equal(parentOf(receiptJob!), idOf(enqueued));
  assert.equal(payloads[1]!.traceparent, `00-${request.spanContext().traceId}-${idOf(enqueued)}-01`);
  assert.equal(payloads[0]!.traceparent, `00-${request.spanContext().traceId}-${idOf(start)}-01`);

  // one trace throughout
  const ours = [request, ...spans().filter((span) => span.attributes['ledgerbox.workflow.id'] === workflowId), enqueued, receiptJob!];
  assert.deepEqual([...new Set(ours.map((span) => span.spanContext().traceId))], [request.spanContext().traceId]);

  // every step: its span, with the workflow id, the child of its job's span, whose parent chain reaches startWorkflow and the request
  const steps = spans().filter((span) => span.name.startsWith('ledgerbox.step '));
  assert.deepEqual(steps.map((span) => span.name).sort(), ['ledgerbox.step traced.charge', 'ledgerbox.step traced.charge', 'ledgerbox.step traced.reserve']);
  for (const step of steps) {
    assert.equal(step.attributes['ledgerbox.workflow.id'], workflowId);
    const job = byId(parentOf(step));
    assert.equal(job?.name, 'ledgerbox.job ledgerbox:step', `${step.name}'s parent is its job`);
    assert.equal(job?.attributes['ledgerbox.workflow.id'], workflowId);
    const chain: string[] = [];
    for (let at: ReadableSpan | undefined = step; at !== undefined; at = byId(parentOf(at))) chain.push(at.name);
    assert.ok(chain.includes('ledgerbox.startWorkflow'), `${step.name}: ${chain.join(' < ')}`);
    assert.equal(chain.at(-1), 'host.request');
  }
  const [reserve] = named('ledgerbox.step traced.reserve');
  assert.equal(parentOf(byId(parentOf(reserve!))!), idOf(start), "the first step's job is startWorkflow's child");

  // the failed attempt: error status and the exception event, on the step and on its external call; the retry is its child, attempt 2
  const [failed] = named('ledgerbox.step traced.charge').filter((span) => span.status.code === SpanStatusCode.ERROR);
  assert.ok(failed, 'the failed charge attempt has an error status');
  assert.equal(failed.status.message, 'card processor unavailable');
  const exception = failed.events.find((event) => event.name === 'exception');
  assert.equal(exception?.attributes?.['exception.message'], 'card processor unavailable');
  assert.deepEqual([failed.attributes['ledgerbox.step.attempt'], charged.attributes['ledgerbox.step.attempt']], [1, 2]);
  const retryJob = byId(parentOf(charged));
  assert.equal(parentOf(retryJob!), idOf(failed), 'the retry continues the failed attempt');

  // each external call is the child of its step's span
  const calls = named('ledgerbox.external_call charge');
  assert.equal(calls.length, 2);
  assert.deepEqual(calls.map(parentOf).sort(), [idOf(failed), idOf(charged)].sort());
  const failedCall = calls.find((span) => parentOf(span) === idOf(failed))!;
  assert.equal(failedCall.status.code, SpanStatusCode.ERROR);
  assert.ok(failedCall.events.some((event) => event.name === 'exception'));
  assert.equal(failedCall.attributes['ledgerbox.provider'], 'card');
  assert.notEqual(calls.find((span) => span !== failedCall)!.status.code, SpanStatusCode.ERROR);
});

test('a job whose traceparent is malformed runs, as the root of a trace of its own; start_workflow refuses one', async () => {
  await db.pool.query(`select graphile_worker.add_job('host.traced_receipt', json_build_object('order', 'bogus', 'traceparent', 'not-a-traceparent'))`);
  await waitFor('the receipt with a bogus traceparent', async () => (received.some((payload) => payload.order === 'bogus') ? true : undefined));
  assert.deepEqual(received.find((payload) => payload.order === 'bogus'), { order: 'bogus' });
  const job = await waitFor('its job span', async () => exporter.getFinishedSpans().find((span) => span.name === `ledgerbox.job ${receipt.name}` && span.parentSpanContext === undefined));
  assert.equal(job.status.code, SpanStatusCode.UNSET);
  await assert.rejects(
    db.pool.query(`select * from ledgerbox.start_workflow('traced', 1, 'order:bad-trace', '{"order":"x"}', null, 'reserve', null, 'nope')`),
    { code: '22023', message: /traceparent must be a W3C traceparent/ },
  );
});
