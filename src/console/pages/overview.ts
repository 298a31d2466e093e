import { html } from '../html.js';
import { badge, link, table, type Page, type PageContext } from '../layout.js';
import { formatAmount, formatTime } from '../format.js';
import { selectAlerts, selectLimboTotals, selectMoneyMovedToday, selectRuns, selectTrend, selectWorkflowCounts } from '../console-queries.js';
import { trendChart } from './trend-chart.js';

/** What an operator wants first: is money moving, is any stuck, did last night's run find anything. */
export async function overviewPage(context: PageContext): Promise<Page> {
  const { db } = context;
  const [moved, counts, limbo, [lastRun], trend, alerts] = await Promise.all([
    selectMoneyMovedToday(db),
    selectWorkflowCounts(db),
    selectLimboTotals(db, context.limboSla_ms),
    selectRuns(db, { limit: 1 }),
    selectTrend(db, 14),
    selectAlerts(db, { limit: 5 }),
  ]);
  const money = (amount: bigint, currency: string) => formatAmount(amount, currency, context.exponents);
  const card = (title: string, figure: string | number, href: string, note = '') =>
    html`<div class="card"><div class="muted">${title}</div><div class="figure">${link(context, href, String(figure))}</div><div class="muted">${note}</div></div>`;
  const limboHolds = limbo.reduce((sum, row) => sum + row.holds, 0);
  const body = html`
<section class="cards" aria-label="workflows">
  ${card('Workflows running', counts.running, '/workflows?status=running', counts.queued > 0 ? `${counts.queued} queued behind a subject` : '')}
  ${card('Failed (not compensated)', counts.failed, '/workflows?status=failed', 'need an operator')}
  ${card('Compensated today', counts.compensated_today, '/workflows?status=compensated', 'money given back')}
  ${card('Completed today', counts.completed_today, '/workflows?status=completed')}
  ${card('Holds in limbo', limboHolds, '/limbo', limbo.map((row) => money(row.amount, row.currency)).join(', ') || 'none')}
</section>
<h2>Money moved today (UTC)</h2>
${table(
  ['currency', 'credited (posted)', 'transfers'],
  moved.map((row) => [row.currency, money(row.credited, row.currency), row.transfers]),
  { numeric: [1, 2], empty: 'No money posted today.' },
)}
<h2>Money in limbo</h2>
${table(
  ['currency', 'held', 'holds'],
  limbo.map((row) => [row.currency, money(row.amount, row.currency), row.holds]),
  { numeric: [1, 2], empty: 'No hold is past its time.' },
)}
<h2>Last reconciliation</h2>
${lastRun === undefined
  ? html`<p class="muted">None has run. <code>npx ledgerbox reconcile</code> runs one.</p>`
  : html`<p>${link(context, `/reconciliation/${lastRun.id}`, `Run ${lastRun.id}`)}: ${badge(lastRun.status)} — ${lastRun.headline ?? ''}
      <span class="muted">(${formatTime(lastRun.finished_at ?? lastRun.started_at)})</span></p>`}
${trendChart(trend)}
<h2>Latest alerts</h2>
${table(
  ['id', 'severity', 'kind', 'message', 'at'],
  alerts.map((alert) => [alert.id, badge(alert.severity), alert.kind, alert.workflow_id === null ? alert.message : link(context, `/workflows/${alert.workflow_id}`, alert.message), formatTime(alert.created_at)]),
  { empty: 'No alerts.' },
)}
<p>${link(context, '/alerts', 'All alerts and investigations →')}</p>`;
  return { title: 'Overview', body };
}
