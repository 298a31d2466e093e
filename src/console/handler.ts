import type { IncomingMessage, ServerResponse } from 'node:http';
import { boolean, define, integer, object, optional, pattern, size, string, union } from 'superstruct';
import type { Logger } from 'pino';
import { autocommitSession, type DatabaseHandle } from '../db/handle.js';
import { LoggerShape, secretValue, validate } from '../contracts.js';
import { defaultLogger } from '../logger.js';
import { isLedgerboxError } from '../errors.js';
import { ConsoleAuth, clearedSessionCookie, isCrossSite } from './auth.js';
import { html, Html } from './html.js';
import { layout, type Page, type PageContext } from './layout.js';
import { selectCurrencies } from './console-queries.js';
import { isActionName, runAction } from './actions.js';
import { overviewPage } from './pages/overview.js';
import { workflowPage, workflowsPage } from './pages/workflows.js';
import { failedJobsPage, limboPage, stuckPage } from './pages/operations.js';
import { runPage, runReportText, runsPage } from './pages/reconciliation.js';
import { alertsPage } from './pages/alerts.js';

/** What `/metrics` serves: a prom-client Registry, or anything with its two members. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface ConsoleOptions {
  /** Where the console reads (and, with `actions`, writes): a pool is best, pages read in parallel. */
  db: DatabaseHandle;
  /** Every request must show it (`Authorization: Bearer <token>`, or the login form's cookie). 8 to 512 printable ASCII characters, no spaces. */
  token: string;
  /** Show and accept the operator actions (retry a job, resume or cancel a workflow, close an investigation). Default false: read-only. */
  actions?: boolean;
  /** The path the console is mounted under in the host's server (`/ledgerbox`). Default `''`. */
  basePath?: string;
  /** A hold pending longer than this is money in limbo. Default one day. */
  limboSla_ms?: number;
  /** Served at `/metrics` (same token): e.g. `createDatabaseMetrics(db)`. Without it, `/metrics` is a 404. */
  metrics?: MetricsSource;
  logger?: Logger;
}

/** A node:http request listener; Express and Fastify (through its raw request) take it too. */
export type ConsoleHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

const ConsoleToken = secretValue(
  define<string>('console token (8 to 512 printable ASCII characters, no spaces)', (value) => typeof value === 'string' && /^[\x21-\x7e]{8,512}$/.test(value)),
);
const MetricsShape = define<MetricsSource>('a prom-client Registry', (value) => typeof value === 'object' && value !== null && typeof (value as MetricsSource).metrics === 'function');

const ConsoleOptionsStruct = object({
  db: define<DatabaseHandle>('a database handle', (value) => typeof value === 'object' && value !== null),
  token: ConsoleToken,
  actions: optional(boolean()),
  basePath: optional(union([pattern(string(), /^(\/[A-Za-z0-9._~-]+)+$/), size(string(), 0, 0)])),
  limboSla_ms: optional(size(integer(), 0, 365 * 24 * 3_600_000)),
  metrics: optional(MetricsShape),
  logger: optional(LoggerShape),
});

/** A form is small: an id, a reason of at most 500 characters, the CSRF field. */
const form_bytes_max = 16 * 1024;

const securityHeaders: Record<string, string> = {
  // no script at all, styles only inline, forms only to ourselves, never framed
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin', // nothing leaks to other sites; our own forms keep their Origin
  'Cache-Control': 'no-store',
};

const flashCookieName = 'ledgerbox_console_flash';

/**
 * The operator's web console as a request handler: mount it in the host's own HTTP server
 * (`http.createServer(handler)`, `app.use('/ledgerbox', handler)` with `basePath: '/ledgerbox'`),
 * or run `npx ledgerbox console`, which serves it on its own. Server-rendered pages, no script.
 */
export function createConsoleHandler(options: ConsoleOptions): ConsoleHandler {
  const checked = validate(ConsoleOptionsStruct, options, 'options');
  const auth = new ConsoleAuth(checked.token);
  const base = checked.basePath ?? '';
  const actions = checked.actions ?? false;
  const limboSla_ms = checked.limboSla_ms ?? 24 * 3_600_000;
  const logger = (checked.logger ?? defaultLogger()).child({ component: 'console' });
  const db = checked.db;

  return async (request, response) => {
    try {
      await handle(request, response);
    } catch (error) {
      logger.error({ err: error, url: request.url, method: request.method }, 'console request failed');
      if (!response.headersSent) send(response, 500, 'text/html; charset=utf-8', plainPage('Something went wrong', 'The console could not answer; the error is in the service’s log.'));
      else response.end();
    }
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(stripBase(request.url ?? '/'), 'http://console.invalid');
    const method = request.method ?? 'GET';
    const path = url.pathname.length > 1 && url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;

    if (path === '/login') return login(request, response, method);
    const authenticated = auth.authenticate(request);
    if (authenticated === null) return unauthorized(response, base, method === 'GET' || method === 'HEAD');

    if (path === '/logout') {
      if (method !== 'POST') return methodNotAllowed(response, 'POST');
      if (isCrossSite(request)) return forbidden(response, 'A logout must come from the console itself.');
      return redirect(response, `${base}/login`, [clearedSessionCookie]);
    }

    if (path.startsWith('/actions/')) {
      if (method !== 'POST') return methodNotAllowed(response, 'POST');
      return action(request, response, path.slice('/actions/'.length));
    }

    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(response, 'GET, HEAD');

    if (path === '/metrics') {
      if (checked.metrics === undefined) return send(response, 404, 'text/plain; charset=utf-8', 'No metrics are configured for this console.\n');
      return send(response, 200, checked.metrics.contentType, await checked.metrics.metrics());
    }

    const session = autocommitSession(db);
    const currencies = await selectCurrencies(session);
    const context: PageContext = {
      db: session,
      base,
      url,
      exponents: new Map(currencies.map((currency) => [currency.code, currency.exponent])),
      actions,
      csrfToken: auth.csrfToken,
      limboSla_ms,
    };

    const report = /^\/reconciliation\/([^/]+)\/report\.txt$/.exec(path);
    if (report !== null) {
      const text = await runReportText(context, report[1] ?? '');
      if (text === undefined) return send(response, 404, 'text/plain; charset=utf-8', 'No report for this run.\n');
      return send(response, 200, 'text/plain; charset=utf-8', text);
    }

    const page = await route(context, path);
    const flash = readFlash(request);
    const headers = flash === undefined ? [] : [`${flashCookieName}=; Path=${base || '/'}; HttpOnly; SameSite=Strict; Max-Age=0`];
    send(response, page.status ?? 200, 'text/html; charset=utf-8', layout(context, page, flash).text, headers);
  }

  function stripBase(requestUrl: string): string {
    // node:http gives the whole path; Express's app.use('/ledgerbox', …) has already taken the mount off
    if (base !== '' && (requestUrl === base || requestUrl.startsWith(`${base}/`) || requestUrl.startsWith(`${base}?`))) {
      const rest = requestUrl.slice(base.length);
      return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
    }
    return requestUrl;
  }

  async function route(context: PageContext, path: string): Promise<Page> {
    switch (path) {
      case '/':
        return overviewPage(context);
      case '/workflows':
        return workflowsPage(context);
      case '/failed-jobs':
        return failedJobsPage(context);
      case '/stuck':
        return stuckPage(context);
      case '/limbo':
        return limboPage(context);
      case '/reconciliation':
        return runsPage(context);
      case '/alerts':
        return alertsPage(context);
    }
    const workflow = /^\/workflows\/([^/]+)$/.exec(path);
    if (workflow !== null) return workflowPage(context, decodeURIComponent(workflow[1] ?? ''));
    const run = /^\/reconciliation\/([^/]+)$/.exec(path);
    if (run !== null) return runPage(context, decodeURIComponent(run[1] ?? ''));
    return { title: 'Not found', body: html`<p>No page ${path}.</p>`, status: 404 };
  }

  async function login(request: IncomingMessage, response: ServerResponse, method: string): Promise<void> {
    if (method === 'GET' || method === 'HEAD') return send(response, 200, 'text/html; charset=utf-8', loginPage(base, false));
    if (method !== 'POST') return methodNotAllowed(response, 'GET, POST');
    // a login forced from another site would sign the operator into someone else's console
    if (isCrossSite(request)) return forbidden(response, 'A login must come from the console itself.');
    const fields = await readForm(request);
    if (fields === undefined) return send(response, 413, 'text/plain; charset=utf-8', 'The form is too large.\n');
    if (!auth.isToken(fields.token ?? '')) {
      logger.warn({ remote: request.socket.remoteAddress }, 'console login refused: wrong token');
      return send(response, 401, 'text/html; charset=utf-8', loginPage(base, true), [], { 'WWW-Authenticate': 'Bearer realm="ledgerbox console"' });
    }
    return redirect(response, `${base}/`, [auth.sessionCookie(isSecure(request))]);
  }

  async function action(request: IncomingMessage, response: ServerResponse, name: string): Promise<void> {
    if (!actions) return forbidden(response, 'Actions are disabled on this console (start it with --enable-actions, or `actions: true`).');
    // the cookie rides along with a cross-site form, so the origin and the CSRF field are both checked
    if (isCrossSite(request)) return forbidden(response, 'Refused: this request came from another site.');
    const fields = await readForm(request);
    if (fields === undefined) return send(response, 413, 'text/plain; charset=utf-8', 'The form is too large.\n');
    if (!auth.isCsrfToken(fields.csrf)) return forbidden(response, 'Refused: the form is not one this console made (reload the page and try again).');
    if (!isActionName(name)) return send(response, 404, 'text/html; charset=utf-8', plainPage('Not found', `No action ${name}.`));
    const returnTo = safeReturnPath(fields.return_to);
    const { csrf: _csrf, return_to: _returnTo, ...actionFields } = fields;
    let flash: { text: string; error: boolean };
    try {
      const text = await runAction(db, name, actionFields);
      logger.info({ action: name, fields: actionFields }, 'console action done');
      flash = { text, error: false };
    } catch (error) {
      if (!isLedgerboxError(error)) throw error;
      logger.warn({ action: name, code: error.code, fields: actionFields }, 'console action refused');
      flash = { text: `${name} refused (${error.code}): ${error.message}`, error: true };
    }
    return redirect(response, `${base}${returnTo}`, [flashCookie(flash)]);
  }

  function flashCookie(flash: { text: string; error: boolean }): string {
    const value = Buffer.from(JSON.stringify(flash), 'utf8').toString('base64url');
    return `${flashCookieName}=${value}; Path=${base || '/'}; HttpOnly; SameSite=Strict; Max-Age=60`;
  }
}

/** The one-shot message an action leaves for the page it returns to, kept in a cookie (never in the URL, where a link could forge it). */
function readFlash(request: IncomingMessage): { text: string; error: boolean } | undefined {
  const header = request.headers.cookie ?? '';
  const part = header.split(';').map((piece) => piece.trim()).find((piece) => piece.startsWith(`${flashCookieName}=`));
  const value = part?.slice(flashCookieName.length + 1);
  if (value === undefined || value === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { text?: unknown }).text === 'string') {
      return { text: String((parsed as { text: string }).text).slice(0, 1_000), error: (parsed as { error?: unknown }).error === true };
    }
  } catch {
    // a cookie we did not write: no message
  }
  return undefined;
}

/** Only a path of this console: never `//host` or `https://…`, so an action cannot send the operator elsewhere. */
function safeReturnPath(candidate: string | undefined): string {
  if (candidate === undefined || !candidate.startsWith('/') || candidate.startsWith('//') || candidate.includes('\\') || /[\r\n]/.test(candidate)) return '/';
  return candidate.slice(0, 2_000);
}

/** The body of a urlencoded form, at most form_bytes_max; undefined when larger. A body a host framework already parsed is taken as it is. */
async function readForm(request: IncomingMessage): Promise<Record<string, string> | undefined> {
  const parsed = (request as { body?: unknown }).body;
  if (typeof parsed === 'object' && parsed !== null && !Buffer.isBuffer(parsed)) {
    return Object.fromEntries(Object.entries(parsed as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += (chunk as Buffer).length;
    if (bytes > form_bytes_max) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

function isSecure(request: IncomingMessage): boolean {
  return (request.socket as { encrypted?: boolean }).encrypted === true || request.headers['x-forwarded-proto'] === 'https';
}

function send(response: ServerResponse, status: number, contentType: string, body: string, cookies: readonly string[] = [], extra: Record<string, string> = {}): void {
  response.statusCode = status;
  for (const [name, value] of Object.entries({ ...securityHeaders, ...extra })) response.setHeader(name, value);
  response.setHeader('Content-Type', contentType);
  if (cookies.length > 0) response.setHeader('Set-Cookie', [...cookies]);
  response.setHeader('Content-Length', Buffer.byteLength(body));
  response.end(response.req?.method === 'HEAD' ? undefined : body);
}

/** 303: the browser follows with a GET, so a reload does not repeat the action. */
function redirect(response: ServerResponse, location: string, cookies: readonly string[] = []): void {
  send(response, 303, 'text/plain; charset=utf-8', `See ${location}\n`, cookies, { Location: location });
}

function unauthorized(response: ServerResponse, base: string, showLogin: boolean): void {
  const body = showLogin
    ? plainPage('Sign in', html`The console needs its token. <a href="${base}/login">Sign in</a>, or send <code>Authorization: Bearer &lt;token&gt;</code>.`)
    : 'The console needs its token: Authorization: Bearer <token>\n';
  send(response, 401, showLogin ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8', body, [], { 'WWW-Authenticate': 'Bearer realm="ledgerbox console"' });
}

function forbidden(response: ServerResponse, text: string): void {
  send(response, 403, 'text/html; charset=utf-8', plainPage('Forbidden', text));
}

function methodNotAllowed(response: ServerResponse, allow: string): void {
  send(response, 405, 'text/plain; charset=utf-8', `Method not allowed: ${allow}\n`, [], { Allow: allow });
}

function plainPage(title: string, text: string | Html): string {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title} · ledgerbox</title>
<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem;max-width:40rem}</style></head><body><h1>${title}</h1><p>${text}</p></body></html>`.text;
}

function loginPage(base: string, wrong: boolean): string {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · ledgerbox</title>
<style>body{font:15px/1.45 system-ui,sans-serif;margin:2rem;max-width:28rem} input{width:100%;padding:.4rem;margin:.4rem 0} .error{color:#c0392b}</style></head>
<body><h1>ledgerbox console</h1>${wrong ? html`<p class="error" role="alert">That is not the console's token.</p>` : ''}
<form method="post" action="${base}/login"><label>Token <input type="password" name="token" required autocomplete="current-password" autofocus></label>
<button type="submit">Sign in</button></form></body></html>`.text;
}
