import type { Command } from 'commander';
import { listFailedJobs } from '../operations/inspection.js';
import { retryJob, retryTaskJobs } from '../operations/recovery.js';
import { parseJobId, parsePositiveInteger, parseReason, parseTimestamp, runCommand, withPool } from './command.js';
import { currencyExponents, errorText, money, renderJson, renderTable, shorten } from './render.js';

/** `ledgerbox jobs failed` and `ledgerbox jobs retry`. */
export function registerJobsCommands(program: Command, setExitCode: (code: number) => void): void {
  const jobs = program.command('jobs').description('failed jobs: what failed, for whom, how much money, and why; run them again');

  jobs
    .command('failed')
    .description("failed jobs, newest first, with the money they concern; state 'failed' has no attempts left, 'retrying' will run again")
    .option('--task <task>', 'only this task (e.g. ledgerbox:step, or one of your own)')
    .option('--limit <n>', 'at most this many jobs', parsePositiveInteger, 100)
    .option('--json', 'machine-readable JSON (amounts in minor units, as strings), full errors with stacks')
    .action(async (options: { task?: string; limit: number; json?: boolean }) => {
      setExitCode(
        await runCommand('jobs failed', () =>
          withPool(async (pool) => {
            const rows = await listFailedJobs(pool, { limit: options.limit, ...(options.task === undefined ? {} : { task: options.task }) });
            if (options.json) return void process.stdout.write(renderJson(rows));
            if (rows.length === 0) return void process.stdout.write(`no failed jobs${options.task === undefined ? '' : ` of task ${options.task}`}\n`);
            const exponents = await currencyExponents(pool);
            process.stdout.write(
              renderTable(
                ['job', 'task', 'state', 'attempts', 'failed at', 'workflow', 'step', 'account', 'money', 'hold', 'last error'],
                rows.map((row) => [
                  row.job_id,
                  row.task,
                  row.running ? `${row.state} (running)` : row.state,
                  `${row.attempts}/${row.max_attempts}`,
                  row.failed_at,
                  row.workflow_id === null ? '' : `${row.workflow_id}\n${row.workflow_kind ?? ''} ${row.workflow_status ?? ''}`.trim(),
                  row.step,
                  row.source_account,
                  money(row.amount, row.currency, exponents),
                  row.hold_id,
                  errorText(row.last_error, 1),
                ]),
              ),
            );
            const failed = rows.filter((row) => row.state === 'failed').length;
            process.stdout.write(`${rows.length} failed job${rows.length === 1 ? '' : 's'}: ${failed} with no attempts left, ${rows.length - failed} retrying\n`);
          }),
        ),
      );
    });

  jobs
    .command('retry')
    .description('run a failed job again once its cause is fixed (a failed workflow step resumes its workflow), or every failed job of a task')
    .argument('[id]', 'the job id, as in `ledgerbox jobs failed`', parseJobId)
    .option('--task <task>', 'instead of one id: every job of this task that failed for good and is not running')
    .option('--since <time>', 'with --task: only jobs that failed since this ISO 8601 time', parseTimestamp)
    .requiredOption('--reason <text>', 'what was fixed: recorded in ledgerbox.operator_actions with your database user', parseReason)
    .action(async (id: string | undefined, options: { task?: string; since?: string; reason: string }, command: Command) => {
      if ((id === undefined) === (options.task === undefined)) command.error('error: give a job id or --task <task>, not both and not neither', { exitCode: 2 });
      if (options.since !== undefined && options.task === undefined) command.error('error: --since goes with --task', { exitCode: 2 });
      setExitCode(
        await runCommand('jobs retry', () =>
          withPool(async (pool) => {
            if (id !== undefined) {
              const result = await retryJob(pool, { jobId: id, reason: options.reason });
              process.stdout.write(`job ${id}: ${result} (recorded in ledgerbox.operator_actions)\n`);
              return;
            }
            const task = options.task!;
            const count = await retryTaskJobs(pool, { task, reason: options.reason, ...(options.since === undefined ? {} : { since: options.since }) });
            process.stdout.write(
              `${count} failed job${count === 1 ? '' : 's'} of ${shorten(task, 100)}${options.since === undefined ? '' : ` since ${options.since}`} rescheduled (recorded in ledgerbox.operator_actions)\n`,
            );
          }),
        ),
      );
    });
}
