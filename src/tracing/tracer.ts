// OpenTelemetry traces through @opentelemetry/api, an optional peer dependency: without it
// every helper here calls its function and nothing more; with it and no SDK registered, the
// api's own no-op tracer answers. See docs/traces.md.
import { createRequire } from 'node:module';
import type * as OpenTelemetryApi from '@opentelemetry/api';
import { is, pattern, size, string, Struct } from 'superstruct';

type Api = typeof OpenTelemetryApi;

/**
 * Loaded once, synchronously, when this module is: no top-level await (which would stop a
 * CommonJS host from require()-ing ledgerbox) and no window after start-up in which spans are
 * lost. The api's entry point is CommonJS for require and import alike, so this is the very
 * module the host imports; its globals (provider, context manager) are shared in any case.
 */
function loadApi(): Api | undefined {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as Api;
  } catch {
    return undefined;
  }
}

const api = loadApi();
// a proxy: it follows whatever provider the host registers, before or after this line
const tracer = api?.trace.getTracer('ledgerbox');

/**
 * A W3C traceparent of version 00 (the only one the Trace Context spec defines so far):
 * exactly 55 characters, lowercase hex, trace and span ids not all zeros.
 */
export const Traceparent = pattern(size(string(), 55, 55), /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/);

/** The payload key a job's traceparent travels under; reserved by ledgerbox. */
export const traceparentKey = 'traceparent';

export type SpanAttributes = Record<string, string | number | boolean | undefined | null>;

/** What ledgerbox's code may do to a span: the rest is the tracer's. */
export interface SpanHandle {
  setAttribute(key: string, value: string | number | boolean): void;
  updateName(name: string): void;
}

const noSpan: SpanHandle = { setAttribute() {}, updateName() {} };

export type SpanRole = 'internal' | 'producer' | 'consumer' | 'client';

/**
 * Runs `work` in a new span, the child of the active one, and makes it the active span while
 * `work` runs (so a job enqueued inside carries it). A thrown error is recorded on the span as
 * an exception event and the span's status set to ERROR, then rethrown; the span ends either
 * way. Success leaves the status unset, as instrumentation libraries should.
 */
export function withSpan<T>(name: string, attributes: SpanAttributes, work: (span: SpanHandle) => Promise<T>, role: SpanRole = 'internal'): Promise<T> {
  if (api === undefined || tracer === undefined) return work(noSpan);
  return tracer.startActiveSpan(name, { kind: spanKind(api, role), attributes: definedAttributes(attributes) }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      failed(api, span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The active span (a no-op handle when there is none): for a function that runs inside withSpan's work. */
export function activeSpan(): SpanHandle {
  return api?.trace.getActiveSpan() ?? noSpan;
}

/** Records an error the code handles (a step's failed attempt) on the active span: exception event, ERROR status. */
export function recordActiveSpanError(error: unknown): void {
  if (api === undefined) return;
  const span = api.trace.getActiveSpan();
  if (span !== undefined) failed(api, span, error);
}

/**
 * The active span's context as a W3C traceparent, for a job about to be enqueued; undefined
 * when there is no valid one (no api, no SDK and no incoming trace). Written by ledgerbox
 * itself, whatever propagator the host registered: the job table is ledgerbox's own carrier,
 * and the consumer is always ledgerbox (withRemoteParent). tracestate is not carried.
 */
export function currentTraceparent(): string | undefined {
  if (api === undefined) return undefined;
  const context = api.trace.getSpanContext(api.context.active());
  if (context === undefined || !api.isSpanContextValid(context)) return undefined;
  return `00-${context.traceId}-${context.spanId}-${(context.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * Runs `work` with the span a traceparent names as its remote parent, so the spans `work`
 * starts join that trace. A missing or malformed traceparent runs `work` as it is: tracing
 * never fails a job.
 */
export function withRemoteParent<T>(traceparent: unknown, work: () => T): T {
  if (api === undefined || !is(traceparent, Traceparent)) return work();
  const [, traceId, spanId, flags] = traceparent.split('-') as [string, string, string, string];
  const parent = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  return api.context.with(api.trace.setSpanContext(api.context.active(), parent), work);
}

/**
 * A payload as it is enqueued: with the active span's traceparent under `traceparent`, when
 * there is one, the payload is a plain object and does not have that key already. @internal
 */
export function withTraceparent(payload: unknown): unknown {
  if (api === undefined || typeof payload !== 'object' || payload === null || Array.isArray(payload) || Object.hasOwn(payload, traceparentKey)) return payload;
  const traceparent = currentTraceparent();
  return traceparent === undefined ? payload : { ...payload, [traceparentKey]: traceparent };
}

/**
 * Splits a job's payload into what its task's contract checks and the traceparent it carried.
 * A contract that declares `traceparent` (ledgerbox's step task) gets it, to check; any other
 * gets the payload without it, so a strict host contract is not broken by it. @internal
 */
export function takeTraceparent(payload: unknown, contractDeclaresIt: boolean): { payload: unknown; traceparent: unknown } {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload) || !Object.hasOwn(payload, traceparentKey)) {
    return { payload, traceparent: undefined };
  }
  const { [traceparentKey]: traceparent, ...rest } = payload as Record<string, unknown>;
  return { payload: contractDeclaresIt ? payload : rest, traceparent };
}

/** Whether an object struct lists `traceparent` among its keys. @internal */
export function declaresTraceparent(struct: Struct<any, any>): boolean {
  const schema: unknown = struct.schema;
  return (struct.type === 'object' || struct.type === 'type') && typeof schema === 'object' && schema !== null && !(schema instanceof Struct) && Object.hasOwn(schema, traceparentKey);
}

function failed(api: Api, span: OpenTelemetryApi.Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

function spanKind(api: Api, role: SpanRole): OpenTelemetryApi.SpanKind {
  switch (role) {
    case 'producer':
      return api.SpanKind.PRODUCER;
    case 'consumer':
      return api.SpanKind.CONSUMER;
    case 'client':
      return api.SpanKind.CLIENT;
    default:
      return api.SpanKind.INTERNAL;
  }
}

function definedAttributes(attributes: SpanAttributes): OpenTelemetryApi.Attributes {
  const defined: OpenTelemetryApi.Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined && value !== null) defined[key] = value;
  return defined;
}
