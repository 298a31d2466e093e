/**
 * Alerts by urgency. Glossary:
 * - alert: a row in ledgerbox.alerts, raised by the workflow engine, the runner or reconciliation;
 * - dedupe key: what an alert is about; two alerts with the same key are the same alert raised
 *   again. The alert's own `dedupe_key`, else `<kind>:<workflow id>`, else `<kind>:alert:<id>`;
 * - investigation: the record a delivered warning (or, for a critical, the incident) opens under
 *   its dedupe key; while it is open, the same alert is not sent again;
 * - delivery: the one row per alert (ledgerbox.alert_deliveries) saying what became of it.
 */

export type AlertSeverity = 'critical' | 'warning' | 'info';

/** Where a severity is routed: critical pages on-call, warning goes to ops, info to the log. */
export type AlertChannel = 'oncall' | 'ops' | 'log';

export type DeliveryOutcome = 'sent' | 'logged' | 'suppressed_duplicate' | 'no_channel';

export interface Alert {
  /** A bigint, as a string. */
  id: string;
  severity: AlertSeverity;
  kind: string;
  workflowId: string | null;
  message: string;
  details: Record<string, unknown>;
  /** The effective key: the alert's own, or the fallback described above. */
  dedupeKey: string;
  createdAt: Date;
}

export interface RecordedAlert {
  /** A bigint, as a string. */
  id: string;
  dedupeKey: string;
}

export interface Investigation {
  /** A bigint, as a string. */
  id: string;
  dedupeKey: string;
  /** `critical` for an incident opened by a critical alert, `warning` for an investigation. */
  severity: 'critical' | 'warning';
  /** The message of the alert that opened it. */
  title: string;
  openedAt: Date;
  closedAt: Date | null;
  closedBy: string | null;
  resolution: string | null;
  /** Alerts with the same key kept quiet (`suppressed_duplicate`) since it opened. */
  suppressedAlerts: number;
}

/** What one deliverAlerts call did, alert by alert. */
export interface DeliveryCounts {
  /** Posted to a webhook (on-call or ops). */
  sent: number;
  /** Info alerts, written to the logger. */
  logged: number;
  /** Same key as an open investigation or incident: recorded, not sent. */
  suppressed: number;
  /** No webhook configured for the severity: recorded and logged, not sent. */
  noChannel: number;
  /** The webhook failed or timed out: nothing recorded, tried again by the next call. */
  failed: number;
}
