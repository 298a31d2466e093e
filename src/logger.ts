import { pino, type Logger } from 'pino';
import { Logger as WorkerLogger } from 'graphile-worker';

export type { Logger };

/**
 * The logger used when the host passes none. A library stays quiet unless asked:
 * LEDGERBOX_LOG_LEVEL (default `silent`) turns it up.
 */
export function defaultLogger(): Logger {
  return pino({ name: 'ledgerbox', level: process.env.LEDGERBOX_LOG_LEVEL ?? 'silent' });
}

/** graphile-worker's log calls, routed into pino. @internal */
export function workerLoggerFor(logger: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const child = logger.child({ component: 'graphile-worker', ...scope });
    const method = level === 'error' ? 'error' : level === 'warning' ? 'warn' : level === 'debug' ? 'debug' : 'info';
    child[method](meta ?? {}, message);
  });
}
