import { html } from '../html.js';
import { actionForm, badge, link, longText, pager, table, type Page, type PageContext } from '../layout.js';
import { formatAmount, formatTime } from '../format.js';
import { selectWorkflow, selectWorkflowTransfers, selectWorkflows } from '../console-queries.js';
import { selectTimeline } from '../../operations/operations-queries.js';
import { notFound, uuidOrUndefined } from './params.js';

const statuses = ['queued', 'running', 'failed', 'compensation_failed', 'completed', 'compensated'];
const page_size = 50;

/** Workflows by last change, filtered by status or kind, paged by key (no OFFSET). */
export async function workflowsPage(context: PageContext): Promise<Page> {
  const params = context.url.searchParams;
  const status = params.get('status') ?? undefined;
  const kind = params.get('kind') ?? undefined;
  const beforeAt = params.get('before_at') ?? undefined;
  const beforeId = uuidOrUndefined(params.get('before_id'));
  const before = beforeAt !== undefined && beforeId !== undefined && !Number.isNaN(Date.parse(beforeAt)) ? { at: beforeAt, id: beforeId } : undefined;
  const rows = await selectWorkflows(context.db, { status: status || undefined, kind: kind || undefined, before, limit: page_size });
  const last = rows.at(-1);
  const body = html`
<form method="get" action="${context.base}/workflows" class="action">
  <label>status <select name="status"><option value="">any</option>${statuses.map((s) => html`<option${s === status ? html` selected` : ''}>${s}</option>`)}</select></label>
  <label>kind <input name="kind" value="${kind ?? ''}" size="16"></label>
  <button type="submit">Filter</button>
</form>
${table(
  ['workflow', 'kind', 'key', 'status', 'step', 'why', 'changed'],
  rows.map((row) => [link(context, `/workflows/${row.id}`, row.id.slice(0, 8)), row.kind, row.key, badge(row.status), row.current_step, row.failure_reason ?? '', formatTime(row.updated_at)]),
  { empty: 'No workflow matches.' },
)}
${last === undefined ? '' : pager(context, rows.length, page_size, { before_at: last.updated_at_key, before_id: last.id })}`;
  return { title: status ? `Workflows: ${status}` : 'Workflows', body };
}

/** One workflow: what it is, every attempt with its full error, its holds and transfers, alerts, operator actions. */
export async function workflowPage(context: PageContext, id: string): Promise<Page> {
  const workflowId = uuidOrUndefined(id);
  if (workflowId === undefined) return notFound(`No workflow ${id}: a workflow id is a UUID.`);
  const [workflow, transfers, timeline] = await Promise.all([
    selectWorkflow(context.db, workflowId),
    selectWorkflowTransfers(context.db, workflowId),
    selectTimeline(context.db, workflowId),
  ]);
  if (workflow === undefined) return notFound(`No workflow ${workflowId}.`);
  const money = (amount: bigint, currency: string) => formatAmount(amount, currency, context.exponents);
  const legs = (transfer: (typeof transfers)[number]) =>
    transfer.legs.map((leg) => `${leg.account} ${money(leg.amount, leg.currency)}${leg.phase === 'pending' ? ' (pending)' : ''}`).join('; ');
  // The view's transfer events print minor units; the console shows its own, in the currency's units.
  const events = [
    ...timeline.filter((event) => event.event !== 'transfer').map((event) => ({ at: event.at, event: event.event, step: event.step, outcome: event.outcome, detail: event.detail ?? '' })),
    ...transfers.map((transfer) => ({ at: transfer.created_at, event: 'transfer', step: transfer.kind, outcome: transfer.status, detail: `${transfer.key}: ${legs(transfer)}` })),
  ].sort((a, b) => a.at.getTime() - b.at.getTime());
  const open = workflow.status === 'running' || workflow.status === 'failed' || workflow.status === 'compensation_failed' || workflow.status === 'queued';
  const body = html`
<div class="scroll"><table>
  <tr><th>id</th><td><code>${workflow.id}</code></td></tr>
  <tr><th>kind</th><td>${workflow.kind} (version ${workflow.version})</td></tr>
  <tr><th>key</th><td>${workflow.key}</td></tr>
  <tr><th>status</th><td>${badge(workflow.status)}${workflow.held_back === null ? '' : html` <span class="warning">held back: ${workflow.held_back}</span>`}</td></tr>
  <tr><th>step</th><td>${workflow.current_step}${workflow.failed_step === null ? '' : html` (failed at <strong>${workflow.failed_step}</strong>)`}</td></tr>
  ${workflow.failure_reason === null ? '' : html`<tr><th>why</th><td><pre>${workflow.failure_reason}</pre></td></tr>`}
  ${workflow.subject_key === null ? '' : html`<tr><th>subject</th><td>${workflow.subject_key}</td></tr>`}
  <tr><th>started</th><td>${formatTime(workflow.created_at)}</td></tr>
  <tr><th>changed</th><td>${formatTime(workflow.updated_at)}</td></tr>
</table></div>
${open && context.actions
  ? html`<h2>Actions</h2>
${actionForm(context, 'resume-workflow', 'Resume', { workflow_id: workflow.id })}
${actionForm(context, 'cancel-workflow', 'Cancel (compensate)', { workflow_id: workflow.id })}`
  : ''}
<h2>Holds and transfers</h2>
${table(
  ['transfer', 'kind', 'what became of it', 'legs', 'at', 'effective'],
  transfers.map((t) => [html`<code>${t.id.slice(0, 8)}</code> ${t.key}`, t.kind, t.status === null ? '' : badge(t.status), legs(t), formatTime(t.created_at), formatTime(t.effective_at)]),
  { empty: 'This workflow has moved no money.' },
)}
<h2>Timeline</h2>
${table(
  ['at', 'event', 'step', 'outcome', 'detail'],
  events.map((event) => [formatTime(event.at), event.event, event.step ?? '', event.outcome === null ? '' : badge(event.outcome), longText(event.detail)]),
)}
<h2>Subject</h2><pre>${workflow.subject}</pre>`;
  return { title: `Workflow ${workflow.kind} ${workflow.key}`, body };
}
