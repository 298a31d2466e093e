import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether the request's `Authorization: Bearer …` is the token, compared in constant time. */
function authorized(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined) return true;
  const match = /^Bearer (.+)$/i.exec(header ?? '');
  return match !== null && timingSafeEqual(digest(match[1]!.trim()), digest(token));
}

/**
 * Serves GET /metrics from `registry` (401 without the token when there is one, 404 elsewhere,
 * 405 for another method). Listens before it resolves; a port that cannot be had is refused
 * as `invalid_input` on `options.metrics.port`.
 * @internal
 */
export async function serveMetrics(registry: Registry, options: { port: number; host: string; token?: string | undefined }, logger: Logger): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://metrics').pathname;
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
      return;
    }
    if (!authorized(request.headers.authorization, options.token)) {
      response.writeHead(401, { 'www-authenticate': 'Bearer realm="ledgerbox metrics"', 'content-type': 'text/plain; charset=utf-8' }).end('unauthorized\n');
      return;
    }
    registry.metrics().then(
      (body) => response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(request.method === 'HEAD' ? undefined : body),
      (error: unknown) => {
        logger.error({ err: error }, 'metrics scrape failed');
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    const refused = (error: NodeJS.ErrnoException) =>
      reject(new InvalidInputError(`Invalid \`options.metrics.port\`: cannot listen on ${options.host}:${options.port} (${error.code ?? error.message})`, ['options', 'metrics', 'port'], options.port));
    server.once('error', refused);
    server.listen(options.port, options.host, () => {
      server.off('error', refused);
      server.on('error', (error) => logger.error({ err: error }, 'metrics server failed'));
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // keep-alive connections of a scraper would hold close() open
        server.closeAllConnections();
      }),
  };
}
