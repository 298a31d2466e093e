import { limits } from '../../limits.js';
import type { Finding, ReconciliationReport, Severity } from '../types.js';
import { formatMinorUnits, formatSignedMinorUnits, groupThousands } from './format-money.js';
import { findingKinds } from './report-contract.js';

/**
 * What the report says, once: the text and the HTML part are both drawn from this, so they
 * cannot disagree. Every string in it is plain text from data; the renderers escape it.
 */
export interface ReportDocument {
  subject: string;
  status: ReconciliationReport['status'];
  headline: string;
  facts: [label: string, value: string][];
  sections: ReportSection[];
  footer: string;
}

export interface ReportSection {
  title: string;
  /** Colours the title in HTML: a section about critical findings is red. */
  tone: 'critical' | 'warning' | 'neutral';
  paragraphs: string[];
  table?: ReportTable;
}

export interface ReportTable {
  /**
   * `role` lays a wide table out for a phone: in HTML, a row's `title` cells become a heading
   * line, its `note` cells a full-width line under the values. Text shows plain columns.
   */
  columns: { title: string; align: 'left' | 'right'; role?: 'title' | 'note' }[];
  rows: string[][];
  /** Rows left out to keep the message small (the run's findings are all stored). */
  omitted: number;
}

/**
 * Rows one table of the email shows. A ledger gone badly wrong can have thousands of
 * findings; the email says how many it left out, and the database has them all.
 */
export const report_table_rows_max = limits.report.table_rows_max;

/** Currencies named in the subject line; the headline names them all. */
const subject_currencies_max = 3;

export function buildReportDocument(report: ReconciliationReport): ReportDocument {
  const critical = sortFindings(report.findings.filter((finding) => finding.severity === 'critical'));
  const warning = sortFindings(report.findings.filter((finding) => finding.severity === 'warning'));
  const night = report.asOf.toISOString().slice(0, 10);
  return {
    subject: singleLine(`ledgerbox reconciliation ${night}: ${subjectSummary(report, critical.length, warning.length)}`),
    status: report.status,
    headline: headline(report, critical.length, warning.length),
    facts: [
      ['Run', report.runId],
      ['As of', timestamp(report.asOf)],
      ['Verification', report.full ? 'full (all history re-verified)' : 'incremental (entries since the last checkpoint)'],
      ['Entries checked', groupThousands(String(report.entriesChecked))],
      ['Started', timestamp(report.startedAt)],
      ['Took', duration(report.finishedAt.getTime() - report.startedAt.getTime())],
    ],
    sections: [
      ...findingSections(critical, warning),
      comparisonSection(report),
      movementSection(report),
      trendSection(report, critical.length, warning.length),
    ],
    footer:
      `Amounts are integer minor units shown in each currency's ISO 4217 exponent; a currency outside ISO 4217 is shown in minor units. ` +
      `Every finding of this run is stored in ledgerbox.reconciliation_findings (run ${report.runId}).`,
  };
}

/** `clean`, or `3 critical, 2 warnings — 1,234.56 USD at risk`. */
function subjectSummary(report: ReconciliationReport, critical: number, warning: number): string {
  if (critical + warning === 0) return 'clean';
  const counts = severityCounts(critical, warning);
  if (report.moneyAtRisk.length === 0) return counts;
  const shown = report.moneyAtRisk.slice(0, subject_currencies_max).map((risk) => formatMinorUnits(risk.amount, risk.currency));
  const more = report.moneyAtRisk.length - shown.length;
  return `${counts} — ${shown.join(', ')}${more > 0 ? ` and ${more} more ${more === 1 ? 'currency' : 'currencies'}` : ''} at risk`;
}

/** One sentence that says how the books are. */
export function headline(report: ReconciliationReport, critical: number, warning: number): string {
  if (critical + warning === 0) {
    return `Clean: no findings, ${groupThousands(String(report.entriesChecked))} entries checked.`;
  }
  const findings = `${critical + warning} ${critical + warning === 1 ? 'finding' : 'findings'}: ${severityCounts(critical, warning)}.`;
  if (report.moneyAtRisk.length === 0) return `${findings} No money at risk.`;
  const risk = report.moneyAtRisk.map((item) => formatMinorUnits(item.amount, item.currency)).join(', ');
  return `${findings} Money at risk: ${risk}.`;
}

function severityCounts(critical: number, warning: number): string {
  const parts: string[] = [];
  if (critical > 0) parts.push(`${critical} critical`);
  if (warning > 0) parts.push(`${warning} ${warning === 1 ? 'warning' : 'warnings'}`);
  return parts.join(', ');
}

function findingSections(critical: Finding[], warning: Finding[]): ReportSection[] {
  if (critical.length + warning.length === 0) {
    return [{ title: 'Findings', tone: 'neutral', paragraphs: ['None: every check passed.'] }];
  }
  const sections: ReportSection[] = [];
  const describe: Record<Severity, string> = {
    critical: 'Money is wrong or unaccounted for: act now.',
    warning: 'A person is needed; the books are right.',
  };
  for (const [severity, findings, title] of [
    ['critical', critical, 'Critical'],
    ['warning', warning, 'Warnings'],
  ] as const) {
    if (findings.length === 0) continue;
    sections.push({
      title: `${title} (${findings.length})`,
      tone: severity,
      paragraphs: [describe[severity]],
      table: table(
        [
          { title: 'Kind', align: 'left', role: 'title' },
          { title: 'Account', align: 'left', role: 'title' },
          { title: 'Expected', align: 'right' },
          { title: 'Actual', align: 'right' },
          { title: 'Difference', align: 'right' },
          { title: 'Detail', align: 'left', role: 'note' },
        ],
        findings.map((finding) => [
          finding.kind,
          finding.account ?? '—',
          amount(finding.expected, finding.currency),
          amount(finding.actual, finding.currency),
          finding.difference === null ? '—' : formatSignedMinorUnits(finding.difference, finding.currency),
          finding.detail,
        ]),
      ),
    });
  }
  return sections;
}

function comparisonSection(report: ReconciliationReport): ReportSection {
  const { new: added, persisting, resolved } = report.comparison;
  const title = 'Compared with the previous run';
  if (report.trend.length === 0) {
    return { title, tone: 'neutral', paragraphs: ['This is the first run: there is nothing to compare with.'] };
  }
  const summary = `${added.length} new, ${persisting.length} persisting, ${resolved.length} resolved.`;
  if (added.length + persisting.length + resolved.length === 0) {
    return { title, tone: 'neutral', paragraphs: [`${summary} Clean then, clean now.`] };
  }
  const rows = [
    ...sortFindings(added).map((finding) => change('new', finding)),
    ...sortFindings(persisting).map((finding) => change('persisting', finding)),
    ...sortFindings(resolved).map((finding) => change('resolved', finding)),
  ];
  return {
    title,
    tone: added.some((finding) => finding.severity === 'critical') ? 'critical' : 'neutral',
    paragraphs: [summary],
    table: table(
      [
        { title: 'Change', align: 'left' },
        { title: 'Severity', align: 'left' },
        { title: 'Kind', align: 'left', role: 'title' },
        { title: 'Account', align: 'left', role: 'title' },
        { title: 'Difference', align: 'right' },
      ],
      rows,
    ),
  };
}

function change(what: string, finding: Finding): string[] {
  return [
    what,
    finding.severity,
    finding.kind,
    finding.account ?? finding.subject,
    finding.difference === null ? '—' : formatSignedMinorUnits(finding.difference, finding.currency),
  ];
}

function movementSection(report: ReconciliationReport): ReportSection {
  const { completed, failed, compensated } = report.workflows;
  const workflows = `Workflows: ${completed} completed, ${failed} failed, ${compensated} compensated.`;
  const title = 'Money moved since the previous run';
  if (report.movement.length === 0) {
    return { title, tone: 'neutral', paragraphs: ['No money moved.', workflows] };
  }
  const movement = [...report.movement].sort((a, b) => compareText(a.currency, b.currency));
  return {
    title,
    tone: 'neutral',
    paragraphs: [workflows],
    table: table(
      [
        { title: 'Currency', align: 'left' },
        { title: 'Moved', align: 'right' },
        { title: 'Transfers', align: 'right' },
      ],
      movement.map((item) => [item.currency, formatMinorUnits(item.moved, item.currency), groupThousands(String(item.transfers))]),
    ),
  };
}

function trendSection(report: ReconciliationReport, critical: number, warning: number): ReportSection {
  const rows = [
    [timestamp(report.asOf), report.status, String(critical), String(warning), `${report.runId} (this run)`],
    ...report.trend.map((run) => [timestamp(run.asOf), run.status, String(run.critical), String(run.warning), run.runId]),
  ];
  return {
    title: 'Trend',
    tone: 'neutral',
    paragraphs: [report.trend.length === 0 ? 'No earlier runs yet.' : `This run and the ${report.trend.length} before it, newest first.`],
    table: table(
      [
        { title: 'As of', align: 'left' },
        { title: 'Status', align: 'left' },
        { title: 'Critical', align: 'right' },
        { title: 'Warnings', align: 'right' },
        { title: 'Run', align: 'left' },
      ],
      rows,
    ),
  };
}

function table(columns: ReportTable['columns'], rows: string[][]): ReportTable {
  return { columns, rows: rows.slice(0, report_table_rows_max), omitted: Math.max(0, rows.length - report_table_rows_max) };
}

function amount(value: bigint | null, currency: string | null): string {
  return value === null ? '—' : formatMinorUnits(value, currency);
}

/** By kind (critical kinds first, as listed in the types), then account, then subject. */
function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) =>
      findingKinds.indexOf(a.kind) - findingKinds.indexOf(b.kind) ||
      compareText(a.account ?? '', b.account ?? '') ||
      compareText(a.subject, b.subject),
  );
}

/** Code-unit order: the same on every machine, whatever its locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `2026-11-21 03:00:00 UTC`. */
function timestamp(value: Date): string {
  return `${value.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function duration(milliseconds: number): string {
  if (milliseconds < 1_000) return `${Math.max(0, milliseconds)} ms`;
  const seconds = Math.round(milliseconds / 1_000);
  return seconds < 120 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

/** A header line: no line breaks or other control characters from data. */
function singleLine(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}
