import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Who may see the console: whoever shows the token, as `Authorization: Bearer <token>` (curl,
 * a Prometheus scrape) or as the session cookie the login form sets. The cookie holds an HMAC
 * of the token, never the token itself, so changing the token logs every browser out.
 *
 * Actions are forms that POST; a browser sends the cookie along with a cross-site form too,
 * so every POST must also (1) come from the console's own origin (`Origin`, or
 * `Sec-Fetch-Site`, which every current browser sends) and (2) carry the CSRF field, an HMAC
 * of the token a cross-site page cannot read. The cookie is also SameSite=Strict.
 */
export const sessionCookieName = 'ledgerbox_console';

export class ConsoleAuth {
  readonly #token: Buffer;
  readonly sessionValue: string;
  readonly csrfToken: string;

  constructor(token: string) {
    this.#token = Buffer.from(token, 'utf8');
    this.sessionValue = this.#derive('session');
    this.csrfToken = this.#derive('csrf');
  }

  #derive(purpose: string): string {
    return createHmac('sha256', this.#token).update(`ledgerbox console ${purpose}`).digest('base64url');
  }

  /** How the request proved it holds the token, or null: then it gets a 401. */
  authenticate(request: IncomingMessage): 'bearer' | 'cookie' | null {
    const authorization = request.headers.authorization;
    if (authorization !== undefined) {
      const match = /^Bearer\s+(.+)$/i.exec(authorization.trim());
      return match?.[1] !== undefined && this.isToken(match[1]) ? 'bearer' : null;
    }
    const cookie = readCookie(request, sessionCookieName);
    return cookie !== undefined && equalSecrets(cookie, this.sessionValue) ? 'cookie' : null;
  }

  isToken(candidate: string): boolean {
    return equalSecrets(candidate, this.#token.toString('utf8'));
  }

  isCsrfToken(candidate: string | undefined): boolean {
    return candidate !== undefined && equalSecrets(candidate, this.csrfToken);
  }

  sessionCookie(secure: boolean): string {
    return `${sessionCookieName}=${this.sessionValue}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  }
}

export const clearedSessionCookie = `${sessionCookieName}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;

/** Compares two secrets in time that does not depend on where they differ. */
export function equalSecrets(candidate: string, secret: string): boolean {
  const a = Buffer.from(candidate, 'utf8');
  const b = Buffer.from(secret, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether a state-changing request came from another site: its `Origin` names another host
 * than the one it was sent to, or the browser says `Sec-Fetch-Site: cross-site`/`same-site`
 * (another port or subdomain counts as another site here: the console trusts only itself).
 */
export function isCrossSite(request: IncomingMessage): boolean {
  // every current browser sends Sec-Fetch-Site, and it cannot be set by a page's script; it is
  // the better witness: a page under a strict referrer policy sends `Origin: null` even to itself
  const fetchSite = request.headers['sec-fetch-site'];
  if (fetchSite !== undefined) return fetchSite !== 'same-origin' && fetchSite !== 'none';
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  if (origin === 'null') return true;
  try {
    return new URL(origin).host !== request.headers.host;
  } catch {
    return true;
  }
}

function readCookie(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}
