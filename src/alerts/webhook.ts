import type { SlackMessage } from './slack-message.js';

export type WebhookResult = { ok: true } | { ok: false; status: number | null; reason: string };

/** How much of a refusing webhook's answer is kept for the log. */
const answerLength_max = 300;

/**
 * POSTs the message as JSON, within `timeout_ms` for the whole exchange (connect, send, answer).
 * Never throws: a refusal, a network error or a timeout is a result, so one channel being down
 * cannot stop the other alerts. The URL (a secret: it is the credential) is never in the result.
 */
export async function postWebhook(url: string, message: SlackMessage, timeout_ms: number): Promise<WebhookResult> {
  const signal = AbortSignal.timeout(timeout_ms);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
      signal,
      // a redirect would carry the alert (and the URL's secret path) somewhere unconfigured
      redirect: 'error',
    });
    // read to the end, so the connection can be reused; bounded by the same signal
    const answer = await response.text();
    if (response.ok) return { ok: true };
    return { ok: false, status: response.status, reason: `HTTP ${response.status}: ${answer.slice(0, answerLength_max)}` };
  } catch (error) {
    if (signal.aborted) return { ok: false, status: null, reason: `no answer within ${timeout_ms} ms` };
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const detail = cause?.code ?? cause?.message;
    return { ok: false, status: null, reason: `${(error as Error).message}${detail === undefined ? '' : ` (${String(detail)})`}` };
  }
}
