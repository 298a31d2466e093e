import type { ReportChart, ReportDocument, ReportSection, ReportTable } from './document.js';

/**
 * The HTML part. Mail clients drop <style> blocks and block remote content, so every style is
 * inline and nothing is loaded from outside. Tables sit in a scrolling box no wider than the
 * screen, amounts never wrap, and wide tables are laid out as one small block per row:
 * readable on a phone.
 * Every string from the document is escaped.
 */
export function renderHtml(document: ReportDocument): string {
  const banner = banners[document.status];
  const facts = document.facts
    .map(([label, value]) => `<tr><th scope="row" style="${styles.factLabel}">${escapeHtml(label)}</th><td style="${styles.factValue}">${escapeHtml(value)}</td></tr>`)
    .join('');
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(document.subject)}</title></head>`,
    `<body style="${styles.body}">`,
    `<div style="${styles.page}">`,
    `<h1 style="${styles.title}">${escapeHtml(document.subject)}</h1>`,
    `<p style="${styles.banner}background:${banner.background};color:${banner.color};border-left:4px solid ${banner.color};">${escapeHtml(document.headline)}</p>`,
    `<table style="${styles.table}">${facts}</table>`,
    ...document.sections.map(section),
    `<p style="${styles.footer}">${escapeHtml(document.footer)}</p>`,
    '</div>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function section(part: ReportSection): string {
  const color = part.tone === 'critical' ? banners.critical.color : part.tone === 'warning' ? banners.warnings.color : '#1a1a1a';
  return [
    `<h2 style="${styles.heading}color:${color};">${escapeHtml(part.title)}</h2>`,
    ...part.paragraphs.map((paragraph) => `<p style="${styles.paragraph}">${escapeHtml(paragraph)}</p>`),
    ...(part.table === undefined ? [] : [table(part.table)]),
    ...(part.chart === undefined ? [] : [chart(part.chart)]),
  ].join('\n');
}

function table(data: ReportTable): string {
  const stacked = data.columns.some((column) => column.role !== undefined);
  const body = stacked ? stackedRows(data) : gridRows(data);
  const values = data.columns.filter((column) => !stacked || column.role === undefined);
  const head = values
    .map((column) => `<th scope="col" style="${styles.headCell}text-align:${column.align};">${escapeHtml(column.title)}</th>`)
    .join('');
  const omitted = data.omitted > 0 ? `\n<p style="${styles.paragraph}">… and ${data.omitted} more, not shown here</p>` : '';
  return `<div style="${styles.scroll}"><table style="${styles.table}">\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table></div>${omitted}`;
}

/** One line per row, a cell per column: for narrow tables. */
function gridRows(data: ReportTable): string {
  return data.rows
    .map((row) => `<tr>${row.map((cell, index) => valueCell(cell, data.columns[index]?.align ?? 'left', styles.cell)).join('')}</tr>`)
    .join('\n');
}

/**
 * Each row as a small block a phone can show without scrolling sideways: the title cells
 * (kind · account) on a line of their own, the amounts under them, then the note (detail).
 */
function stackedRows(data: ReportTable): string {
  const valueIndexes = data.columns.flatMap((column, index) => (column.role === undefined ? [index] : []));
  const span = Math.max(1, valueIndexes.length);
  return data.rows
    .map((row) => {
      const titles = data.columns.flatMap((column, index) => (column.role === 'title' ? [row[index] ?? ''] : []));
      const [first = '', ...rest] = titles;
      const heading = [`<strong>${escapeHtml(first)}</strong>`, ...rest.filter((title) => title !== '—').map(escapeHtml)].join(' · ');
      const lines = [`<tr><td colspan="${span}" style="${styles.titleCell}">${heading}</td></tr>`];
      lines.push(`<tr>${valueIndexes.map((index) => valueCell(row[index] ?? '', data.columns[index]?.align ?? 'left', styles.valueCell)).join('')}</tr>`);
      data.columns.forEach((column, index) => {
        const note = row[index] ?? '';
        if (column.role === 'note' && note !== '' && note !== '—') {
          // a note of several lines (a group's examples) keeps them: each escaped, joined by <br>
          lines.push(`<tr><td colspan="${span}" style="${styles.noteCell}">${note.split('\n').map(escapeHtml).join('<br>')}</td></tr>`);
        }
      });
      return lines.join('\n');
    })
    .join('\n');
}

/**
 * The trend as bars made of table cells with a background colour, inline styles only: no
 * SVG (many mail clients strip it) and no image (blocked by default). Each row: the run, its
 * bar (critical then warning cells, widths in per cent of the largest row), and what it says.
 */
function chart(data: ReportChart): string {
  const rows = data.rows.map((row) => {
    const cells = row.bars
      .filter((part) => part.value > 0)
      .map((part) => {
        const width = Math.max(1, Math.floor((part.value * 100) / data.scale));
        return `<td style="${styles.barCell}width:${width}%;background:${barColours[part.tone]};" title="${escapeHtml(`${part.value} ${part.tone}`)}"></td>`;
      });
    const used = row.bars.reduce((sum, part) => sum + (part.value > 0 ? Math.max(1, Math.floor((part.value * 100) / data.scale)) : 0), 0);
    if (used < 100) cells.push(`<td style="${styles.barCell}width:${100 - used}%;background:#f2f2f2;"></td>`);
    const bar = `<table role="presentation" style="${styles.barTable}"><tr>${cells.join('')}</tr></table>`;
    return [
      `<tr><td colspan="2" style="${styles.titleCell}">${escapeHtml(row.label)}</td></tr>`,
      `<tr><td style="${styles.valueCell}width:45%;">${bar}</td><td style="${styles.valueCell}text-align:left;">${escapeHtml(row.note)}</td></tr>`,
    ].join('\n');
  });
  const legend =
    `<span style="color:${barColours.critical};font-weight:600;">■ critical</span> ` +
    `<span style="color:${barColours.warning};font-weight:600;">■ warning</span>`;
  return [
    `<div style="${styles.scroll}"><table style="${styles.table}">`,
    ...rows,
    '</table></div>',
    `<p style="${styles.paragraph}">${escapeHtml(data.legend)} ${legend}</p>`,
  ].join('\n');
}

const barColours = { critical: '#b00020', warning: '#e69500' } as const;

function valueCell(cell: string, align: 'left' | 'right', style: string): string {
  if (align === 'left') return `<td style="${style}text-align:left;overflow-wrap:break-word;">${escapeHtml(cell)}</td>`;
  // An amount never breaks inside itself; `1,500 POINTS (minor units)` may break before the parenthesis.
  const pieces = cell.split(/ (?=\()/).map((piece) => `<span style="white-space:nowrap;">${escapeHtml(piece)}</span>`);
  return `<td style="${style}text-align:right;">${pieces.join(' ')}</td>`;
}

/** `&`, `<`, `>` and both quotes: safe in element content and in attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => entities[character] ?? character);
}

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

const banners = {
  clean: { color: '#1b5e20', background: '#e8f5e9' },
  warnings: { color: '#8a4b00', background: '#fff4e5' },
  critical: { color: '#b00020', background: '#fdecea' },
} as const;

const styles = {
  body: 'margin:0;padding:0;background:#ffffff;color:#1a1a1a;font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;',
  page: 'max-width:760px;margin:0 auto;padding:12px;',
  title: 'font-size:18px;line-height:1.3;margin:0 0 12px 0;font-weight:600;',
  banner: 'font-size:16px;font-weight:600;margin:0 0 12px 0;padding:10px 12px;',
  heading: 'font-size:16px;margin:20px 0 6px 0;font-weight:600;',
  paragraph: 'margin:0 0 8px 0;',
  scroll: 'max-width:100%;overflow-x:auto;margin:0 0 8px 0;',
  table: 'width:100%;max-width:100%;border-collapse:collapse;font-size:13px;',
  headCell: 'padding:4px 6px;border-bottom:2px solid #cccccc;font-weight:600;vertical-align:bottom;white-space:nowrap;',
  cell: 'padding:4px 6px;border-bottom:1px solid #e0e0e0;vertical-align:top;',
  titleCell: 'padding:8px 6px 2px 6px;border-top:1px solid #e0e0e0;text-align:left;overflow-wrap:break-word;',
  valueCell: 'padding:2px 6px;vertical-align:top;',
  noteCell: 'padding:0 6px 8px 6px;text-align:left;color:#444444;overflow-wrap:break-word;',
  factLabel: 'padding:2px 12px 2px 0;text-align:left;font-weight:600;white-space:nowrap;vertical-align:top;width:1%;',
  factValue: 'padding:2px 0;text-align:left;overflow-wrap:anywhere;',
  footer: 'margin:24px 0 0 0;color:#666666;font-size:12px;',
  barTable: 'width:100%;max-width:100%;border-collapse:collapse;table-layout:fixed;',
  barCell: 'height:12px;padding:0;font-size:1px;line-height:1px;',
} as const;
