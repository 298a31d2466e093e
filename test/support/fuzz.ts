import assert from 'node:assert/strict';
import fc from 'fast-check';
import type pg from 'pg';
import { isLedgerboxError, type ErrorCode } from '../../src/index.ts';

/**
 * fast-check's parameters for one property: a seed printed once per file, so a failing run is
 * replayed with LEDGERBOX_TEST_SEED=<seed> (fast-check also prints the seed and the path of
 * the shrunk counterexample when a property fails).
 */
const seed = Number(process.env.LEDGERBOX_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** LEDGERBOX_FUZZ_SCALE=10 runs ten times as many inputs (a long local run); CI runs scale 1. */
const scale = Number(process.env.LEDGERBOX_FUZZ_SCALE ?? 1);
let announced = false;
export function fuzzParameters(numRuns: number): fc.Parameters<unknown> {
  if (!announced) {
    console.log(`# fuzz: LEDGERBOX_TEST_SEED=${seed} LEDGERBOX_FUZZ_SCALE=${scale}`);
    announced = true;
  }
  return { seed, numRuns: Math.max(1, Math.round(numRuns * scale)), includeErrorInReport: true };
}

/** Text a careless ledger would splice into SQL, or that PostgreSQL or a terminal chokes on. */
export const hostileTexts = [
  `'; drop table ledgerbox.entries; --`,
  `" or 1=1 --`,
  `'); delete from ledgerbox.transfers where ('1'='1`,
  `$$; truncate ledgerbox.accounts cascade; $$`,
  `\\'; select pg_sleep(10); --`,
  `%s %I %L`,
  `$1 $2`,
  `E'\\x00'`,
  `ledgerbox.accounts`,
  `\u001b[31mred\u001b[0m`,
  `line\nbreak`,
  `tab\there`,
  `\u007f\u0085\u2028\u2029`,
  `emoji 💸 and 中文`,
  `{"json": true}`,
  `<script>alert(1)</script>`,
  `\\`,
  `'`,
  `''`,
  `;`,
  `--`,
  `/*`,
];

/** Any string: printable, control characters, SQL payloads, all of Unicode (but not lone surrogates or NUL). */
export const anyText = fc.oneof(
  fc.constantFrom(...hostileTexts),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((text) => text.replaceAll('\u0000', '')),
  fc.string({ unit: 'binary', maxLength: 20 }).map((text) => text.replaceAll('\u0000', '')),
  fc.string({ maxLength: 40 }),
);

/** Texts PostgreSQL cannot store as given: every input that reaches a text or jsonb column must refuse them. */
export const unstorableText = fc.oneof(
  fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([a, b]) => `${a}\u0000${b}`),
  fc.tuple(fc.string({ maxLength: 10 }), fc.integer({ min: 0xd800, max: 0xdfff })).map(([a, code]) => `${a}${String.fromCharCode(code)}x`),
);

/** A valid key (account or idempotency): 1 to 200 characters, no edge spaces, no control characters. */
export const validKeyText = fc
  .oneof(
    fc.constantFrom(...hostileTexts),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
    fc.string({ minLength: 1, maxLength: 60 }),
  )
  .map((text) => text.replace(/[\u0000-\u001f]/g, '_').trim())
  .filter((text) => text.length > 0 && text.length <= 200);

/** Strings no key may be: empty, too long, edge spaces, control characters, unpaired surrogates. */
export const invalidKeyText = fc.oneof(
  fc.constant(''),
  fc.string({ minLength: 201, maxLength: 400 }).filter((text) => text.length > 200),
  fc.string({ minLength: 1, maxLength: 20 }).map((text) => ` ${text}`),
  fc.string({ minLength: 1, maxLength: 20 }).map((text) => `${text}\t`),
  fc.tuple(fc.string({ maxLength: 10 }), fc.integer({ min: 0, max: 0x1f })).map(([text, code]) => `a${text}${String.fromCharCode(code)}b`),
  unstorableText.map((text) => `k${text}k`),
);

/** Values of the wrong type for a string field. */
export const notAString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt(),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.object({ maxDepth: 1, maxKeys: 3 }),
  fc.constant(Symbol('not a string')),
  fc.constant(null).map(() => Object.assign(Object.create(null) as object, { note: 'no prototype' })),
  fc.date(),
);

/** JSON metadata full of hostile strings, within the size limit. */
export const validMetadata = fc.dictionary(
  anyText.filter((text) => text.length > 0),
  fc.oneof(anyText, fc.integer(), fc.boolean(), fc.constant(null), fc.array(anyText, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 8 }), anyText, { maxKeys: 3 })),
  { maxKeys: 6 },
);

/** Metadata that is not a bounded, storable JSON object. */
export const invalidMetadata = fc.oneof(
  fc.oneof(fc.string(), fc.integer(), fc.array(fc.integer()), fc.boolean()),
  fc.integer({ min: 16_400, max: 40_000 }).map((length) => ({ blob: 'x'.repeat(length) })),
  fc.integer({ min: 600, max: 2_000 }).map((count) => Object.fromEntries(Array.from({ length: count }, (_, index) => [`field_${index}`, 'value of some length']))),
  fc.bigInt().map((value) => ({ amount: value })),
  unstorableText.map((text) => ({ note: text })),
  unstorableText.map((text) => ({ [text]: 'key is unstorable' })),
  unstorableText.map((text) => ({ nested: { deeper: [1, text] } })),
);

/**
 * Asserts `attempt` fails with a LedgerboxError of `code`; returns it. Anything else (success, a
 * raw pg error, a TypeError) fails the property with what happened.
 */
export async function assertRefused(attempt: () => Promise<unknown> | unknown, code: ErrorCode, what: string): Promise<Error> {
  let outcome: unknown;
  try {
    outcome = await attempt();
  } catch (error) {
    if (isLedgerboxError(error) && error.code === code) return error;
    assert.fail(`${what}: expected a LedgerboxError \`${code}\`, got ${isLedgerboxError(error) ? `\`${error.code}\`` : 'a raw error'}: ${(error as Error)?.stack ?? String(error)}`);
  }
  assert.fail(`${what}: expected \`${code}\`, but it succeeded: ${String(outcome)}`);
}

/**
 * Rows in every ledgerbox table and graphile-worker's job table, and every account's cached
 * balances and version. The tables a refused call could write are append-only or only grow,
 * so equal snapshots before and after a batch of refused calls mean none of them wrote a row.
 */
export async function databaseSnapshot(pool: pg.Pool): Promise<Record<string, unknown>> {
  const { rows: tables } = await pool.query<{ name: string }>(
    `select c.relname as name from pg_class c where c.relnamespace = 'ledgerbox'::regnamespace and c.relkind = 'r' order by 1`,
  );
  const counts = tables.map((table) => `(select count(*)::int from ledgerbox.${JSON.stringify(table.name)}) as ${JSON.stringify(table.name)}`).join(', ');
  const { rows } = await pool.query(`
    select ${counts},
      (select count(*)::int from graphile_worker._private_jobs) as jobs,
      (select string_agg(format('%s=%s/%s/%s v%s', key, posted_balance, pending_incoming, pending_outgoing, version), ', ' order by key)
         from ledgerbox.accounts) as balances`);
  return rows[0];
}
