import { sql } from '@databases/pg';
import { Gauge, type Registry } from 'prom-client';
import { array, nullable, number, object, string, type Infer } from 'superstruct';
import { queryOnce, type DatabaseHandle } from '../db/handle.js';
import { readRow } from '../db/rows.js';

/** How long a hold may stay pending before it counts as money in limbo: moneyInLimbo's default. */
export const limbo_sla_ms = 24 * 3_600_000;

const queueStates = ['ready', 'scheduled', 'locked', 'failed'] as const;
const severities = ['critical', 'warning'] as const;
/** The workflows counted: those not finished. Finished ones only ever grow (use ledgerbox_steps_total). */
const activeStatuses = ['queued', 'running', 'failed', 'compensation_failed'] as const;

const DatabaseReading = object({
  queue: array(object({ task: string(), state: string(), jobs: number() })),
  oldest_ready_age_seconds: nullable(number()),
  limbo: array(object({ currency: string(), amount: string(), holds: number() })),
  investigations: array(object({ severity: string(), open: number() })),
  last_run: nullable(object({ id: string(), status: string(), age_seconds: number() })),
  findings: array(object({ severity: string(), findings: number() })),
  workflows: array(object({ kind: string(), status: string(), workflows: number() })),
  held_back: array(object({ kind: string(), workflows: number() })),
});
type DatabaseReading = Infer<typeof DatabaseReading>;

/**
 * Everything the gauges show, in one statement: one snapshot, one round trip, its own short
 * transaction on a pool, and read-only (it only selects). Each part reads an index or a small
 * table: the job queue (graphile-worker keeps only unfinished jobs), open holds, open
 * investigations, the last reconciliation run, and workflows not finished (partial indexes).
 */
const readingQuery = sql`
  with jobs as (
    select j.task_id,
      case when j.locked_at is not null then 'locked'
           when j.attempts >= j.max_attempts then 'failed'
           when j.run_at > now() then 'scheduled'
           else 'ready' end as state,
      j.run_at
    from graphile_worker._private_jobs j
  ),
  last_run as (
    select id, status, finished_at from ledgerbox.reconciliation_runs
    where finished_at is not null and status in ('clean', 'warnings', 'critical')
    order by finished_at desc, id desc limit 1
  )
  select json_build_object(
    'queue', (select coalesce(json_agg(json_build_object('task', t.identifier, 'state', s.state, 'jobs', coalesce(c.jobs, 0))), '[]')
      from graphile_worker._private_tasks t
      cross join unnest(array['ready', 'scheduled', 'locked', 'failed']) as s(state)
      left join (select task_id, state, count(*) as jobs from jobs group by task_id, state) c on c.task_id = t.id and c.state = s.state),
    'oldest_ready_age_seconds', (select extract(epoch from now() - min(run_at))::float8 from jobs where state = 'ready'),
    'limbo', (select coalesce(json_agg(json_build_object('currency', currency, 'amount', amount::text, 'holds', holds)), '[]')
      from (select currency, sum(amount) as amount, count(*) as holds
            from ledgerbox.money_in_limbo(make_interval(secs => ${limbo_sla_ms / 1000})) group by currency) l),
    'investigations', (select coalesce(json_agg(json_build_object('severity', severity, 'open', open)), '[]')
      from (select severity, count(*) as open from ledgerbox.investigations where closed_at is null group by severity) i),
    'last_run', (select json_build_object('id', id::text, 'status', status, 'age_seconds', extract(epoch from now() - finished_at)::float8) from last_run),
    'findings', (select coalesce(json_agg(json_build_object('severity', severity, 'findings', findings)), '[]')
      from (select f.severity, count(*) as findings from ledgerbox.reconciliation_findings f
            where f.run_id = (select id from last_run) group by f.severity) f),
    'workflows', (select coalesce(json_agg(json_build_object('kind', kind, 'status', status, 'workflows', workflows)), '[]')
      from (select kind, status, count(*) as workflows from ledgerbox.workflows
            where status in ('queued', 'running', 'failed', 'compensation_failed') group by kind, status) w),
    'held_back', (select coalesce(json_agg(json_build_object('kind', kind, 'workflows', workflows)), '[]')
      from (select kind, count(*) as workflows from ledgerbox.workflows where held_back is not null group by kind) h)
  ) as reading`;

/** An amount of minor units as a gauge's number, when a double holds it exactly (|amount| ≤ 2^53 − 1). */
export function exactNumber(amount: bigint): number | undefined {
  return amount <= BigInt(Number.MAX_SAFE_INTEGER) && amount >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(amount) : undefined;
}

/**
 * Registers the database gauges on `registry`. Each scrape reads the database once, however
 * many gauges it collects (prom-client collects them all at once: they share the read in
 * flight). A failed read leaves the gauges empty and ledgerbox_database_up at 0, so one
 * unreachable database does not fail the process metrics scraped beside them.
 * @internal
 */
export function registerDatabaseGauges(db: DatabaseHandle, registry: Registry, onReadError: (error: unknown) => void = () => undefined): void {
  let inFlight: Promise<DatabaseReading | undefined> | undefined;
  const reading = (): Promise<DatabaseReading | undefined> => {
    inFlight ??= (async () => {
      const started = process.hrtime.bigint();
      try {
        const [row] = await queryOnce(db, readingQuery);
        const value = readRow(DatabaseReading, (row as { reading: unknown } | undefined)?.reading, 'metrics');
        readSeconds = Number(process.hrtime.bigint() - started) / 1e9;
        return value;
      } catch (error) {
        onReadError(error);
        return undefined;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };
  let readSeconds = 0;

  /** A gauge filled from the reading at each scrape; emptied when the read fails. */
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (gauge: Gauge<L>, reading: DatabaseReading) => void) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const current = await reading();
        this.reset();
        if (current !== undefined) fill(this, current);
      },
    });

  new Gauge({
    name: 'ledgerbox_database_up',
    help: 'Whether the last read of the database gauges succeeded (1) or failed (0, the gauges are then empty).',
    registers: [registry],
    async collect() {
      this.set((await reading()) === undefined ? 0 : 1);
    },
  });
  new Gauge({
    name: 'ledgerbox_database_read_seconds',
    help: 'How long the last successful read of the database gauges took.',
    registers: [registry],
    async collect() {
      await reading();
      this.set(readSeconds);
    },
  });
  gauge('ledgerbox_queue_jobs', 'Jobs in graphile-worker\'s queue by task and state: ready (due, not locked), scheduled (run_at in the future), locked (running), failed (no attempts left).', ['task', 'state'], (g, r) => {
    for (const row of r.queue) if ((queueStates as readonly string[]).includes(row.state)) g.set({ task: row.task, state: row.state }, row.jobs);
  });
  gauge('ledgerbox_queue_oldest_job_age_seconds', 'How long the oldest ready job has been due (0 when none is waiting).', [], (g, r) => {
    g.set(Math.max(0, r.oldest_ready_age_seconds ?? 0));
  });
  gauge('ledgerbox_money_in_limbo_minor_units', `Money held pending past its expiry or for longer than ${limbo_sla_ms / 3_600_000} h (moneyInLimbo), per currency, in the currency's minor units. A sum beyond 2^53 - 1 is not shown here (see ledgerbox_money_in_limbo_unrepresentable).`, ['currency'], (g, r) => {
    for (const row of r.limbo) {
      const amount = exactNumber(BigInt(row.amount));
      if (amount !== undefined) g.set({ currency: row.currency }, amount);
    }
  });
  gauge('ledgerbox_money_in_limbo_holds', 'Holds in limbo (see ledgerbox_money_in_limbo_minor_units), per currency.', ['currency'], (g, r) => {
    for (const row of r.limbo) g.set({ currency: row.currency }, row.holds);
  });
  gauge('ledgerbox_money_in_limbo_unrepresentable', 'Currencies whose money in limbo exceeds what a metric holds exactly (2^53 - 1 minor units): 1, and read the amount with moneyInLimbo.', ['currency'], (g, r) => {
    for (const row of r.limbo) if (exactNumber(BigInt(row.amount)) === undefined) g.set({ currency: row.currency }, 1);
  });
  gauge('ledgerbox_investigations_open', 'Open investigations and incidents, by severity.', ['severity'], (g, r) => {
    for (const severity of severities) g.set({ severity }, 0);
    for (const row of r.investigations) g.set({ severity: row.severity }, row.open);
  });
  gauge('ledgerbox_reconciliation_findings', 'Findings of the last reconciliation run that finished (clean, warnings or critical), by severity.', ['severity'], (g, r) => {
    if (r.last_run === null) return;
    for (const severity of severities) g.set({ severity }, 0);
    for (const row of r.findings) g.set({ severity: row.severity }, row.findings);
  });
  gauge('ledgerbox_reconciliation_last_run_age_seconds', 'Seconds since the last reconciliation run that finished (clean, warnings or critical; a failed run does not count), labelled with its status; absent before the first.', ['status'], (g, r) => {
    if (r.last_run !== null) g.set({ status: r.last_run.status }, Math.max(0, r.last_run.age_seconds));
  });
  gauge('ledgerbox_workflows', `Workflows not finished, by kind and status (${activeStatuses.join(', ')}).`, ['kind', 'status'], (g, r) => {
    for (const row of r.workflows) g.set({ kind: row.kind, status: row.status }, row.workflows);
  });
  gauge('ledgerbox_workflows_held_back', 'Workflows left alone by workers that lack their kind or version, by kind.', ['kind'], (g, r) => {
    for (const row of r.held_back) g.set({ kind: row.kind }, row.workflows);
  });
}
