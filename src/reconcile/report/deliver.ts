import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { array, nonempty, object, optional, pattern, size, string } from 'superstruct';
import { validate } from '../../contracts.js';
import { InvalidInputError, LedgerboxError } from '../../errors.js';
import { limits } from '../../limits.js';
import type { Logger } from '../../logger.js';
import type { RenderedReport } from '../types.js';

/**
 * How long one delivery may wait on the SMTP server. nodemailer's own defaults (two minutes
 * to connect, ten of silence) would hold a worker's job that long on a dead server; the
 * runner retries a failed send, so failing fast loses nothing.
 */
export const report_smtp_connection_timeout_ms = limits.report.smtp_connection_timeout_ms;
export const report_smtp_greeting_timeout_ms = limits.report.smtp_greeting_timeout_ms;
export const report_smtp_socket_timeout_ms = limits.report.smtp_socket_timeout_ms;
/** Addresses one report goes to (REPORT_TO). */
export const report_recipients_max = limits.report.recipients_max;

/** Where the report goes when SMTP_URL is not set and no `directory` is given. */
export const default_report_directory = '.ledgerbox/reports';
const default_from = 'ledgerbox <ledgerbox@localhost>';

export interface DeliverReportOptions {
  /** The run the report belongs to: names the .eml file and the Message-ID. Letters, digits, `_`, `.`, `-`. */
  runId: string;
  /** `smtp://user:pass@host:587` or `smtps://…:465`. When absent the message is written to a file instead. */
  smtpUrl?: string;
  /** Default `ledgerbox <ledgerbox@localhost>`. */
  from?: string;
  /** Required with `smtpUrl`: at least one address. */
  to?: string[];
  /** Where the .eml goes without SMTP. Default: LEDGERBOX_REPORT_DIR, else `.ledgerbox/reports` (relative to the working directory). */
  directory?: string;
  logger: Logger;
}

/** What nodemailer attaches to the errors it throws (the fields used here). */
interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  rejected?: string[];
  /** True when the server refused the message for good (5xx other than 503). */
  permanent?: boolean;
}

export type DeliveryResult = { sentTo: string[] } | { path: string };

const RenderedStruct = object({ subject: string(), text: string(), html: string() });

const OptionsStruct = object({
  runId: size(pattern(string(), /^[A-Za-z0-9][A-Za-z0-9_.-]*$/), 1, limits.payload_string_length_max),
  from: optional(nonempty(string())),
  to: optional(size(array(nonempty(string())), 0, report_recipients_max)),
  directory: optional(nonempty(string())),
});

/**
 * Sends a rendered report as ONE message with a text and an HTML part over SMTP, or, without
 * `smtpUrl`, writes that same message as an RFC 822 file (`reconciliation-<runId>.eml`) and
 * logs its path. A retry sends a message with the same Message-ID (mail clients show it once)
 * or overwrites the same file.
 *
 * Throws `report_send_failed` (a LedgerboxError; `retryable` unless the server refused the
 * message for good) when the server cannot be reached or refuses the message, or the file
 * cannot be written: the job that called it is retried, and the rendered report is already
 * stored with its run, so nothing is lost. Throws `invalid_input` for unusable options.
 */
export async function deliverReport(rendered: RenderedReport, options: DeliverReportOptions): Promise<DeliveryResult> {
  const message = validate(RenderedStruct, rendered, 'rendered');
  const { runId, from = default_from, to = [], directory } = validate(
    OptionsStruct,
    { runId: options.runId, from: options.from, to: options.to, directory: options.directory },
    'options',
  );
  const logger = options.logger.child({ component: 'reconciliation-report', runId });
  const mail: SendMailOptions = {
    from,
    to,
    subject: message.subject,
    text: message.text,
    html: message.html,
    // The same id on every attempt: a retry after a send whose answer was lost shows once.
    messageId: `<reconciliation-${runId}@${domainOf(from)}>`,
    headers: { 'X-Ledgerbox-Reconciliation-Run': runId },
  };
  if (options.smtpUrl === undefined) {
    return { path: await writeMessageFile(mail, runId, directory ?? defaultDirectory(), logger) };
  }
  const server = smtpServerOf(options.smtpUrl);
  if (to.length === 0) {
    throw new InvalidInputError('Expected `options.to` (REPORT_TO) to name at least one address when `smtpUrl` (SMTP_URL) is set', ['options', 'to'], to);
  }
  return { sentTo: await send(mail, options.smtpUrl, server, runId, logger) };
}

async function send(mail: SendMailOptions, smtpUrl: string, server: string, runId: string, logger: Logger): Promise<string[]> {
  const transport = nodemailer.createTransport({
    url: smtpUrl,
    connectionTimeout: report_smtp_connection_timeout_ms,
    greetingTimeout: report_smtp_greeting_timeout_ms,
    socketTimeout: report_smtp_socket_timeout_ms,
  });
  try {
    const info = await transport.sendMail(mail);
    if (info.rejected.length > 0) {
      // Not thrown: a retry would send the report again to everyone who already has it.
      logger.warn({ server, rejected: info.rejected, response: info.response }, 'reconciliation report refused for some recipients');
    }
    logger.info({ server, sentTo: info.accepted, messageId: info.messageId }, 'reconciliation report sent');
    return info.accepted.map(String);
  } catch (error) {
    const failure = error as SmtpError;
    throw new LedgerboxError('report_send_failed', `Sending the reconciliation report of run ${runId} through ${server} failed: ${failure.message}`, {
      details: {
        runId,
        server,
        smtpCode: failure.code,
        responseCode: failure.responseCode,
        response: failure.response,
        command: failure.command,
        rejected: failure.rejected,
      },
      retryable: failure.permanent !== true,
      cause: error,
    });
  } finally {
    transport.close();
  }
}

async function writeMessageFile(mail: SendMailOptions, runId: string, directory: string, logger: Logger): Promise<string> {
  const path = resolve(join(directory, `reconciliation-${runId}.eml`));
  try {
    const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    const { message } = await transport.sendMail(mail);
    await mkdir(directory, { recursive: true });
    // Written whole or not at all: a crash mid-write never leaves half a message under the real name.
    const partial = `${path}.${process.pid}.partial`;
    await writeFile(partial, message as Buffer);
    await rename(partial, path);
  } catch (error) {
    throw new LedgerboxError('report_send_failed', `Writing the reconciliation report of run ${runId} to ${path} failed: ${(error as Error).message}`, {
      details: { runId, path },
      retryable: true,
      cause: error,
    });
  }
  logger.info({ path }, 'reconciliation report written to a file (SMTP_URL is not set)');
  return path;
}

/**
 * The delivery settings from the environment, to spread into deliverReport's options:
 * SMTP_URL, REPORT_FROM, REPORT_TO (comma-separated addresses), LEDGERBOX_REPORT_DIR.
 * Empty variables count as unset.
 */
export function reportDeliveryFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<DeliverReportOptions, 'smtpUrl' | 'from' | 'to' | 'directory'> {
  const value = (name: string) => {
    const text = env[name]?.trim();
    return text === undefined || text === '' ? undefined : text;
  };
  const to = value('REPORT_TO')
    ?.split(',')
    .map((address) => address.trim())
    .filter((address) => address !== '');
  return { smtpUrl: value('SMTP_URL'), from: value('REPORT_FROM'), to, directory: value('LEDGERBOX_REPORT_DIR') };
}

function defaultDirectory(): string {
  const configured = process.env.LEDGERBOX_REPORT_DIR?.trim();
  return configured === undefined || configured === '' ? default_report_directory : configured;
}

/** `smtp://host:port`, without the credentials: safe for logs and errors. */
function smtpServerOf(smtpUrl: string): string {
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    throw new InvalidInputError('Expected `options.smtpUrl` (SMTP_URL) to be a URL like smtp://user:password@host:587', ['options', 'smtpUrl'], '(not shown: it may hold a password)');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new InvalidInputError(`Expected \`options.smtpUrl\` (SMTP_URL) to start with smtp:// or smtps://, got ${url.protocol}//`, ['options', 'smtpUrl'], url.protocol);
  }
  return `${url.protocol}//${url.host}`;
}

function domainOf(from: string): string {
  return /@([A-Za-z0-9.-]+)>?\s*$/.exec(from)?.[1] ?? 'localhost';
}
