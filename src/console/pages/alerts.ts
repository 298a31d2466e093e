import { html } from '../html.js';
import { actionForm, badge, link, pager, table, type Page, type PageContext } from '../layout.js';
import { formatTime } from '../format.js';
import { selectAlerts, selectInvestigations, selectOperatorActions } from '../console-queries.js';
import { idOrUndefined } from './params.js';
import { severities } from '../../severities.js';

const alerts_per_page = 50;

export async function alertsPage(context: PageContext): Promise<Page> {
  const params = context.url.searchParams;
  const severity = severities.find((value) => value === params.get('severity'));
  const before = idOrUndefined(params.get('before'));
  const [investigations, alerts, actions] = await Promise.all([
    before === undefined ? selectInvestigations(context.db, { open: 100, closed: 10 }) : Promise.resolve([]),
    selectAlerts(context.db, { severity, before, limit: alerts_per_page }),
    before === undefined ? selectOperatorActions(context.db, 20) : Promise.resolve([]),
  ]);
  const open = investigations.filter((row) => row.closed_at === null);
  const closed = investigations.filter((row) => row.closed_at !== null);
  const last = alerts.at(-1);
  const body = html`
${before !== undefined
  ? ''
  : html`<h2>Open investigations</h2>
${table(
  ['id', 'severity', 'title', 'opened', 'alerts since', ''],
  open.map((row) => [row.id, badge(row.severity), row.title, formatTime(row.opened_at), row.alerts, actionForm(context, 'close-investigation', 'Close', { investigation_id: row.id })]),
  { numeric: [4], empty: 'No open investigations.' },
)}
<h2>Recently closed</h2>
${table(
  ['id', 'severity', 'title', 'opened', 'closed', 'by', 'resolution'],
  closed.map((row) => [row.id, badge(row.severity), row.title, formatTime(row.opened_at), formatTime(row.closed_at), row.closed_by ?? '', row.resolution ?? '']),
  { empty: 'None closed yet.' },
)}`}
<h2>Alerts${severity === undefined ? '' : `: ${severity}`}</h2>
<p>${severities.map((value) => html`${link(context, `/alerts?severity=${value}`, value)} · `)}${link(context, '/alerts', 'all')}</p>
${table(
  ['id', 'severity', 'kind', 'message', 'delivered', 'at'],
  alerts.map((alert) => [
    alert.id,
    badge(alert.severity),
    alert.kind,
    alert.workflow_id === null ? html`<pre>${alert.message}</pre>` : html`${link(context, `/workflows/${alert.workflow_id}`, 'workflow')} <pre>${alert.message}</pre>`,
    alert.delivered ?? 'not yet',
    formatTime(alert.created_at),
  ]),
  { empty: 'No alerts.' },
)}
${last === undefined ? '' : pager(context, alerts.length, alerts_per_page, { before: last.id })}
${before !== undefined
  ? ''
  : html`<h2>Operator actions</h2>
${table(
  ['id', 'action', 'target', 'reason', 'by', 'at'],
  actions.map((row) => [row.id, row.action, /^[0-9a-f-]{36}$/.test(row.target) ? link(context, `/workflows/${row.target}`, row.target) : row.target, row.reason, row.performed_by, formatTime(row.performed_at)]),
  { empty: 'No operator has acted yet.' },
)}`}`;
  return { title: 'Alerts and investigations', body };
}
