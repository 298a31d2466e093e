import type { ReportDocument, ReportTable } from './document.js';

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
  }
  lines.push('', '--', clean(document.footer), '');
  return lines.join('\n');
}

function tableLines(table: ReportTable): string[] {
  const rows = table.rows.map((row) => row.map(clean));
  const widths = table.columns.map((column, index) => Math.max(column.title.length, ...rows.map((row) => (row[index] ?? '').length)));
  const last = table.columns.length - 1;
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => {
        const column = table.columns[index];
        const width = widths[index] ?? 0;
        if (column?.align === 'right') return cell.padStart(width);
        return index === last ? cell : cell.padEnd(width);
      })
      .join(column_gap)
      .trimEnd();
  const lines = [line(table.columns.map((column) => column.title)), line(widths.map((width) => '-'.repeat(width)))];
  for (const row of rows) lines.push(line(row));
  if (table.omitted > 0) lines.push(`… and ${table.omitted} more, not shown here`);
  return lines;
}

/** Text from data stays on its line: a newline or tab in a detail would break the columns. */
function clean(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}
