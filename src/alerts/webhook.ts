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
    return { ok: false, status: response.status, reason: withoutUrl(`HTTP ${response.status}: ${answer.slice(0, answerLength_max)}`, url) };
  } catch (error) {
    if (signal.aborted) return { ok: false, status: null, reason: `no answer within ${timeout_ms} ms` };
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const detail = cause?.code ?? cause?.message;
    // fetch's own messages quote the URL (for one with credentials, say): the reason is logged
    // and stored, so the URL is cut out of it
    return { ok: false, status: null, reason: withoutUrl(`${(error as Error).message}${detail === undefined ? '' : ` (${String(detail)})`}`, url) };
  }
}

/** `text` with the webhook URL, as given or as the URL parser writes it, replaced. */
function withoutUrl(text: string, url: string): string {
  const spellings = [url];
  try {
    const parsed = new URL(url);
    spellings.push(parsed.href, `${parsed.origin}${parsed.pathname}`, parsed.pathname, parsed.password);
  } catch {
    // not a URL: only the text as given can appear
  }
  return spellings
    .filter((spelling) => spelling.length > 1)
    .sort((a, b) => b.length - a.length)
    .reduce((scrubbed, spelling) => scrubbed.replaceAll(spelling, '<webhook URL>'), text);
}
