import { limits } from '../../limits.js';
import type { Finding, ReconciliationReport, Severity } from '../types.js';
import { formatMinorUnits, formatSignedMinorUnits, groupThousands } from '../../money/format.js';
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
  chart?: ReportChart;
}

/**
 * A small bar chart that needs no image: in text, bars of characters; in HTML, table cells
 * with a background colour (mail clients strip SVG and block images).
 */
export interface ReportChart {
  /** One row per run, newest first. */
  rows: { label: string; bars: { value: number; tone: 'critical' | 'warning' }[]; note: string }[];
  /** The largest total of a row's bars: the full width. */
  scale: number;
  legend: string;
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
      ...findingSections(report.runId, critical, warning),
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

function findingSections(runId: string, critical: Finding[], warning: Finding[]): ReportSection[] {
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
    const groups = groupFindings(findings);
    sections.push({
      title: `${title} (${findings.length})`,
      tone: severity,
      paragraphs: [
        describe[severity],
        `${findings.length} ${findings.length === 1 ? 'finding' : 'findings'} in ${groups.length} ${groups.length === 1 ? 'group' : 'groups'} (same kind, same cause), the largest first.`,
      ],
      table: table(
        [
          { title: 'Kind', align: 'left', role: 'title' },
          { title: 'Cause', align: 'left', role: 'title' },
          { title: 'Findings', align: 'right' },
          { title: 'Money', align: 'right' },
          { title: 'Examples', align: 'left', role: 'note' },
        ],
        groups.map((group) => [
          group.kind,
          group.cause,
          groupThousands(String(group.findings.length)),
          group.money.length === 0 ? '—' : group.money.map((item) => formatMinorUnits(item.amount, item.currency)).join(', '),
          examplesOf(runId, group),
        ]),
      ),
    });
  }
  return sections;
}

/** Examples a group shows; the rest are in the database, and the email says where. */
export const report_group_examples_max = 3;

export interface FindingGroup {
  severity: Severity;
  kind: Finding['kind'];
  /** What the findings of the group have in common beyond their kind (a failing step, a task and its error…). */
  cause: string;
  findings: Finding[];
  /** Per currency, in currency order: the sum of |difference| (or of |actual| where there is no difference), minor units. */
  money: { currency: string; amount: bigint }[];
}

/**
 * Findings of one severity by kind and cause: critical kinds first (in `findingKinds` order),
 * then the larger groups, then by cause. Deterministic: the same findings in any order give
 * the same groups, each with its findings sorted.
 */
export function groupFindings(findings: readonly Finding[]): FindingGroup[] {
  const groups = new Map<string, FindingGroup>();
  for (const finding of sortFindings(findings)) {
    const cause = causeOf(finding);
    const key = `${finding.severity}\u0000${finding.kind}\u0000${cause}`;
    let group = groups.get(key);
    if (group === undefined) {
      group = { severity: finding.severity, kind: finding.kind, cause, findings: [], money: [] };
      groups.set(key, group);
    }
    group.findings.push(finding);
  }
  for (const group of groups.values()) group.money = moneyOf(group.findings);
  const rank = (severity: Severity) => (severity === 'critical' ? 0 : 1);
  return [...groups.values()].sort(
    (a, b) =>
      rank(a.severity) - rank(b.severity) ||
      findingKinds.indexOf(a.kind) - findingKinds.indexOf(b.kind) ||
      b.findings.length - a.findings.length ||
      compareText(a.cause, b.cause),
  );
}

function moneyOf(findings: readonly Finding[]): { currency: string; amount: bigint }[] {
  const totals = new Map<string, bigint>();
  for (const finding of findings) {
    const value = finding.difference ?? finding.actual;
    if (finding.currency === null || value === null) continue;
    totals.set(finding.currency, (totals.get(finding.currency) ?? 0n) + (value < 0n ? -value : value));
  }
  return [...totals].sort(([a], [b]) => compareText(a, b)).map(([currency, amount]) => ({ currency, amount }));
}

/** Ids, numbers and amounts out of a message, so two failures of one cause read the same. */
function normalised(message: string): string {
  const text = message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '…')
    .replace(/\d+/g, '#')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}

/** The part of an account key that names its kind of account: `customer:c0001:USD` → `customer:*:USD`. */
function accountPattern(account: string | null): string {
  if (account === null) return '—';
  const parts = account.split(':');
  return parts.length <= 2 ? account : [parts[0], ...parts.slice(1, -1).map(() => '*'), parts[parts.length - 1]].join(':');
}

/**
 * A stable cause key, from what each check writes into `detail` (checks.ts,
 * statement-checks.ts): the workflow kind and the step it failed at; the task of a failed job
 * and its error; the way a hold is in limbo; the step a workflow is stuck at; the statement's
 * source; else the kind of account and its currency.
 */
export function causeOf(finding: Finding): string {
  const detail = finding.detail;
  switch (finding.kind) {
    case 'failed_and_compensated':
    case 'failed_not_compensated': {
      // `<workflow kind> <key> is <status>: <step> failed 5 times: …` or `: <step> declined (…)`
      const match = /^(\S+) \S+ is [a-z_]+: (\S+)/.exec(detail);
      return match === null ? normalised(detail) : `${match[1]} at ${match[2]}`;
    }
    case 'failed_job': {
      const match = /^job \S+ \((.*?)\) failed for good after \d+ attempts: ?(.*)$/s.exec(detail);
      return match === null ? normalised(detail) : `${match[1]}: ${normalised(match[2] ?? '') || 'no error recorded'}`;
    }
    case 'stuck_workflow': {
      const match = /^(\S+) \S+ has not moved from (\S+)/.exec(detail);
      return match === null ? normalised(detail) : `${match[1]} at ${match[2]}`;
    }
    case 'money_in_limbo': {
      const match = /\(minor units\) of \S+, (.*)$/s.exec(detail);
      return match === null ? normalised(detail) : normalised(match[1] ?? '');
    }
    case 'pending_drift':
      return `${finding.subject.split(':')[1] ?? ''} · ${accountPattern(finding.account)}`;
    case 'statement_difference':
    case 'statement_difference_within_tolerance':
    case 'statement_lines_inconsistent':
    case 'statement_line_not_in_ledger':
    case 'statement_line_differs':
    case 'ledger_movement_not_on_statement': {
      const source = /^(?:transfer \S+ moved .* inside the period of )?(\S+)/.exec(detail)?.[1];
      return `${source ?? '—'} · ${accountPattern(finding.account)}`;
    }
    case 'currency_not_zero':
    case 'unbalanced_transfer':
      return finding.currency ?? '—';
    default:
      return accountPattern(finding.account);
  }
}

/** At most three examples, then where the rest are and the query that lists them all. */
function examplesOf(runId: string, group: FindingGroup): string {
  const shown = group.findings.slice(0, report_group_examples_max).map((finding) => {
    const amounts: string[] = [];
    if (finding.expected !== null) amounts.push(`expected ${formatMinorUnits(finding.expected, finding.currency)}`);
    if (finding.actual !== null) amounts.push(`actual ${formatMinorUnits(finding.actual, finding.currency)}`);
    if (finding.difference !== null) amounts.push(`difference ${formatSignedMinorUnits(finding.difference, finding.currency)}`);
    const what = finding.account ?? finding.subject;
    return `${what}${amounts.length > 0 ? ` (${amounts.join(', ')})` : ''}: ${finding.detail}`;
  });
  const more = group.findings.length - shown.length;
  if (more > 0) {
    shown.push(
      `… and ${more} more — in ledgerbox.reconciliation_findings, run ${runId}: ` +
        `psql -c "select subject, account, currency, difference, detail from ledgerbox.reconciliation_findings where run_id = ${runId} and kind = '${group.kind}' order by id"`,
    );
  }
  return shown.join('\n');
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
    ...groupFindings(added).map((group) => change('new', group)),
    ...groupFindings(persisting).map((group) => change('persisting', group)),
    ...groupFindings(resolved).map((group) => change('resolved', group)),
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
        { title: 'Cause', align: 'left', role: 'title' },
        { title: 'Findings', align: 'right' },
        { title: 'Money', align: 'right' },
      ],
      rows,
    ),
  };
}

function change(what: string, group: FindingGroup): string[] {
  return [
    what,
    group.severity,
    group.kind,
    group.cause,
    groupThousands(String(group.findings.length)),
    group.money.length === 0 ? '—' : group.money.map((item) => formatMinorUnits(item.amount, item.currency)).join(', '),
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

/** Runs the trend chart shows: this one and the ones before it. */
export const report_trend_runs_max = 10;

function trendSection(report: ReconciliationReport, critical: number, warning: number): ReportSection {
  const earlier = report.trend.slice(0, report_trend_runs_max - 1);
  const runs = [
    { label: `${timestamp(report.asOf)} · ${report.runId} (this run)`, status: report.status, critical, warning, risk: report.moneyAtRisk as TrendRisk },
    ...earlier.map((run) => ({ label: `${timestamp(run.asOf)} · ${run.runId}`, status: run.status, critical: run.critical, warning: run.warning, risk: run.moneyAtRisk })),
  ];
  const scale = Math.max(1, ...runs.map((run) => run.critical + run.warning));
  return {
    title: 'Trend',
    tone: 'neutral',
    paragraphs: [earlier.length === 0 ? 'No earlier runs yet.' : `This run and the ${earlier.length} before it, newest first.`],
    chart: {
      scale,
      legend: 'Bars: findings per run, critical then warnings.',
      rows: runs.map((run) => ({
        label: run.label,
        bars: [
          { value: run.critical, tone: 'critical' as const },
          { value: run.warning, tone: 'warning' as const },
        ],
        note:
          `${run.status}: ${run.critical} critical, ${run.warning} ${run.warning === 1 ? 'warning' : 'warnings'}` +
          (run.risk === undefined ? '' : run.risk.length === 0 ? ', nothing at risk' : `, at risk ${run.risk.map((item) => formatMinorUnits(item.amount, item.currency)).join(', ')}`),
      })),
    },
  };
}

type TrendRisk = { currency: string; amount: bigint }[] | undefined;

function table(columns: ReportTable['columns'], rows: string[][]): ReportTable {
  return { columns, rows: rows.slice(0, report_table_rows_max), omitted: Math.max(0, rows.length - report_table_rows_max) };
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
