/**
 * Every bound in one place, units last in the name. Loops, batches and retries are bounded
 * by these; nothing in ledgerbox runs unbounded.
 */
export const limits = {
  /** Account keys and idempotency keys. */
  key_length_max: 200,
  /** Serialized metadata of an account or a transfer. */
  metadata_bytes_max: 16_384,
  /** Legs in one transfer (each leg writes two entries). */
  transfer_legs_max: 100,
  /** Transfers posted by one postTransfers call (one transaction, accounts locked once). */
  transfer_batch_max: 1_000,
  /** Jobs added by one enqueueMany call. */
  enqueue_batch_max: 10_000,
  /** Holds voided by one expireHolds call. */
  expire_holds_batch_max: 1_000,
  /** Attempts of a transaction that ledgerbox owns, on serialization failure or deadlock. */
  transaction_attempts_max: 5,
  /** Backoff before the first retry, doubled each time, with full jitter. */
  transaction_retry_backoff_ms: 10,
  /** Job payload: string identifiers, and arrays of them. */
  payload_string_length_max: 200,
  payload_array_length_max: 1_000,
  /** Entity ids (so jobs) in one fanOut call; it inserts them enqueue_batch_max at a time. */
  fan_out_ids_max: 100_000,
  /** The window a fanOut may spread its jobs over: 7 days. */
  fan_out_spread_ms_max: 604_800_000,
  /** Named queues one fanOut may spread its jobs over (`queueConcurrency`). */
  fan_out_queues_max: 1_000,
  /** An external provider call (FX quote, compliance check) before its outcome counts as unknown. */
  provider_call_timeout_ms: 5_000,
  /** How long an exchange's hold reserves its source amount by default, and at most. */
  exchange_hold_ms: 86_400_000,
  exchange_hold_ms_max: 30 * 86_400_000,
  /** Reconciliation thresholds (limbo SLA, stuck after) are at most a year. */
  reconcile_threshold_ms_max: 365 * 86_400_000,
  /** Alert routing (src/alerts/). */
  alerts: {
    /** One webhook POST (connect, send, answer) before it counts as failed and is retried later. */
    webhook_timeout_ms: 5_000,
    webhook_timeout_ms_max: 60_000,
    /** Alerts one deliverAlerts call handles, by default and at most. */
    delivery_batch: 100,
    delivery_batch_max: 1_000,
    /** An alert's message, kind and dedupe key. */
    message_length_max: 4_000,
    kind_length_max: 100,
    dedupe_key_length_max: 200,
    /** An investigation's resolution, and who closed it. */
    resolution_length_max: 2_000,
    closed_by_length_max: 200,
    /** Investigations one listOpenInvestigations call returns, by default and at most. */
    investigations_listed: 100,
    investigations_listed_max: 1_000,
  },
  /** Statement import (src/reconcile/statements.ts). */
  statements: {
    /** The CSV text: 32 MiB of characters. */
    csv_chars_max: 33_554_432,
    /** Balances (rows) in one statement: a larger one is split into several files. */
    balances_max: 100_000,
    /** One row of the file; a longer one means a wrong delimiter or an unclosed quote. */
    row_chars_max: 10_000,
    /** Problems named in one refusal; the rest are counted. */
    problems_reported_max: 20,
    /** Balances written by one INSERT. */
    insert_batch_max: 5_000,
  },
  /** The reconciliation report email (src/reconcile/report/). */
  report: {
    /** Connecting to the SMTP server, and its greeting, before a send counts as failed (then retried). */
    smtp_connection_timeout_ms: 10_000,
    smtp_greeting_timeout_ms: 10_000,
    /** Silence on an open SMTP connection before the send counts as failed. */
    smtp_socket_timeout_ms: 60_000,
    recipients_max: 50,
    /** Rows one findings table shows; the rest are counted. */
    table_rows_max: 200,
  },
} as const;
