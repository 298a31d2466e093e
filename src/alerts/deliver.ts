import type { Infer } from 'superstruct';
import { validate } from '../contracts.js';
import { inTransaction, type DatabaseHandle, type Session } from '../db/handle.js';
import type { Logger } from '../logger.js';
import { DeliveryOptions } from './alert-contracts.js';
import {
  closeInvestigationRow,
  insertDelivery,
  insertInvestigation,
  isDelivered,
  lockDedupeKey,
  lockNextUndelivered,
  selectRouting,
} from './alert-queries.js';
import { slackMessage } from './slack-message.js';
import type { Alert, AlertChannel, DeliveryCounts } from './types.js';
import { postWebhook } from './webhook.js';

export interface DeliverAlertsOptions {
  /** Slack-compatible incoming webhook for critical alerts (it pages on-call). Unset: `no_channel`. */
  oncallWebhookUrl?: string;
  /** Slack-compatible incoming webhook for warnings (the ops channel). Unset: `no_channel`. */
  opsWebhookUrl?: string;
  /** Info alerts are written here; so are failures, `no_channel` and what was sent. */
  logger: Logger;
  /** Alerts handled by this call, oldest first. Default 100, at most 1 000. */
  limit?: number;
  /** One webhook POST, from connect to answer. Default 5 000. */
  webhookTimeout_ms?: number;
}

type Request = Infer<typeof DeliveryOptions>;
type Result = keyof DeliveryCounts | 'already_delivered';

/** Thrown inside an alert's transaction to roll back what it opened when the webhook failed. */
class WebhookFailed extends Error {
  constructor(readonly alertId: string) {
    super(`webhook failed for alert ${alertId}`);
  }
}

/**
 * Delivers the alerts that have no delivery yet, oldest first, each in its own short
 * transaction on `db` (give it a pool): critical → on-call webhook, warning → ops webhook and an
 * investigation, info → the logger. An alert whose key has an open investigation is recorded as
 * `suppressed_duplicate` instead of sent. Every alert ends with exactly one delivery row, however
 * many workers deliver at once: each locks its alert (`for update skip locked`) and its dedupe
 * key. A webhook that refuses or times out records nothing for that alert (the next call tries
 * it again) and does not stop the others.
 */
export async function deliverAlerts(db: DatabaseHandle, options: DeliverAlertsOptions): Promise<DeliveryCounts> {
  const request = validate(DeliveryOptions, options, 'options');
  const counts: DeliveryCounts = { sent: 0, logged: 0, suppressed: 0, noChannel: 0, failed: 0 };
  // a cursor, so an alert that failed is not picked again by the same call
  let afterId = '0';
  for (let handled = 0; handled < request.limit; handled++) {
    const step = await inTransaction(db, (db) => deliverNext(db, afterId, request)).catch((error: unknown) => {
      if (!(error instanceof WebhookFailed)) throw error;
      return { alertId: error.alertId, result: 'failed' as const };
    });
    if (step === undefined) break;
    afterId = step.alertId;
    if (step.result !== 'already_delivered') counts[step.result]++;
  }
  return counts;
}

async function deliverNext(db: Session, afterId: string, request: Request): Promise<{ alertId: string; result: Result } | undefined> {
  const alert = await lockNextUndelivered(db, afterId);
  if (alert === undefined) return undefined;
  const log = request.logger.child({ alertId: alert.id, severity: alert.severity, kind: alert.kind, workflowId: alert.workflowId, dedupeKey: alert.dedupeKey });
  if (await isDelivered(db, alert.id)) return { alertId: alert.id, result: 'already_delivered' };
  if (alert.severity === 'info') {
    log.info({ details: alert.details }, alert.message);
    await insertDelivery(db, alert.id, 'log', 'logged');
    return { alertId: alert.id, result: 'logged' };
  }
  const channel: AlertChannel = alert.severity === 'critical' ? 'oncall' : 'ops';
  await lockDedupeKey(db, alert.dedupeKey);
  const routing = await selectRouting(db, alert.dedupeKey, alert.severity);
  if (routing.decision === 'suppress') {
    log.debug({ investigationId: routing.investigation_id }, 'alert not sent again: its investigation is open');
    await insertDelivery(db, alert.id, channel, 'suppressed_duplicate');
    return { alertId: alert.id, result: 'suppressed' };
  }
  if (routing.decision === 'escalate') {
    await closeInvestigationRow(db, {
      id: routing.investigation_id!,
      resolution: `escalated: critical alert ${alert.id} opened an incident`,
      closedBy: 'ledgerbox',
    });
  }
  // opened before the POST so the message can name it; rolled back if the POST fails
  const investigationId = await insertInvestigation(db, { dedupeKey: alert.dedupeKey, severity: alert.severity, title: titleOf(alert) });
  const url = channel === 'oncall' ? request.oncallWebhookUrl : request.opsWebhookUrl;
  if (url === undefined) {
    const variable = channel === 'oncall' ? 'LEDGERBOX_ONCALL_WEBHOOK_URL' : 'LEDGERBOX_OPS_WEBHOOK_URL';
    log[alert.severity === 'critical' ? 'error' : 'warn'](
      { channel, investigationId, details: alert.details },
      `alert not sent, no ${channel} webhook configured (${variable}): ${alert.message}`,
    );
    await insertDelivery(db, alert.id, channel, 'no_channel');
    return { alertId: alert.id, result: 'noChannel' };
  }
  const posted = await postWebhook(url, slackMessage(alert, investigationId), request.webhookTimeout_ms);
  if (!posted.ok) {
    log.error({ channel, status: posted.status, reason: posted.reason }, `alert webhook failed, the alert will be tried again: ${posted.reason}`);
    throw new WebhookFailed(alert.id);
  }
  log.info({ channel, investigationId }, 'alert sent');
  await insertDelivery(db, alert.id, channel, 'sent');
  return { alertId: alert.id, result: 'sent' };
}

const titleLength_max = 500;

function titleOf(alert: Alert): string {
  return alert.message.length <= titleLength_max ? alert.message : `${alert.message.slice(0, titleLength_max - 1)}…`;
}
