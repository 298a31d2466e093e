import type { ReportChart, ReportDocument, ReportTable } from './document.js';

const column_gap = '  ';

/** The plain-text part: the document as aligned columns, for a terminal or a mail client without HTML. */
export function renderText(document: ReportDocument): string {
  const lines: string[] = [document.subject, '='.repeat(document.subject.length), '', clean(document.headline), ''];
  const labelWidth = Math.max(...document.facts.map(([label]) => label.length));
  for (const [label, value] of document.facts) lines.push(`${`${label}:`.padEnd(labelWidth + 2)}${clean(value)}`);
  for (const section of document.sections) {
    lines.push('', section.title, '-'.repeat(section.title.length));
    for (const paragraph of section.paragraphs) lines.push(clean(paragraph));
    if (section.table !== undefined) lines.push('', ...tableLines(section.table));
    if (section.chart !== undefined) lines.push('', ...chartLines(section.chart));
  }
  lines.push('', '--', clean(document.footer), '');
  return lines.join('\n');
}

/**
 * Plain columns; a `note` column (examples, details) is not a column but its lines, indented,
 * under its row: a long detail does not push the amounts off the screen.
 */
function tableLines(table: ReportTable): string[] {
  const shown = table.columns.flatMap((column, index) => (column.role === 'note' ? [] : [index]));
  const notes = table.columns.flatMap((column, index) => (column.role === 'note' ? [index] : []));
  const columns = shown.map((index) => table.columns[index]!);
  const rows = table.rows.map((row) => shown.map((index) => clean(row[index] ?? '')));
  const widths = columns.map((column, index) => Math.max(column.title.length, ...rows.map((row) => (row[index] ?? '').length)));
  const last = columns.length - 1;
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => {
        const column = columns[index];
        const width = widths[index] ?? 0;
        if (column?.align === 'right') return cell.padStart(width);
        return index === last ? cell : cell.padEnd(width);
      })
      .join(column_gap)
      .trimEnd();
  const lines = [line(columns.map((column) => column.title)), line(widths.map((width) => '-'.repeat(width)))];
  table.rows.forEach((row, rowIndex) => {
    lines.push(line(rows[rowIndex]!));
    for (const index of notes) {
      const note = row[index] ?? '';
      if (note === '' || note === '—') continue;
      for (const noteLine of note.split('\n')) lines.push(`    ${clean(noteLine)}`);
    }
  });
  if (table.omitted > 0) lines.push(`… and ${table.omitted} more, not shown here`);
  return lines;
}

/** Bar width in characters for the largest row. */
const chart_width = 30;
const bar_characters = { critical: '#', warning: '=' } as const;

/** `2026-11-21 03:00:00 UTC · 42 (this run)  ##=====              critical: 1 critical, 4 warnings`. */
function chartLines(chart: ReportChart): string[] {
  const labelWidth = Math.max(...chart.rows.map((row) => clean(row.label).length));
  const lines = chart.rows.map((row) => {
    const bar = row.bars.map((part) => bar_characters[part.tone].repeat(barLength(part.value, chart.scale))).join('');
    return `${clean(row.label).padEnd(labelWidth)}  |${bar.padEnd(chart_width)}|  ${clean(row.note)}`;
  });
  return [...lines, `${chart.legend} (${bar_characters.critical} critical, ${bar_characters.warning} warning; the longest bar is ${chart.scale} ${chart.scale === 1 ? 'finding' : 'findings'})`];
}

/** At least one character for a non-zero count; rounded down otherwise, so a row never overflows. */
function barLength(value: number, scale: number): number {
  if (value <= 0) return 0;
  return Math.max(1, Math.floor((value * chart_width) / scale));
}

/** Text from data stays on its line: a newline or tab in a detail would break the columns. */
function clean(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}
