import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { Logger as WorkerLogger } from 'graphile-worker';
import { InvalidInputError, describeValue } from './errors.js';

export type { Logger };

/**
 * Fields that hold credentials, wherever a log line might carry them (a pool's options, a
 * delivery's settings, an error's config): the database URL and password, the SMTP URL, the
 * webhook URLs. ledgerbox never logs them on purpose; this is the net under that rule, and a
 * host can spread `redactedLogFields` into its own pino options.
 */
const secretFields = ['connectionString', 'password', 'smtpUrl', 'oncallWebhookUrl', 'opsWebhookUrl', 'webhookUrl', 'databaseUrl', 'DATABASE_URL', 'SMTP_URL'];
export const redactedLogFields: NonNullable<LoggerOptions['redact']> = {
  paths: secretFields.flatMap((field) => [field, `*.${field}`, `*.*.${field}`]),
  censor: '[redacted]',
};

/**
 * The logger used when the host passes none. A library stays quiet unless asked:
 * LEDGERBOX_LOG_LEVEL (default `silent`) turns it up. `destination` is for tests.
 */
export function defaultLogger(destination?: DestinationStream): Logger {
  const level = process.env.LEDGERBOX_LOG_LEVEL ?? 'silent';
  if (!Object.hasOwn(pino.levels.values, level) && level !== 'silent') {
    throw new InvalidInputError(
      `Invalid LEDGERBOX_LOG_LEVEL: expected one of silent, ${Object.keys(pino.levels.values).join(', ')}, got ${describeValue(level)}`,
      ['LEDGERBOX_LOG_LEVEL'],
      level,
    );
  }
  const options: LoggerOptions = { name: 'ledgerbox', level, redact: redactedLogFields };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** graphile-worker's log calls, routed into pino. @internal */
export function workerLoggerFor(logger: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const child = logger.child({ component: 'graphile-worker', ...scope });
    const method = level === 'error' ? 'error' : level === 'warning' ? 'warn' : level === 'debug' ? 'debug' : 'info';
    child[method](meta ?? {}, message);
  });
}
