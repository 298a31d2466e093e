import { html } from '../html.js';
import { actionForm, badge, link, longText, table, type Page, type PageContext } from '../layout.js';
import { formatAge, formatAmount, formatTime } from '../format.js';
import { alertSeverity } from '../../severities.js';
import { selectFailedJobs, selectMoneyInLimbo, selectStuckWorkflows } from '../../operations/operations-queries.js';

/** The same reads as `ledgerbox jobs failed`, `workflows stuck` and `holds limbo`, with their money. */

const failed_jobs_max = 200;

export async function failedJobsPage(context: PageContext): Promise<Page> {
  const task = context.url.searchParams.get('task') || undefined;
  const rows = await selectFailedJobs(context.db, { task, limit: failed_jobs_max });
  const money = (amount: bigint | null, currency: string | null) => (amount === null ? '' : formatAmount(amount, currency, context.exponents));
  const body = html`
<p class="muted">Jobs whose last attempt failed: <strong>failed</strong> ones have no attempt left, <strong>retrying</strong> ones will run again. Newest first${rows.length === failed_jobs_max ? `, the first ${failed_jobs_max}` : ''}.</p>
<form method="get" action="${context.base}/failed-jobs" class="action"><label>task <input name="task" value="${task ?? ''}"></label><button type="submit">Filter</button></form>
${table(
  ['job', 'task', 'state', 'severity', 'attempts', 'workflow', 'money', 'error', 'failed at', ''],
  rows.map((row) => [
    row.job_id,
    row.task,
    badge(row.state),
    // the severity of the job_failed alert it raised, from the same table (src/severities.ts)
    row.state === 'failed' ? badge(alertSeverity('job_failed')) : '',
    `${row.attempts}/${row.max_attempts}`,
    row.workflow_id === null ? '' : html`${link(context, `/workflows/${row.workflow_id}`, row.workflow_id.slice(0, 8))} ${row.step ?? ''} ${row.workflow_status === null ? '' : badge(row.workflow_status)}`,
    row.amount === null ? '' : `${money(row.amount, row.currency)} ${row.source_account ?? ''} → ${row.target_account ?? ''}`,
    longText(row.last_error),
    formatTime(row.failed_at),
    row.state === 'failed' ? actionForm(context, 'retry-job', 'Retry', { job_id: row.job_id }) : '',
  ]),
  { empty: 'No failed jobs.' },
)}`;
  return { title: 'Failed jobs', body };
}

export async function stuckPage(context: PageContext): Promise<Page> {
  const minutes = Number.parseInt(context.url.searchParams.get('older_than_minutes') ?? '15', 10);
  const olderThan_ms = Number.isSafeInteger(minutes) && minutes >= 0 && minutes <= 525_600 ? minutes * 60_000 : 15 * 60_000;
  const rows = await selectStuckWorkflows(context.db, olderThan_ms);
  const body = html`
<p class="muted">Workflows not finished and untouched for ${olderThan_ms / 60_000} minutes or more, held back by workers that lack their version, or waiting long past their time.</p>
${table(
  ['workflow', 'kind', 'key', 'status', 'step', 'stuck for', 'why', 'money', 'last error'],
  rows.map((row) => [
    link(context, `/workflows/${row.workflow_id}`, row.workflow_id.slice(0, 8)),
    `${row.kind} v${row.version}`,
    row.key,
    badge(row.status),
    row.current_step,
    formatAge(row.stuck_for_ms),
    row.reason,
    row.amount === null ? '' : formatAmount(row.amount, row.currency, context.exponents),
    longText(row.last_error),
  ]),
  { empty: 'Nothing is stuck.' },
)}`;
  return { title: 'Stuck workflows', body };
}

export async function limboPage(context: PageContext): Promise<Page> {
  const rows = await selectMoneyInLimbo(context.db, context.limboSla_ms);
  const body = html`
<p class="muted">Holds still pending past their expiry, or older than ${formatAge(context.limboSla_ms)}: money that is neither where it came from nor where it was going.</p>
${table(
  ['hold', 'amount', 'from', 'to', 'held since', 'expires', 'why', 'workflow'],
  rows.map((row) => [
    html`<code>${row.hold_id.slice(0, 8)}</code> ${row.key}`,
    formatAmount(row.amount, row.currency, context.exponents),
    row.from_account,
    row.to_account,
    formatTime(row.created_at),
    formatTime(row.expires_at),
    row.why,
    row.workflow_id === null ? '' : html`${link(context, `/workflows/${row.workflow_id}`, row.workflow_id.slice(0, 8))} ${row.workflow_status === null ? '' : badge(row.workflow_status)}`,
  ]),
  { numeric: [1], empty: 'No money in limbo.' },
)}`;
  return { title: 'Holds in limbo', body };
}
