import { html } from '../html.js';
import { badge, link, pager, table, type Page, type PageContext } from '../layout.js';
import { formatAmount, formatTime } from '../format.js';
import { selectFindingGroups, selectFindings, selectRun, selectRunReportText, selectRuns, selectTrend } from '../console-queries.js';
import { idOrUndefined, notFound } from './params.js';
import { trendChart } from './trend-chart.js';

const runs_per_page = 30;
const findings_per_page = 100;

export async function runsPage(context: PageContext): Promise<Page> {
  const before = idOrUndefined(context.url.searchParams.get('before'));
  const [runs, trend] = await Promise.all([selectRuns(context.db, { before, limit: runs_per_page }), before === undefined ? selectTrend(context.db, 30) : Promise.resolve([])]);
  const last = runs.at(-1);
  const body = html`
${before === undefined ? trendChart(trend) : ''}
${table(
  ['run', 'trigger', 'status', 'critical', 'warnings', 'entries checked', 'headline', 'started', 'report'],
  runs.map((run) => [
    link(context, `/reconciliation/${run.id}`, run.id),
    run.trigger,
    badge(run.status),
    run.critical,
    run.warnings,
    run.entries_checked.toString(),
    run.headline ?? '',
    formatTime(run.started_at),
    run.has_report ? link(context, `/reconciliation/${run.id}/report.txt`, run.report_sent_at === null ? 'text' : `sent ${formatTime(run.report_sent_at)}`) : '',
  ]),
  { numeric: [3, 4, 5], empty: 'No reconciliation has run. `npx ledgerbox reconcile` runs one.' },
)}
${last === undefined ? '' : pager(context, runs.length, runs_per_page, { before: last.id })}`;
  return { title: 'Reconciliation runs', body };
}

export async function runPage(context: PageContext, id: string): Promise<Page> {
  const runId = idOrUndefined(id);
  if (runId === undefined) return notFound(`No reconciliation run ${id}.`);
  const after = idOrUndefined(context.url.searchParams.get('after'));
  const kind = context.url.searchParams.get('kind') || undefined;
  const [run, groups, findings] = await Promise.all([
    selectRun(context.db, runId),
    selectFindingGroups(context.db, runId),
    selectFindings(context.db, runId, { after, kind, limit: findings_per_page }),
  ]);
  if (run === undefined) return notFound(`No reconciliation run ${runId}.`);
  const money = (amount: bigint | null, currency: string | null) => (amount === null ? '' : formatAmount(amount, currency, context.exponents));
  const last = findings.at(-1);
  const body = html`
<p>${badge(run.status)} — ${run.headline ?? ''}</p>
<p class="muted">${run.trigger}, started ${formatTime(run.started_at)}, finished ${formatTime(run.finished_at)}, ${run.entries_checked.toString()} entries checked.
${run.has_report ? link(context, `/reconciliation/${run.id}/report.txt`, 'The report as emailed (text)') : ''}</p>
<h2>Findings by kind</h2>
${table(
  ['kind', 'severity', 'findings'],
  groups.map((group) => [link(context, `/reconciliation/${run.id}?kind=${encodeURIComponent(group.kind)}`, group.kind), badge(group.severity), group.findings]),
  { numeric: [2], empty: 'Clean: every balance equals its entries.' },
)}
<h2>Findings${kind === undefined ? '' : `: ${kind}`}</h2>
${table(
  ['id', 'severity', 'kind', 'subject', 'account', 'expected', 'actual', 'difference', 'detail'],
  findings.map((f) => [f.id, badge(f.severity), f.kind, f.subject, f.account ?? '', money(f.expected, f.currency), money(f.actual, f.currency), money(f.difference, f.currency), html`<pre>${f.detail}</pre>`]),
  { numeric: [5, 6, 7], empty: 'No findings.' },
)}
${last === undefined ? '' : pager(context, findings.length, findings_per_page, { after: last.id })}`;
  return { title: `Reconciliation run ${run.id}`, body };
}

/** The report's text as it was emailed, for a terminal or a ticket. */
export async function runReportText(context: PageContext, id: string): Promise<string | undefined> {
  const runId = idOrUndefined(id);
  if (runId === undefined) return undefined;
  return (await selectRunReportText(context.db, runId)) ?? undefined;
}
