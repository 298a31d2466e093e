// Property-based tests of statement import: generated statement files, each with one line
// broken in one of many ways, are refused whole with an error naming that line, and nothing
// is imported; valid files (hostile account keys included, quoted as CSV quotes them) import
// every balance exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createAccount, importStatement, isLedgerboxError } from '../src/index.ts';
import { useTestDatabase } from './support/database.ts';
import { fuzzParameters, validKeyText } from './support/fuzz.ts';

const db = await useTestDatabase();
const accounts = { 'bank:USD': 'USD', 'bank:EUR': 'EUR', 'bank:JPY': 'JPY' } as const;
for (const [key, currency] of Object.entries(accounts)) await createAccount(db.pool, { key, currency, allowNegative: true });
const exponents: Record<string, number> = { USD: 2, EUR: 2, JPY: 0 };

/** A field as a CSV writer writes it: quoted when it holds a comma, a quote or a line break. */
const csvField = (text: string) => (/[",\n\r]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text);

interface Row {
  account: string;
  currency: string;
  as_of: string;
  balance: string;
}

const amount = (currency: string) =>
  fc.tuple(fc.boolean(), fc.bigInt({ min: 0n, max: 10n ** 15n })).map(([negative, minor]) => {
    const exponent = exponents[currency]!;
    const digits = minor.toString().padStart(exponent + 1, '0');
    const text = exponent === 0 ? digits : `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
    return { text: `${negative && minor > 0n ? '-' : ''}${text}`, minor: negative ? -minor : minor };
  });

const asOf = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true })
  .chain((date) => fc.constantFrom(date.toISOString(), date.toISOString().slice(0, 10), date.toISOString().replace('Z', '+00:00')));

/** A row the ledger accepts: a known account in its currency, or an account the ledger does not know yet. */
const validRow: fc.Arbitrary<Row & { minor: bigint }> = fc
  .tuple(fc.oneof(fc.constantFrom(...Object.keys(accounts)), validKeyText.map((key) => `elsewhere:${key}`.slice(0, 200))), fc.constantFrom('USD', 'EUR', 'JPY'), asOf)
  .chain(([account, currency, as_of]) => {
    const ledgerCurrency = accounts[account as keyof typeof accounts] ?? currency;
    return amount(ledgerCurrency).map(({ text, minor }) => ({ account, currency: ledgerCurrency, as_of, balance: text, minor }));
  });

/** One way to break a row, the words the refusal must use, and the broken row. */
const breakRow: fc.Arbitrary<{ what: string; apply: (row: Row) => string }> = fc.oneof(
  fc.constantFrom('', ' ', 'a\u0001b', 'x'.repeat(201)).map((account) => ({ what: 'account', apply: (row: Row) => line({ ...row, account }) })),
  fc.constantFrom('usd', 'US', 'DOLLARS!', '€', '', '1USD').map((currency) => ({ what: 'currency', apply: (row: Row) => line({ ...row, currency }) })),
  fc.stringMatching(/^Q[A-Z]{3}$/).map((currency) => ({ what: 'not a ledgerbox currency', apply: (row: Row) => line({ ...row, currency }) })),
  fc.constant({ what: 'does not match account', apply: (row: Row) => line({ ...row, account: 'bank:USD', currency: 'EUR' }) }),
  fc
    .constantFrom('2026-02-30', '2026-13-01', '21/11/2026', '2026-11-21 10:00', '2026-11-21T10:00:00', 'yesterday', '', "'; drop table ledgerbox.statements; --")
    .map((as_of) => ({ what: 'as_of', apply: (row: Row) => line({ ...row, as_of }) })),
  fc
    .constantFrom('1,000.00', '1e5', '12.3.4', '--5', '+5', '0x10', 'NaN', 'Infinity', '', ' ', '12 345', '$12.00', '1.5e-3')
    .map((balance) => ({ what: 'balance', apply: (row: Row) => line({ ...row, balance }) })),
  fc.constant({ what: 'more decimals', apply: (row: Row) => line({ ...row, account: 'bank:JPY', currency: 'JPY', balance: '10.5' }) }),
  fc.bigInt({ min: 2n ** 63n, max: 2n ** 80n }).map((huge) => ({ what: 'beyond what a PostgreSQL bigint holds', apply: (row: Row) => line({ ...row, account: 'bank:JPY', currency: 'JPY', balance: String(huge) }) })),
  fc.integer({ min: 1, max: 3 }).map((missing) => ({ what: 'fields', apply: (row: Row) => fieldsOf(row).slice(0, 4 - missing).join(',') })),
  fc.constant({ what: 'fields', apply: (row: Row) => `${line(row)},extra` }),
);

const fieldsOf = (row: Row) => [row.account, row.currency, row.as_of, row.balance].map(csvField);
const line = (row: Row) => fieldsOf(row).join(',');
const header = 'account,currency,as_of,balance';

async function imported(): Promise<{ statements: number; balances: number }> {
  const { rows } = await db.pool.query(`select (select count(*)::int from ledgerbox.statements) as statements, (select count(*)::int from ledgerbox.statement_balances) as balances`);
  return rows[0];
}

test('a statement with one broken line is refused whole, with an error naming that line, and nothing is imported', async () => {
  const before = await imported();
  await fc.assert(
    fc.asyncProperty(fc.array(validRow, { minLength: 1, maxLength: 30 }), fc.nat(), breakRow, async (rows, position, broken) => {
      // one balance per account and moment, so no line is refused for repeating another
      const distinct = [...new Map(rows.map((row) => [`${row.account}|${row.as_of}`, row])).values()];
      const at = position % distinct.length;
      const lines = distinct.map((row, index) => (index === at ? broken.apply(row) : line(row)));
      const lineNumber = at + 2; // the header is line 1
      let refusal: unknown;
      try {
        await importStatement(db.pool, { csv: [header, ...lines].join('\n'), source: 'bank:fuzz', fileName: 'fuzz.csv' });
      } catch (error) {
        refusal = error;
      }
      assert.ok(isLedgerboxError(refusal, 'invalid_input'), `expected invalid_input for a broken ${broken.what} on line ${lineNumber}, got ${String(refusal)}`);
      const message = (refusal as Error).message;
      assert.match(message, new RegExp(`line ${lineNumber}: `), message);
      assert.ok(message.includes(broken.what), `the refusal names the ${broken.what}: ${message}`);
      assert.match(message, /nothing imported/);
    }),
    fuzzParameters(300),
  );
  assert.deepEqual(await imported(), before, 'nothing was imported');
});

test('a statement file whose shape is wrong is refused with a clear reason and nothing is imported', async () => {
  const before = await imported();
  const files = fc.oneof(
    fc.constantFrom('', '\n\n', '\ufeff'),
    fc.constant(`${header}\n`),
    fc.constantFrom('account,currency,balance', 'account;currency;as_of;balance', 'account,currency,as_of,balance,as_of', 'Account,Currency,As_Of,Balance', 'account,currency,date,balance').chain((head) =>
      validRow.map((row) => `${head}\n${line(row)}`),
    ),
    // an opening quote never closed (an account key with a quote of its own could close it)
    validRow.filter((row) => !row.account.includes('"')).map((row) => `${header}\n"${row.account},${row.currency},${row.as_of},${row.balance}`),
    validRow.map((row) => `${header}\n${row.account},${row.currency},${row.as_of},${'9'.repeat(10_001)}`),
    fc.array(validRow, { minLength: 1, maxLength: 5 }).map((rows) => [header, ...rows.map(line)].join('\n').replaceAll(',', ';')),
  );
  await fc.assert(
    fc.asyncProperty(files, async (csv) => {
      let refusal: unknown;
      try {
        await importStatement(db.pool, { csv, source: 'bank:fuzz', fileName: 'shape.csv' });
      } catch (error) {
        refusal = error;
      }
      assert.ok(isLedgerboxError(refusal, 'invalid_input'), `expected invalid_input for ${JSON.stringify(csv.slice(0, 120))}, got ${String(refusal)}`);
      assert.match((refusal as Error).message, /shape\.csv refused, nothing imported/);
    }),
    fuzzParameters(200),
  );
  assert.deepEqual(await imported(), before, 'nothing was imported');
});

test('every valid statement, hostile account keys included, imports every balance exactly', async () => {
  let sequence = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(validRow, { minLength: 1, maxLength: 20 }), fc.boolean(), async (rows, crlf) => {
      const distinct = [...new Map(rows.map((row) => [`${row.account}|${new Date(row.as_of.length === 10 ? `${row.as_of}T23:59:59.999Z` : row.as_of).getTime()}`, row])).values()];
      const csv = [header, ...distinct.map(line)].join(crlf ? '\r\n' : '\n');
      const fileName = `valid-${sequence++}.csv`;
      const result = await importStatement(db.pool, { csv, source: 'bank:fuzz', fileName });
      assert.equal(result.balances, distinct.length);
      const { rows: stored } = await db.pool.query(`select b.account as account_key, b.currency, b.balance::text from ledgerbox.statement_balances b where b.statement_id = $1 order by b.line`, [result.statementId]);
      assert.deepEqual(
        stored.map((row) => [row.account_key, row.currency, BigInt(row.balance)]),
        distinct.map((row) => [row.account, row.currency, row.minor]),
      );
    }),
    fuzzParameters(120),
  );
});
