import { html } from '../html.js';
import type { Page } from '../layout.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const idPattern = /^[1-9]\d{0,18}$/;

/** Query and path values are checked before they reach a query: a malformed one is a 404, not a database error. */
export function uuidOrUndefined(value: string | null | undefined): string | undefined {
  return value !== null && value !== undefined && uuidPattern.test(value) ? value.toLowerCase() : undefined;
}

export function idOrUndefined(value: string | null | undefined): string | undefined {
  return value !== null && value !== undefined && idPattern.test(value) ? value : undefined;
}

export function notFound(text: string): Page {
  return { title: 'Not found', body: html`<p>${text}</p>`, status: 404 };
}
