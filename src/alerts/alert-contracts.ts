import { defaulted, define, enums, integer, object, optional, pattern, refine, size, string } from 'superstruct';
import { LoggerShape, Metadata, Uuid, isStorableText, secretValue } from '../contracts.js';
import { describeValue } from '../errors.js';
import { alertLimits } from './alert-limits.js';

/** The contracts of the alerting API's inputs. */

const nonBlank = (label: string, length_max: number) =>
  refine(size(string(), 1, length_max), label, (value) =>
    value.trim() === '' ? `${label} must not be blank` : isStorableText(value) ? true : `${label} must not contain NUL characters or unpaired surrogates`,
  );

const trimmedName = (label: string, length_max: number) =>
  refine(size(string(), 1, length_max), label, (value) =>
    value.trim() === value && !/[\u0000-\u001f]/.test(value) && isStorableText(value)
      ? true
      : `${label} must not start or end with spaces or contain control characters, got ${describeValue(value)}`,
  );

export const AlertKind = refine(size(string(), 1, alertLimits.kind_length_max), 'alert kind', (value) =>
  /^[a-z][a-z0-9_.:-]*$/.test(value) ? true : `a kind is a lower-case name like \`workflow_failed\`, got ${describeValue(value)}`,
);

export const AlertInput = object({
  severity: enums(['critical', 'warning', 'info']),
  kind: AlertKind,
  message: nonBlank('message', alertLimits.message_length_max),
  details: defaulted(Metadata, () => ({})),
  workflowId: optional(Uuid),
  dedupeKey: optional(trimmedName('dedupe key', alertLimits.dedupe_key_length_max)),
});

/** An http(s) URL. The reason never repeats the URL: a webhook's URL is its credential. */
export const WebhookUrl = secretValue(define<string>('an http(s) URL', (value) => {
  if (typeof value !== 'string') return `expected an http(s) URL, got ${typeof value}`;
  try {
    const protocol = new URL(value).protocol;
    return protocol === 'https:' || protocol === 'http:' ? true : `expected an http(s) URL, got a ${protocol} URL`;
  } catch {
    return 'expected an http(s) URL, got a string that is not a URL';
  }
}));

export const DeliveryOptions = object({
  oncallWebhookUrl: optional(WebhookUrl),
  opsWebhookUrl: optional(WebhookUrl),
  logger: LoggerShape,
  limit: defaulted(size(integer(), 1, alertLimits.delivery_batch_max), alertLimits.delivery_batch),
  webhookTimeout_ms: defaulted(size(integer(), 1, alertLimits.webhook_timeout_ms_max), alertLimits.webhook_timeout_ms),
});

export const InvestigationId = refine(pattern(string(), /^[1-9]\d{0,18}$/), 'investigation id', (value) =>
  !/^\d+$/.test(value) || BigInt(value) <= 9_223_372_036_854_775_807n ? true : `an investigation id is a bigint, at most 9223372036854775807, got ${value}`,
);

export const CloseInput = object({
  id: InvestigationId,
  resolution: nonBlank('resolution', alertLimits.resolution_length_max),
  closedBy: optional(trimmedName('closed by', alertLimits.closed_by_length_max)),
});

export const ListInput = object({
  limit: defaulted(size(integer(), 1, alertLimits.investigations_listed_max), alertLimits.investigations_listed),
});
