import { Registry } from 'prom-client';
import { define, object, optional, size, integer, string, pattern } from 'superstruct';
import { secretValue, validate } from '../contracts.js';
import type { DatabaseHandle } from '../db/handle.js';
import { InvalidInputError } from '../errors.js';
import { registerDatabaseGauges } from './database.js';

export { registerDatabaseGauges, exactNumber, limbo_sla_ms } from './database.js';
export { registerProcessMetrics, type StepRecorder, type JobRecorder, type StepOutcomeLabel } from './process.js';
export { serveMetrics, type MetricsServer } from './server.js';

/** startWorker's `metrics` option: serve GET /metrics from the worker. */
export interface WorkerMetricsOptions {
  /** The port to listen on; 0 picks a free one (read it from the running worker's `metricsUrl`). */
  port: number;
  /** The address to listen on. Default 127.0.0.1 (only this machine). */
  host?: string;
  /** When given, a scrape must send `Authorization: Bearer <token>` (401 otherwise). At least 16 characters. */
  token?: string;
}

/** A token is a credential: a refusal names the field, never shows it. */
const MetricsToken = secretValue(
  define<string>('metrics token (16 to 1000 printable ASCII characters, no spaces)', (value) => typeof value === 'string' && /^[\x21-\x7e]{16,1000}$/.test(value)),
);

/** @internal */
export const WorkerMetricsOptions = object({
  port: size(integer(), 0, 65_535),
  host: optional(size(pattern(string(), /^[A-Za-z0-9.:_%-]+$/), 1, 253)),
  token: optional(MetricsToken),
});

/** By shape, not instanceof: the host's prom-client may be another copy of the package. */
const RegistryShape = define<Registry>('a prom-client Registry', (value) =>
  typeof value === 'object' && value !== null && ['metrics', 'registerMetric', 'getSingleMetric'].every((method) => typeof (value as Record<string, unknown>)[method] === 'function'),
);

const DatabaseMetricsOptions = object({ registry: optional(RegistryShape) });

/**
 * A prom-client Registry of the database gauges (queue depth and age, money in limbo,
 * investigations, the last reconciliation, unfinished workflows), read from `db` at each
 * scrape in one read-only statement. Serve it: `res.type(registry.contentType).send(await
 * registry.metrics())`. With `registry`, the gauges are added to that one (and it is returned).
 * See docs/metrics.md.
 */
export function createDatabaseMetrics(db: DatabaseHandle, options: { registry?: Registry } = {}): Registry {
  const request = validate(DatabaseMetricsOptions, options, 'options');
  if (typeof db !== 'object' || db === null || typeof (db as { query?: unknown }).query !== 'function') {
    throw new InvalidInputError('Expected `db` to be a database handle (a node-postgres Pool or Client, or an @databases/pg pool, connection or transaction)', ['db'], db);
  }
  const registry = request.registry ?? new Registry();
  const taken = registry.getSingleMetric('ledgerbox_database_up');
  if (taken !== undefined) {
    throw new InvalidInputError('Invalid `options.registry`: it already holds ledgerbox\'s database gauges', ['options', 'registry'], 'a Registry');
  }
  registerDatabaseGauges(db, registry);
  return registry;
}
