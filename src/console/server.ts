import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { boolean, integer, object, optional, size, string } from 'superstruct';
import type { Logger } from 'pino';
import { LoggerShape, validate } from '../contracts.js';
import { createConsoleHandler, type MetricsSource } from './handler.js';

export interface StartConsoleOptions {
  connectionString: string;
  token: string;
  /** Default 127.0.0.1: the console is for the people on this machine (or behind its proxy) unless told otherwise. */
  host?: string;
  /** Default 4680; 0 picks a free port (see `url`). */
  port?: number;
  /** Default false. Without actions, the console's connections are read-only (`default_transaction_read_only`). */
  actions?: boolean;
  limboSla_ms?: number;
  /** Build what `/metrics` serves from the console's own pool (the CLI passes `createDatabaseMetrics`). */
  metrics?: (pool: pg.Pool) => MetricsSource;
  logger?: Logger;
}

export interface RunningConsole {
  /** `http://127.0.0.1:4680`: where it listens. */
  url: string;
  close(): Promise<void>;
}

const StartConsoleOptionsStruct = object({
  connectionString: size(string(), 1, 10_000),
  token: string(), // checked by createConsoleHandler, which names the rule
  host: optional(size(string(), 1, 255)),
  port: optional(size(integer(), 0, 65_535)),
  actions: optional(boolean()),
  limboSla_ms: optional(integer()),
  metrics: optional(object()),
  logger: optional(LoggerShape),
});

/**
 * Serves the console on its own node:http server with a small pool of its own: what
 * `npx ledgerbox console` runs. A host that has a server mounts createConsoleHandler instead.
 */
export async function startConsole(options: StartConsoleOptions): Promise<RunningConsole> {
  const { metrics, ...rest } = options;
  const checked = validate(StartConsoleOptionsStruct, rest, 'options');
  const actions = checked.actions ?? false;
  const pool = new pg.Pool({
    connectionString: checked.connectionString,
    max: 4,
    application_name: 'ledgerbox console',
    // read-only unless actions are on: a console bug then cannot write, whatever it sends
    ...(actions ? {} : { options: '-c default_transaction_read_only=on' }),
  });
  pool.on('error', () => undefined); // an idle connection dropped by the server: the next query reconnects
  let server: Server | undefined;
  try {
    const handler = createConsoleHandler({
      db: pool,
      token: checked.token,
      actions,
      ...(checked.limboSla_ms === undefined ? {} : { limboSla_ms: checked.limboSla_ms }),
      ...(metrics === undefined ? {} : { metrics: metrics(pool) }),
      ...(checked.logger === undefined ? {} : { logger: checked.logger }),
    });
    server = createServer((request, response) => void handler(request, response));
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(checked.port ?? 4680, checked.host ?? '127.0.0.1', () => resolve());
    });
  } catch (error) {
    server?.close();
    await pool.end();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const running = server;
  return {
    url: `http://${host}:${address.port}`,
    close: async () => {
      running.closeAllConnections();
      await new Promise<void>((resolve) => running.close(() => resolve()));
      await pool.end();
    },
  };
}
