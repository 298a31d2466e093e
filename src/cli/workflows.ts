import type { Command } from 'commander';
import { stuckWorkflows, workflowTimeline } from '../operations/inspection.js';
import { getWorkflow } from '../workflows/start.js';
import { cancelWorkflow, resumeWorkflow } from '../operations/recovery.js';
import { parseInteger, parseReason, parseWorkflowId, runCommand, uuid, withPool } from './command.js';
import { currencyExponents, duration, errorText, money, renderJson, renderTable } from './render.js';

/** `ledgerbox workflow show|resume|cancel` and `ledgerbox workflows stuck`. */
export function registerWorkflowCommands(program: Command, setExitCode: (code: number) => void): void {
  const workflow = program.command('workflow').description('one workflow: its timeline; resume it after a fix, or cancel it');

  workflow
    .command('show')
    .description('the timeline: every step attempt with its error, the transfers and holds made, alerts, operator actions, pending jobs')
    .argument('<id|key>', 'the workflow id, or the key it was started with')
    .option('--json', 'machine-readable JSON, full errors with stacks')
    .action(async (reference: string, options: { json?: boolean }) => {
      setExitCode(
        await runCommand('workflow show', () =>
          withPool(async (pool) => {
            const state = await getWorkflow(pool, uuid.test(reference) ? { id: reference.toLowerCase() } : { key: reference });
            const id = state.id;
            const events = await workflowTimeline(pool, id);
            if (options.json) return void process.stdout.write(renderJson(events));
            const waiting = state.waiting === null ? '' : `, waiting at ${state.waiting.step}${state.waiting.signals.length > 0 ? ` for ${state.waiting.signals.join(' or ')}` : ''} until ${state.waiting.until.toISOString()}`;
            process.stdout.write(`workflow ${id}: ${state.kind} version ${state.version}, key ${state.key}, ${state.status} at ${state.currentStep}${waiting}\n`);
            if (state.failureReason !== null) process.stdout.write(`failed at ${state.failedStep}: ${state.failureReason}\n`);
            if (state.heldBack !== null) process.stdout.write(`held back: ${state.heldBack}\n`);
            process.stdout.write(`timeline, oldest first (errors without stack frames: --json has them)\n`);
            process.stdout.write(
              renderTable(
                ['at', 'event', 'step', 'outcome', 'detail'],
                events.map((event) => [event.at, event.event, event.step, event.outcome, event.event === 'attempt' ? errorText(event.detail, 4) : event.detail]),
              ),
            );
          }),
        ),
      );
    });

  workflow
    .command('resume')
    .description('run a failed workflow again from its failed step (or rerun a failed compensation), once its cause is fixed')
    .argument('<id>', 'the workflow id', parseWorkflowId)
    .requiredOption('--reason <text>', 'what was fixed: recorded in ledgerbox.operator_actions with your database user', parseReason)
    .action(async (id: string, options: { reason: string }) => {
      setExitCode(
        await runCommand('workflow resume', () =>
          withPool(async (pool) => {
            const { step } = await resumeWorkflow(pool, { workflowId: id, reason: options.reason });
            process.stdout.write(`workflow ${id} resumed: step ${step} enqueued (recorded in ledgerbox.operator_actions)\n`);
          }),
        ),
      );
    });

  workflow
    .command('cancel')
    .description('stop a running or failed workflow and compensate it now (void its hold, or reverse what it posted)')
    .argument('<id>', 'the workflow id', parseWorkflowId)
    .requiredOption('--reason <text>', 'why: recorded in ledgerbox.operator_actions with your database user', parseReason)
    .action(async (id: string, options: { reason: string }) => {
      setExitCode(
        await runCommand('workflow cancel', () =>
          withPool(async (pool) => {
            await cancelWorkflow(pool, { workflowId: id, reason: options.reason });
            process.stdout.write(`workflow ${id} cancelled: compensation enqueued (recorded in ledgerbox.operator_actions)\n`);
          }),
        ),
      );
    });

  program
    .command('workflows')
    .description('workflows across the board')
    .command('stuck')
    .description('workflows neither finished nor moving: not terminal and untouched for longer than the threshold, longest first')
    .option('--older-than-minutes <n>', 'untouched for longer than this', parseInteger, 15)
    .option('--json', 'machine-readable JSON (amounts in minor units, as strings)')
    .action(async (options: { olderThanMinutes: number; json?: boolean }) => {
      setExitCode(
        await runCommand('workflows stuck', () =>
          withPool(async (pool) => {
            const rows = await stuckWorkflows(pool, { olderThan_ms: options.olderThanMinutes * 60_000 });
            if (options.json) return void process.stdout.write(renderJson(rows));
            if (rows.length === 0) return void process.stdout.write(`no workflow stuck for more than ${options.olderThanMinutes} minutes\n`);
            const exponents = await currencyExponents(pool);
            process.stdout.write(
              renderTable(
                ['workflow', 'kind', 'key', 'status', 'step', 'stuck for', 'account', 'money', 'pending jobs', 'last error', 'version', 'why'],
                rows.map((row) => [
                  row.workflow_id,
                  row.kind,
                  row.key,
                  row.status,
                  row.current_step,
                  duration(row.stuck_for_ms),
                  row.source_account,
                  money(row.amount, row.currency, exponents),
                  row.pending_jobs,
                  errorText(row.last_error, 1),
                  row.version,
                  row.reason,
                ]),
              ),
            );
            process.stdout.write(`${rows.length} stuck workflow${rows.length === 1 ? '' : 's'} (0 pending jobs on a running one: nothing will move it; resume or cancel it)\n`);
          }),
        ),
      );
    });
}
