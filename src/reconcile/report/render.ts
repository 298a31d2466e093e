import { validate } from '../../contracts.js';
import { InvalidInputError } from '../../errors.js';
import type { ReconciliationReport, RenderedReport } from '../types.js';
import { buildReportDocument, headline } from './document.js';
import { renderHtml } from './render-html.js';
import { renderText } from './render-text.js';
import { ReportStruct } from './report-contract.js';

/**
 * The report email of one reconciliation run: its subject, a plain-text part and an HTML part
 * that say the same thing (headline, findings by severity, changes since the previous run,
 * money moved, trend). Pure and deterministic: the same report gives the same bytes, so the
 * run can store it and a retried delivery sends exactly what was stored.
 *
 * Throws InvalidInputError when the report breaks its contract (an amount that is not a
 * bigint, a status that disagrees with the findings).
 */
export function renderReport(report: ReconciliationReport): RenderedReport {
  const document = buildReportDocument(checked(report));
  return { subject: document.subject, text: renderText(document), html: renderHtml(document) };
}

/** The report's one-sentence headline (`Clean: …` or `5 findings: 3 critical, 2 warnings. Money at risk: …`), for the CLI and the run record. */
export function reportHeadline(report: ReconciliationReport): string {
  const valid = checked(report);
  const critical = valid.findings.filter((finding) => finding.severity === 'critical').length;
  return headline(valid, critical, valid.findings.length - critical);
}

function checked(report: ReconciliationReport): ReconciliationReport {
  const valid = validate(ReportStruct, report, 'report') as ReconciliationReport;
  const critical = valid.findings.filter((finding) => finding.severity === 'critical').length;
  const expected = critical > 0 ? 'critical' : valid.findings.length > 0 ? 'warnings' : 'clean';
  if (valid.status !== expected) {
    throw new InvalidInputError(
      `Expected \`report.status\` to be ${expected} (${critical} critical, ${valid.findings.length - critical} warning findings), got ${valid.status}`,
      ['report', 'status'],
      valid.status,
    );
  }
  if (valid.finishedAt.getTime() < valid.startedAt.getTime()) {
    throw new InvalidInputError('Expected `report.finishedAt` not to be before `report.startedAt`', ['report', 'finishedAt'], valid.finishedAt);
  }
  return valid;
}
