import type { Alert } from './types.js';

/**
 * The message a webhook receives: Slack's incoming-webhook format (`text` for notifications and
 * clients without blocks, `blocks` for the layout), which Mattermost, Rocket.Chat and most
 * paging tools' Slack integrations accept as well.
 */
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string } }
  | { type: 'section'; text: { type: 'plain_text' | 'mrkdwn'; text: string } }
  | { type: 'section'; fields: { type: 'mrkdwn'; text: string }[] }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] };

// Slack refuses a message whose parts exceed these
const headerLength_max = 150;
const sectionLength_max = 3_000;
const fieldLength_max = 2_000;

const headings = { critical: 'CRITICAL', warning: 'Warning', info: 'Info' } as const;

/** Renders an alert; `investigationId` is the record it opened, for the reader to close. */
export function slackMessage(alert: Alert, investigationId: string | undefined): SlackMessage {
  const heading = `${headings[alert.severity]}: ${alert.kind}`;
  const fields = [
    field('Severity', alert.severity),
    field('Kind', alert.kind),
    field('Workflow', alert.workflowId ?? '-'),
    field('Alert id', alert.id),
    field('Dedupe key', alert.dedupeKey),
    field('Raised at', alert.createdAt.toISOString()),
  ];
  if (investigationId !== undefined) fields.push(field(alert.severity === 'critical' ? 'Incident' : 'Investigation', investigationId));
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: cut(heading, headerLength_max) } },
    { type: 'section', text: { type: 'plain_text', text: cut(alert.message, sectionLength_max) } },
    { type: 'section', fields },
  ];
  if (Object.keys(alert.details).length > 0) {
    const json = cut(escapeMrkdwn(JSON.stringify(alert.details, null, 2)), sectionLength_max - 6);
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `\`\`\`${json}\`\`\`` } });
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: cut(escapeMrkdwn(nextStep(alert, investigationId)), sectionLength_max) }] });
  // `text` is mrkdwn too (the notification, and clients without blocks)
  return { text: cut(escapeMrkdwn(`${heading}: ${alert.message}`), sectionLength_max), blocks };
}

function nextStep(alert: Alert, investigationId: string | undefined): string {
  const parts = ['ledgerbox'];
  if (alert.workflowId !== null) parts.push(`npx ledgerbox workflow show ${alert.workflowId}`);
  if (investigationId !== undefined) {
    parts.push(`the same alert stays quiet until closeInvestigation(db, { id: '${investigationId}', resolution })`);
  }
  return parts.join(' · ');
}

function field(label: string, value: string): { type: 'mrkdwn'; text: string } {
  return { type: 'mrkdwn', text: `*${label}*\n${cut(escapeMrkdwn(value), fieldLength_max - label.length - 8)}` };
}

/** Slack reads `<…>` as links and mentions (`<!channel>`): text from the database must not. */
function escapeMrkdwn(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function cut(text: string, length_max: number): string {
  return text.length <= length_max ? text : `${text.slice(0, length_max - 1)}…`;
}
