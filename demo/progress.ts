// Progress while the day runs, read from the database: the run's workflows by status, and the
// steps ledgerbox is retrying (ledgerbox.failed_jobs, state 'retrying').
import cliProgress from 'cli-progress';
import type pg from 'pg';

export interface Counts {
  completed: number;
  compensated: number;
  /** failed, compensation under way (or compensation_failed) */
  failed: number;
  running: number;
  retrying: number;
}

export async function readCounts(pool: pg.Pool, run: string): Promise<Counts> {
  const { rows } = await pool.query<{ completed: number; compensated: number; failed: number; running: number; retrying: number }>(
    `select
       count(*) filter (where w.status = 'completed')::int as completed,
       count(*) filter (where w.status = 'compensated')::int as compensated,
       count(*) filter (where w.status in ('failed', 'compensation_failed'))::int as failed,
       count(*) filter (where w.status = 'running')::int as running,
       (select count(*)::int from ledgerbox.failed_jobs f
         where f.state = 'retrying' and f.workflow_id in (select id from ledgerbox.workflows where key like $1)) as retrying
     from ledgerbox.workflows w where w.key like $1`,
    [`${run}:%`],
  );
  return rows[0]!;
}

export interface ProgressView {
  phase: string;
  exchanges: number;
  placed: number;
  transfers: number;
  statements: { done: number; total: number };
  counts: Counts;
}

/** A live bar on a terminal (cli-progress); a plain line every second otherwise (CI, pipes). */
export function startProgress(stream: NodeJS.WriteStream = process.stdout): { update(view: ProgressView): void; stop(): void } {
  const started = Date.now();
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          '{phase} [{bar}] {value}/{total} exchanges finished | placed {placed} | completed {completed} | retrying {retrying} | failed {failed} | compensated {compensated} | statements {statements} | {duration}s',
        hideCursor: true,
        barsize: 24,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    let begun = false;
    return {
      update(view) {
        const payload = { phase: view.phase.padEnd(10), placed: view.placed, ...view.counts, statements: `${view.statements.done}/${view.statements.total}` };
        const finished = view.counts.completed + view.counts.compensated;
        if (!begun) {
          begun = true;
          bar.start(view.exchanges, finished, payload);
        } else bar.update(finished, payload);
      },
      stop() {
        if (begun) bar.stop();
        begun = false;
      },
    };
  }
  let last = 0;
  let latest: ProgressView | undefined;
  const print = (view: ProgressView) => {
    const c = view.counts;
    stream.write(
      `[${((Date.now() - started) / 1000).toFixed(1)}s] ${view.phase}: placed ${view.placed}/${view.exchanges} exchanges, ${view.transfers} transfers · ` +
        `completed ${c.completed} · retrying ${c.retrying} · failed ${c.failed} · compensated ${c.compensated} · running ${c.running} · ` +
        `statements ${view.statements.done}/${view.statements.total}\n`,
    );
  };
  return {
    update(view) {
      latest = view;
      if (Date.now() - last < 1_000) return;
      last = Date.now();
      print(view);
    },
    stop() {
      if (latest !== undefined) print(latest);
      latest = undefined;
    },
  };
}
