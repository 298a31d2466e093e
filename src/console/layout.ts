import { Html, html, type HtmlValue } from './html.js';
import type { Exponents } from './format.js';
import type { Session } from '../db/handle.js';

/** What every page is rendered with. */
export interface PageContext {
  db: Session;
  /** Where the console is mounted (`''` or `/ledgerbox`): every link starts with it. */
  base: string;
  url: URL;
  exponents: Exponents;
  /** Whether actions are enabled: only then are their forms shown (and accepted). */
  actions: boolean;
  csrfToken: string;
  /** Milliseconds after which a pending hold counts as money in limbo. */
  limboSla_ms: number;
}

export interface Page {
  title: string;
  body: Html;
  status?: number;
}

const sections: readonly (readonly [string, string])[] = [
  ['/', 'Overview'],
  ['/workflows', 'Workflows'],
  ['/failed-jobs', 'Failed jobs'],
  ['/stuck', 'Stuck'],
  ['/limbo', 'Holds in limbo'],
  ['/reconciliation', 'Reconciliation'],
  ['/alerts', 'Alerts'],
];

/** Plain CSS, no script: every page reads without JavaScript, and tables scroll on a phone. */
const style = `
  :root { color-scheme: light dark; --line: #8884; --muted: #777; --bad: #c0392b; --warn: #b7791f; --good: #2f855a; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; }
  header { padding: .6rem 1rem; border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: .3rem 1rem; align-items: baseline; }
  header strong { margin-right: .5rem; }
  nav { display: flex; flex-wrap: wrap; gap: .2rem .8rem; }
  nav a { white-space: nowrap; }
  nav a[aria-current=page] { font-weight: 600; text-decoration: none; }
  main { padding: 1rem; max-width: 1200px; }
  h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
  h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
  td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .85rem; }
  .muted { color: var(--muted); }
  .critical, .failed, .compensation_failed { color: var(--bad); font-weight: 600; }
  .warning, .warnings, .retrying, .compensated { color: var(--warn); }
  .clean, .completed, .posted { color: var(--good); }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: .8rem; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: .7rem .9rem; }
  .card .figure { font-size: 1.5rem; font-variant-numeric: tabular-nums; }
  .flash { border: 1px solid var(--line); border-left: 4px solid var(--good); padding: .5rem .8rem; margin-bottom: 1rem; }
  .flash.error { border-left-color: var(--bad); }
  form.action { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .3rem 0; }
  form.action input[name=reason] { min-width: 14rem; flex: 1; padding: .25rem; }
  .pager { margin-top: .8rem; }
  svg.trend { width: 100%; max-width: 640px; height: auto; }
  details summary { cursor: pointer; }
  /* a phone: each row becomes a small card of label: value lines, so nothing needs a sideways scroll */
  @media (max-width: 640px) {
    table.rows, table.rows tbody, table.rows tr, table.rows td { display: block; width: 100%; }
    table.rows thead { display: none; }
    table.rows tr { border-bottom: 1px solid var(--line); padding: .3rem 0; }
    table.rows td { border: 0; padding: .1rem .2rem; text-align: left; }
    table.rows td[data-label]:not([data-label=""])::before { content: attr(data-label) ": "; color: var(--muted); }
    main { padding: .6rem; }
  }
`;

export function layout(context: PageContext, page: Page, flash?: { text: string; error: boolean }): Html {
  const path = context.url.pathname;
  const current = (href: string) => (href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`));
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title} · ledgerbox</title><style>${new Html(style)}</style></head>
<body><header><strong>ledgerbox</strong><nav>${sections.map(
    ([href, label]) => html`<a href="${context.base}${href}"${current(href) ? new Html(' aria-current="page"') : ''}>${label}</a>`,
  )}</nav><span class="muted">${context.actions ? 'actions enabled' : 'read-only'}</span></header>
<main>${flash === undefined ? '' : html`<div class="flash${flash.error ? ' error' : ''}" role="status">${flash.text}</div>`}<h1>${page.title}</h1>${page.body}</main></body></html>`;
}

/** A table in a horizontally scrolling box; `numeric` columns are right-aligned. */
export function table(head: readonly string[], rows: readonly (readonly HtmlValue[])[], options: { numeric?: readonly number[]; empty?: string } = {}): Html {
  if (rows.length === 0) return html`<p class="muted">${options.empty ?? 'Nothing here.'}</p>`;
  const numeric = new Set(options.numeric ?? []);
  const cls = (index: number) => (numeric.has(index) ? new Html(' class="num"') : '');
  return html`<div class="scroll"><table class="rows"><thead><tr>${head.map((name, index) => html`<th${cls(index)}>${name}</th>`)}</tr></thead>
<tbody>${rows.map((row) => html`<tr>${row.map((value, index) => html`<td${cls(index)} data-label="${head[index] ?? ''}">${value}</td>`)}</tr>`)}</tbody></table></div>`;
}

export function link(context: PageContext, href: string, text: HtmlValue): Html {
  return html`<a href="${context.base}${href}">${text}</a>`;
}

/** A word styled by what it says (`critical`, `failed`, `clean`, …). */
export function badge(word: string): Html {
  return html`<span class="${word}">${word}</span>`;
}

/** "Older →" when the page was full: the next page starts after the last row shown. */
export function pager(context: PageContext, shown: number, limit: number, next: Record<string, string>): Html {
  if (shown < limit) return html``;
  const search = new URLSearchParams(context.url.searchParams);
  for (const [name, value] of Object.entries(next)) search.set(name, value);
  return html`<p class="pager"><a rel="next" href="${context.base}${context.url.pathname}?${search.toString()}">Older →</a></p>`;
}

/**
 * The form of one operator action: a required reason (it goes to the audit row), the CSRF
 * field, and the button. Shown only when actions are enabled.
 */
export function actionForm(context: PageContext, action: string, label: string, fields: Record<string, string>): Html {
  if (!context.actions) return html``;
  const returnTo = `${context.url.pathname}${context.url.search}`;
  return html`<form class="action" method="post" action="${context.base}/actions/${action}">
<input type="hidden" name="csrf" value="${context.csrfToken}"><input type="hidden" name="return_to" value="${returnTo}">
${Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<input name="reason" required minlength="3" maxlength="500" placeholder="reason (kept in the audit log)" aria-label="reason for ${label}">
<button type="submit">${label}</button></form>`;
}

/** A long text (an error with its stack): its first line, the rest behind a disclosure that needs no script. */
export function longText(text: string | null): Html {
  if (text === null || text === '') return html``;
  const newline = text.indexOf('\n');
  if (newline < 0 && text.length <= 200) return html`<pre>${text}</pre>`;
  const first = newline < 0 ? `${text.slice(0, 200)}…` : text.slice(0, newline);
  return html`<details><summary>${first}</summary><pre>${text}</pre></details>`;
}
