import type pg from 'pg';
import { pgFormat, type SQLQuery } from '@databases/pg';
import type { Session } from '../src/db/handle.ts';

/** ledgerbox's internal query functions on a node-postgres connection the benchmark holds itself. */
export function sessionOf(client: pg.PoolClient | pg.Pool): Session {
  return {
    async query(query: SQLQuery) {
      const { text, values } = query.format(pgFormat);
      return (await client.query(text, values)).rows;
    },
  };
}
