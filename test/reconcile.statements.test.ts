import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidInputError, createAccount, importStatement, isLedgerboxError, postTransfer } from '../src/index.ts';
import { renderReport } from '../src/reconcile/report/index.ts';
import { reconcile } from '../src/reconcile/run.ts';
import type { Finding } from '../src/reconcile/types.ts';
import { useTestDatabase } from './support/database.ts';
import { usd } from './support/money.ts';

// External statements: a bank's or processor's balances imported from CSV exactly (minor units
// in each currency's exponent), every bad line named with nothing written, and reconciliation
// comparing them with the ledger.

const db = await useTestDatabase();

await createAccount(db.pool, { key: 'world:USD', currency: 'USD', allowNegative: true });
await createAccount(db.pool, { key: 'bank:usd', currency: 'USD' });
await createAccount(db.pool, { key: 'bank:jpy', currency: 'JPY' });
await createAccount(db.pool, { key: 'bank:kwd', currency: 'KWD' });

interface StoredBalance {
  line: number;
  account: string;
  currency: string;
  as_of: string;
  balance: string;
}

async function storedBalances(statementId: string): Promise<StoredBalance[]> {
  const { rows } = await db.pool.query(
    `select line, account, currency, as_of, balance::text as balance from ledgerbox.statement_balances where statement_id = $1 order by line`,
    [statementId],
  );
  return rows.map((row) => ({ ...row, as_of: (row.as_of as Date).toISOString() }));
}

async function counts(): Promise<{ statements: number; balances: number; lines: number }> {
  const { rows } = await db.pool.query(`
    select (select count(*)::int from ledgerbox.statements) as statements, (select count(*)::int from ledgerbox.statement_balances) as balances,
      (select count(*)::int from ledgerbox.statement_lines) as lines`);
  return rows[0];
}

interface StoredLine {
  line: number;
  account: string;
  currency: string;
  as_of: string;
  amount: string;
  reference: string | null;
  description: string | null;
}

async function storedLines(statementId: string): Promise<StoredLine[]> {
  const { rows } = await db.pool.query(
    `select line, account, currency, as_of, amount::text as amount, reference, description from ledgerbox.statement_lines where statement_id = $1 order by line`,
    [statementId],
  );
  return rows.map((row) => ({ ...row, as_of: (row.as_of as Date).toISOString() }));
}

/** Asserts the CSV is refused as invalid input naming every expected line, and that nothing was written. */
async function assertRefused(csv: string, expected: readonly string[]): Promise<InvalidInputError> {
  const before = await counts();
  const error = await importStatement(db.pool, { csv, source: 'bank:test', fileName: 'statement.csv' }).then(
    () => assert.fail('the statement was imported'),
    (error: unknown) => error,
  );
  assert.ok(error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
  assert.equal(error.code, 'invalid_input');
  assert.deepEqual(error.path, ['csv']);
  assert.match(error.message, /statement statement\.csv refused, nothing imported/);
  for (const text of expected) assert.ok(error.message.includes(text), `the message names ${JSON.stringify(text)}:\n${error.message}`);
  assert.deepEqual(await counts(), before, 'nothing written');
  return error;
}

const csv = (...lines: string[]) => `${lines.join('\n')}\n`;

test('a statement imports exactly: minor units in each currency’s exponent (USD 2, JPY 0, KWD 3), to the bigint bounds', async () => {
  const before = await counts();
  const imported = await importStatement(db.pool, {
    source: 'bank:acme',
    fileName: 'acme-2026-03.csv',
    csv: csv(
      'account,currency,as_of,balance',
      'bank:usd,USD,2026-03-31T23:59:59Z,1234.56',
      'bank:usd,USD,2026-03-30T23:59:59Z,-12.30',
      'bank:jpy,JPY,2026-03-31T10:00:00+09:00,1500000',
      'bank:kwd,KWD,2026-03-31T23:59:59.5Z,12.345',
      'bank:kwd,KWD,2026-03-30T23:59:59Z,3',
      'processor:not-in-ledger,USD,2026-03-31T23:59:59Z,0',
      'processor:short,USD,2026-03-31T23:59:59Z,7.5',
      'processor:tiny,KWD,2026-03-31T23:59:59Z,-0.001',
      'processor:max,JPY,2026-03-31T23:59:59Z,9223372036854775807',
      // dated after the reconciliations below: its difference from an empty ledger account (2^63) is beyond a bigint
      'processor:min,JPY,2099-12-31T23:59:59Z,-9223372036854775808',
      'processor:max-usd,USD,2026-03-31T23:59:59Z,92233720368547758.07',
    ),
  });
  assert.equal(imported.balances, 11);
  assert.equal(imported.lines, 0, 'the balances-only format has no lines');
  assert.match(imported.statementId, /^\d+$/);
  assert.deepEqual(await storedBalances(imported.statementId), [
    { line: 2, account: 'bank:usd', currency: 'USD', as_of: '2026-03-31T23:59:59.000Z', balance: '123456' },
    { line: 3, account: 'bank:usd', currency: 'USD', as_of: '2026-03-30T23:59:59.000Z', balance: '-1230' },
    { line: 4, account: 'bank:jpy', currency: 'JPY', as_of: '2026-03-31T01:00:00.000Z', balance: '1500000' },
    { line: 5, account: 'bank:kwd', currency: 'KWD', as_of: '2026-03-31T23:59:59.500Z', balance: '12345' },
    { line: 6, account: 'bank:kwd', currency: 'KWD', as_of: '2026-03-30T23:59:59.000Z', balance: '3000' },
    { line: 7, account: 'processor:not-in-ledger', currency: 'USD', as_of: '2026-03-31T23:59:59.000Z', balance: '0' },
    { line: 8, account: 'processor:short', currency: 'USD', as_of: '2026-03-31T23:59:59.000Z', balance: '750' },
    { line: 9, account: 'processor:tiny', currency: 'KWD', as_of: '2026-03-31T23:59:59.000Z', balance: '-1' },
    { line: 10, account: 'processor:max', currency: 'JPY', as_of: '2026-03-31T23:59:59.000Z', balance: '9223372036854775807' },
    { line: 11, account: 'processor:min', currency: 'JPY', as_of: '2099-12-31T23:59:59.000Z', balance: '-9223372036854775808' },
    { line: 12, account: 'processor:max-usd', currency: 'USD', as_of: '2026-03-31T23:59:59.000Z', balance: '9223372036854775807' },
  ]);
  const { rows } = await db.pool.query(`select source, file_name, imported_by from ledgerbox.statements where id = $1`, [imported.statementId]);
  assert.deepEqual(rows, [{ source: 'bank:acme', file_name: 'acme-2026-03.csv', imported_by: 'postgres' }]);
  assert.deepEqual(await counts(), { statements: before.statements + 1, balances: before.balances + 11, lines: before.lines });
});

test('columns in any order, spaces around fields, CRLF line endings, a byte order mark and blank lines are read', async () => {
  const imported = await importStatement(db.pool, {
    source: 'processor:stripe',
    fileName: 'payouts.csv',
    csv: '\ufeffbalance , as_of,currency,  account\r\n\r\n 10.00 ,2026-03-31T12:00:00-05:00, USD ,"bank:usd"\r\n,,,\r\n"-0.50",2026-03-31T00:00:00Z,KWD,bank:kwd\r\n\r\n',
  });
  assert.equal(imported.balances, 2);
  assert.deepEqual(await storedBalances(imported.statementId), [
    { line: 3, account: 'bank:usd', currency: 'USD', as_of: '2026-03-31T17:00:00.000Z', balance: '1000' },
    { line: 5, account: 'bank:kwd', currency: 'KWD', as_of: '2026-03-31T00:00:00.000Z', balance: '-500' },
  ]);
});

test('a date-only as_of means the end of that day in UTC', async () => {
  const imported = await importStatement(db.pool, {
    source: 'bank:acme',
    fileName: 'daily.csv',
    csv: csv('account,currency,as_of,balance', 'bank:usd,USD,2026-03-31,1.00', 'bank:usd,USD,2028-02-29,2.00'),
  });
  assert.deepEqual(
    (await storedBalances(imported.statementId)).map((row) => row.as_of),
    ['2026-03-31T23:59:59.999Z', '2028-02-29T23:59:59.999Z'],
  );
});

test('every bad row is refused at once, each named by its line and value, and nothing is written', async () => {
  await assertRefused(
    csv(
      'account,currency,as_of,balance',
      'bank:usd,USD,2026-03-31T23:59:59Z,1.00', // good: does not rescue the file
      'bank:usd,XYZ,2026-03-31T23:59:59Z,1.00',
      'bank:usd,usd,2026-03-31T23:59:59Z,1.00',
      'bank:usd,USD,2026-03-31T23:59:59Z,12.345',
      'bank:jpy,JPY,2026-03-31T23:59:59Z,1.5',
      'bank:usd,USD,2026-03-31T23:59:59Z,"1,234.56"',
      'bank:usd,USD,2026-03-31T23:59:59Z,1e3',
      'bank:usd,USD,2026-03-31T23:59:59Z,',
      'bank:usd,USD,2026-03-31T12:00:00,1.00',
      'bank:usd,USD,2026-02-29,1.00',
      ',USD,2026-03-31T23:59:59Z,1.00',
      'bank:usd,EUR,2026-03-31T23:59:59Z,1.00',
      'bank:usd,USD,2026-03-31T23:59:59Z',
      'bank:usd,USD,2026-03-31T23:59:59Z,1.00,extra',
      'processor:huge,JPY,2026-03-31T23:59:59Z,9223372036854775808',
      'bank:usd,USD,2026-03-31T23:59:59Z,2.00',
      'processor:ariary,MGA,2026-03-31T23:59:59Z,1.2',
      'bank:usd,USD,2026-04-01T00:00:00Z,+5',
    ),
    [
      'line 3: currency "XYZ" is not a ledgerbox currency',
      'line 4: currency "usd" is not a currency code',
      'line 5: balance "12.345" has more decimals than USD allows (2)',
      'line 6: balance "1.5" has more decimals than JPY allows (0)',
      'line 7: balance "1,234.56" is not a decimal number',
      'line 8: balance "1e3" is not a decimal number',
      'line 9: balance "" is not a decimal number',
      'line 10: as_of "2026-03-31T12:00:00" is not an ISO 8601 timestamp with a time zone',
      'line 11: as_of "2026-02-29" is not an ISO 8601 timestamp',
      'line 12: account "" is not an account key',
      'line 13: currency "EUR" does not match account "bank:usd", which is in USD in the ledger',
      'line 14: expected 4 fields (account,currency,as_of,balance), got 3',
      'line 15: expected 4 fields (account,currency,as_of,balance), got 5',
      'line 16: balance "9223372036854775808" is 9223372036854775808 JPY minor units, beyond what a PostgreSQL bigint holds',
      'line 17: account "bank:usd" at 2026-03-31T23:59:59.000Z is already on line 2',
      'line 18: currency MGA has 5 minor units to the major one (base 5)',
      'line 19: balance "+5" is not a decimal number',
    ],
  );
});

test('a row with several problems has each of them named', async () => {
  const error = await assertRefused(csv('account,currency,as_of,balance', 'bank:usd,XYZ,yesterday,12.3.4'), [
    'line 2: currency "XYZ" is not a ledgerbox currency',
    'line 2: as_of "yesterday" is not an ISO 8601 timestamp',
    'line 2: balance "12.3.4" is not a decimal number',
  ]);
  assert.match(error.message, /\(3 problems\)/);
});

test('a file whose shape is wrong is refused: empty, header only, unknown, repeated or missing columns, unreadable CSV', async () => {
  await assertRefused('', ['the file is empty; expected a header row account,currency,as_of,balance']);
  await assertRefused('\n\n', ['the file is empty']);
  await assertRefused(csv('account,currency,as_of,balance'), ['the file has a header but no balances']);
  await assertRefused(csv('account,currency,as_of,balance', ',,,'), ['the file has a header but no balances']);
  await assertRefused(csv('account,currency,as_of,balance,memo', 'bank:usd,USD,2026-03-31,1.00,hi'), [
    'line 1: unknown column "memo"; the columns are type, account, currency, as_of, balance, amount, reference, description',
  ]);
  await assertRefused(csv('account,currency,as_of,balance,account', 'bank:usd,USD,2026-03-31,1.00,x'), ['line 1: column "account" appears twice']);
  await assertRefused(csv('account,currency,amount', 'bank:usd,USD,1.00'), [
    'line 1: missing column "as_of"',
    'line 1: missing column "balance"',
    'line 1: column "amount" is for statement lines, so the file needs a "type" column (balance or line) to tell its rows apart',
  ]);
  await assertRefused(csv('account,currency,as_of,balance,reference', 'bank:usd,USD,2026-03-31,1.00,'), ['line 1: column "reference" is for statement lines']);
  await assertRefused(csv('type,account,currency,as_of,balance', 'balance,bank:usd,USD,2026-03-31,1.00'), [
    'line 1: missing column "amount" (a file with a type column has lines: their amounts go there)',
  ]);
  await assertRefused(csv('account;currency;as_of;balance', 'bank:usd;USD;2026-03-31;1.00'), ['line 1: unknown column "account;currency;as_of;balance"']);
  await assertRefused(csv('account,currency,as_of,balance', 'bank:usd,USD,2026-03-31,1.00', '"bank:usd,USD,2026-03-31,1.00'), [
    'line 3: the CSV cannot be read: Quote Not Closed',
  ]);
  await assertRefused(csv('account,currency,as_of,balance', 'bank:usd,USD,2026-03-31,1"00'), ['line 2: the CSV cannot be read']);
});

test('a line break inside a quoted field does not shift the line numbers of the rows after it', async () => {
  await assertRefused(csv('account,currency,as_of,balance', '"bank:\nusd",USD,2026-03-31,1.00', 'bank:usd,USD,2026-03-31,1.001'), [
    'line 2: account "bank:\\nusd" is not an account key',
    'line 4: balance "1.001" has more decimals than USD allows (2)',
  ]);
});

test('at most 20 problems are named, the rest counted; all of them are in the error’s value', async () => {
  const rows = Array.from({ length: 25 }, (_, index) => `bank:usd,USD,2026-03-31T00:00:${String(index).padStart(2, '0')}Z,0.001`);
  const error = await assertRefused(csv('account,currency,as_of,balance', ...rows), ['(25 problems)', 'line 2: balance "0.001"', 'line 21: balance', '… and 5 more']);
  assert.ok(!error.message.includes('line 22:'), 'line 22 is counted, not named');
  assert.equal((error.value as unknown[]).length, 25);
  assert.deepEqual((error.value as { line: number }[]).map((problem) => problem.line).slice(0, 3), [2, 3, 4]);
});

test('the source and file name are checked', async () => {
  const input = { csv: csv('account,currency,as_of,balance', 'bank:usd,USD,2026-03-31,1.00'), source: 'bank:acme', fileName: 'x.csv' };
  await assert.rejects(importStatement(db.pool, { ...input, source: '' }), (error: unknown) => isLedgerboxError(error, 'invalid_input') && /statement\.source/.test(error.message));
  await assert.rejects(importStatement(db.pool, { ...input, fileName: ' x.csv' }), (error: unknown) => isLedgerboxError(error, 'invalid_input') && /statement\.fileName/.test(error.message));
});

test('a large statement is written in batches, all or nothing', async () => {
  // dated after every reconciliation here, so these accounts the ledger does not know add no findings
  const rows = Array.from({ length: 12_000 }, (_, index) => `bulk:${index},USD,2099-12-31,${index}.01`);
  const imported = await importStatement(db.pool, { source: 'bank:bulk', fileName: 'bulk.csv', csv: csv('account,currency,as_of,balance', ...rows) });
  assert.equal(imported.balances, 12_000);
  const { rows: stored } = await db.pool.query(`select count(*)::int as n, sum(balance)::text as total from ledgerbox.statement_balances where statement_id = $1`, [imported.statementId]);
  assert.deepEqual(stored, [{ n: 12_000, total: String(12_000 * 1 + 100 * ((12_000 * 11_999) / 2)) }]);

  // the database refuses a row of the third batch: the statement and the batches before it are rolled back too
  await db.pool.query(`
    create function pg_temp_refuse_statement_line() returns trigger language plpgsql as $$
    begin
      if new.line = 11000 then raise exception 'refused line 11000 on purpose'; end if;
      return new;
    end $$;
    create trigger refuse_line before insert on ledgerbox.statement_balances for each row execute function pg_temp_refuse_statement_line();`);
  try {
    const before = await counts();
    await assert.rejects(importStatement(db.pool, { source: 'bank:bulk', fileName: 'bulk.csv', csv: csv('account,currency,as_of,balance', ...rows) }), /refused line 11000 on purpose/);
    assert.deepEqual(await counts(), before, 'nothing written');
  } finally {
    await db.pool.query(`drop trigger refuse_line on ledgerbox.statement_balances; drop function pg_temp_refuse_statement_line()`);
  }
});

test('inside the caller’s transaction the import commits or rolls back with it', async () => {
  const client = await db.pool.connect();
  try {
    const before = await counts();
    await client.query('begin');
    const imported = await importStatement(client, { source: 'bank:acme', fileName: 'tx.csv', csv: csv('account,currency,as_of,balance', 'bank:usd,USD,2026-03-31,1.00') });
    assert.equal(imported.balances, 1);
    await client.query('rollback');
    assert.deepEqual(await counts(), before, 'rolled back with the caller');
  } finally {
    client.release();
  }
});

test('reconciliation compares the latest statement balance with the ledger at the statement’s date: a difference is critical, within tolerance a warning', async () => {
  await createAccount(db.pool, { key: 'recon:agrees', currency: 'USD' });
  await createAccount(db.pool, { key: 'recon:differs', currency: 'USD' });
  await postTransfer(db.pool, {
    key: 'recon:fund',
    legs: [
      { from: 'world:USD', to: 'recon:agrees', amount: usd(10_000n) },
      { from: 'world:USD', to: 'recon:differs', amount: usd(5_000n) },
    ],
    effectiveAt: '2026-04-10T12:00:00Z',
  });
  // after the statements' date: the ledger's balance at that date does not include it
  await postTransfer(db.pool, { key: 'recon:later', legs: [{ from: 'world:USD', to: 'recon:agrees', amount: usd(1_00n) }], effectiveAt: '2026-04-11T09:00:00Z' });
  // an older statement that disagrees is superseded by the newer one that agrees
  await importStatement(db.pool, { source: 'bank:acme', fileName: 'old.csv', csv: csv('account,currency,as_of,balance', 'recon:agrees,USD,2026-04-09,99.00') });
  await importStatement(db.pool, { source: 'bank:acme', fileName: 'agrees.csv', csv: csv('account,currency,as_of,balance', 'recon:agrees,USD,2026-04-10,100.00') });
  await importStatement(db.pool, {
    source: 'processor:stripe',
    fileName: 'differs.csv',
    csv: csv('account,currency,as_of,balance', 'recon:differs,USD,2026-04-10T23:00:00Z,50.05'),
  });

  const ours = (findings: readonly Finding[]) => findings.filter((finding) => finding.account?.startsWith('recon:'));

  const strict = await reconcile(db.pool);
  assert.deepEqual(
    ours(strict.findings).map(({ severity, kind, account, currency, expected, actual, difference }) => ({ severity, kind, account, currency, expected, actual, difference })),
    [{ severity: 'critical', kind: 'statement_difference', account: 'recon:differs', currency: 'USD', expected: 5_005n, actual: 5_000n, difference: -5n }],
  );
  assert.match(ours(strict.findings)[0]!.detail, /processor:stripe says recon:differs held 5005 USD/);

  const tolerant = await reconcile(db.pool, { statementTolerance: 5 });
  assert.deepEqual(
    ours(tolerant.findings).map(({ severity, kind, account, difference }) => ({ severity, kind, account, difference })),
    [{ severity: 'warning', kind: 'statement_difference_within_tolerance', account: 'recon:differs', difference: -5n }],
  );

  const justBeyond = await reconcile(db.pool, { statementTolerance: 4 });
  assert.deepEqual(
    ours(justBeyond.findings).map(({ severity, kind }) => ({ severity, kind })),
    [{ severity: 'critical', kind: 'statement_difference' }],
  );
});

// Statement lines: a `type` column tells balances from transaction lines.

const linesHeader = 'type,account,currency,as_of,balance,amount,reference,description';

test('a statement with lines imports its balances and its lines exactly, each line signed in the currency’s minor units', async () => {
  const before = await counts();
  const imported = await importStatement(db.pool, {
    source: 'bank:acme',
    fileName: 'acme-2026-05-lines.csv',
    csv: csv(
      linesHeader,
      'balance,bank:usd,USD,2026-04-30,1000.00,,,opening balance',
      'line,bank:usd,USD,2026-05-03T10:00:00Z,,-250.00,payout:77,"Payout to ana, May"',
      'line,bank:usd,USD,2026-05-04,,0.05,,interest',
      'balance,bank:jpy,JPY,2026-04-30,0,,,',
      'line,bank:jpy,JPY,2026-05-02T09:00:00+09:00,,1500,fx:9,',
      'balance,bank:usd,USD,2026-05-31,750.05,,,closing balance',
      'balance,bank:jpy,JPY,2026-05-31,1500,,,',
    ),
  });
  assert.deepEqual({ balances: imported.balances, lines: imported.lines }, { balances: 4, lines: 3 });
  assert.deepEqual(await storedLines(imported.statementId), [
    { line: 3, account: 'bank:usd', currency: 'USD', as_of: '2026-05-03T10:00:00.000Z', amount: '-25000', reference: 'payout:77', description: 'Payout to ana, May' },
    { line: 4, account: 'bank:usd', currency: 'USD', as_of: '2026-05-04T23:59:59.999Z', amount: '5', reference: null, description: 'interest' },
    { line: 6, account: 'bank:jpy', currency: 'JPY', as_of: '2026-05-02T00:00:00.000Z', amount: '1500', reference: 'fx:9', description: null },
  ]);
  assert.deepEqual(
    (await storedBalances(imported.statementId)).map((row) => [row.line, row.account, row.balance]),
    [
      [2, 'bank:usd', '100000'],
      [5, 'bank:jpy', '0'],
      [7, 'bank:usd', '75005'],
      [8, 'bank:jpy', '1500'],
    ],
  );
  const { rows } = await db.pool.query(`select line, description from ledgerbox.statement_balances where statement_id = $1 order by line`, [imported.statementId]);
  assert.deepEqual(rows, [
    { line: 2, description: 'opening balance' },
    { line: 5, description: null },
    { line: 7, description: 'closing balance' },
    { line: 8, description: null },
  ]);
  assert.deepEqual(await counts(), { statements: before.statements + 1, balances: before.balances + 4, lines: before.lines + 3 });
});

test('docs/reconciliation.md’s statement examples import as documented', async () => {
  const readme = await readFile('docs/reconciliation.md', 'utf8');
  const examples = [...readme.matchAll(/```csv\n([\s\S]*?)```/g)].map((match) => match[1]!);
  assert.equal(examples.length, 2, 'the balances-only example and the one with lines');
  const [balancesOnly, withLines] = examples as [string, string];
  const plain = await importStatement(db.pool, { source: 'readme', fileName: 'balances.csv', csv: balancesOnly });
  assert.deepEqual({ balances: plain.balances, lines: plain.lines }, { balances: 3, lines: 0 });
  const lined = await importStatement(db.pool, { source: 'readme', fileName: 'lines.csv', csv: withLines });
  assert.deepEqual({ balances: lined.balances, lines: lined.lines }, { balances: 3, lines: 3 });
  assert.deepEqual((await storedLines(lined.statementId)).map((row) => [row.amount, row.reference]), [
    ['-25000', 'payout:77'],
    ['120000', 'deposit:ord-9'],
    ['-150', null],
  ]);
});

test('with a type column, the columns may come in any order and reference and description may be left out', async () => {
  const imported = await importStatement(db.pool, {
    source: 'processor:stripe',
    fileName: 'short.csv',
    csv: csv('as_of,amount,account,type,currency,balance', '2026-05-01,,bank:kwd,balance,KWD,1.000', '2026-05-02,-0.250,bank:kwd,line,KWD,', '2026-05-03,,bank:kwd,balance,KWD,0.750'),
  });
  assert.deepEqual({ balances: imported.balances, lines: imported.lines }, { balances: 2, lines: 1 });
  assert.deepEqual((await storedLines(imported.statementId)).map((row) => [row.line, row.amount, row.reference]), [[3, '-250', null]]);
});

test('every bad line of a statement with lines is named at once, and nothing is written', async () => {
  await assertRefused(
    csv(
      linesHeader,
      'balance,bank:usd,USD,2026-05-01,100.00,,,', // good: does not rescue the file
      'credit,bank:usd,USD,2026-05-02,,1.00,,',
      'line,bank:usd,USD,2026-05-02,5.00,1.00,a,',
      'balance,bank:usd,USD,2026-05-02,1.00,2.00,b,',
      'line,bank:usd,USD,2026-05-02,,0.00,,',
      'line,bank:usd,USD,2026-05-02,,1.001,,',
      'line,bank:usd,USD,2026-05-02,,,,',
      'line,bank:usd,USD,2026-05-02,,1.00," padded",',
      'line,bank:usd,USD,2026-05-02,,1.00,payout:1,',
      'line,bank:usd,USD,2026-05-03,,2.00,payout:1,',
      'line,bank:usd,USD,2026-05-01,,1.00,,on the opening balance’s moment',
      'line,bank:usd,USD,2026-05-31,,1.00,,after the closing balance',
      'line,bank:jpy,JPY,2026-05-02,,100,,an account without balances',
      'line,bank:usd,USD,2026-05-02,,1.00,,"two\nlines"',
      'balance,bank:usd,USD,2026-05-30,104.00,,,',
    ),
    [
      'line 3: type "credit" is neither "balance" nor "line"',
      'line 4: a line has no balance, got "5.00"',
      'line 5: a balance row has no amount, got "2.00"',
      'line 5: a balance row has no reference, got "b"',
      'line 6: amount "0.00" is zero: a line moves money',
      'line 7: amount "1.001" has more decimals than USD allows (2)',
      'line 8: amount "" is not a decimal number',
      'line 9: reference " padded" is not a transfer key',
      'line 11: reference "payout:1" of account "bank:usd" is already on line 10',
      'line 12: line at 2026-05-01T23:59:59.999Z is not after the first balance of account "bank:usd" (line 2, 2026-05-01T23:59:59.999Z)',
      'line 13: line at 2026-05-31T23:59:59.999Z is after the last balance of account "bank:usd" (line 17, 2026-05-30T23:59:59.999Z)',
      'line 14: account "bank:jpy" has lines but no balances',
      'line 15: description "two\\nlines" must be one line of at most 1000 characters',
    ],
  );
});

test('reconciliation matches a statement’s lines with the ledger: lines it lacks or has for another amount, movements the statement lacks, a statement that does not add up', async () => {
  await createAccount(db.pool, { key: 'lines:bank', currency: 'USD' });
  await createAccount(db.pool, { key: 'lines:card', currency: 'USD' });
  const move = (key: string, to: string, cents: bigint, effectiveAt: string) =>
    postTransfer(db.pool, { key, legs: [cents > 0n ? { from: 'world:USD', to, amount: usd(cents) } : { from: to, to: 'world:USD', amount: usd(-cents) }], effectiveAt });
  await move('lines:pay:1', 'lines:bank', 100_00n, '2026-05-03T10:00:00Z'); // on the statement by reference
  await move('lines:pay:2', 'lines:bank', -30_00n, '2026-05-05T10:00:00Z'); // on the statement by reference
  await move('lines:fee:1', 'lines:bank', -1_00n, '2026-05-06T10:00:00Z'); // on the statement without a reference: matched by amount
  await move('lines:pay:3', 'lines:bank', 20_00n, '2026-05-07T10:00:00Z'); // not on the statement
  await move('lines:pay:4', 'lines:bank', 5_00n, '2026-05-08T10:00:00Z'); // on the statement for 5.01
  await move('lines:pay:5', 'lines:bank', 9_00n, '2026-06-02T10:00:00Z'); // after the statement's period: not its business
  await move('lines:card:opening', 'lines:card', 10_00n, '2026-04-30T10:00:00Z');
  await move('lines:card:x', 'lines:card', 5_00n, '2026-05-04T10:00:00Z');
  await importStatement(db.pool, {
    source: 'bank:acme',
    fileName: 'acme-2026-05.csv',
    csv: csv(
      linesHeader,
      'balance,lines:bank,USD,2026-05-01,0.00,,,opening',
      'line,lines:bank,USD,2026-05-03T10:00:00Z,,100.00,lines:pay:1,',
      'line,lines:bank,USD,2026-05-05T10:00:00Z,,-30.00,lines:pay:2,',
      'balance,lines:bank,USD,2026-05-05,70.00,,,', // agrees with the lines before it
      'line,lines:bank,USD,2026-05-06T10:00:00Z,,-1.00,,bank fee',
      'line,lines:bank,USD,2026-05-08T10:00:00Z,,5.01,lines:pay:4,',
      'line,lines:bank,USD,2026-05-09T10:00:00Z,,7.00,lines:pay:999,',
      'line,lines:bank,USD,2026-05-09T12:00:00Z,,-2.00,,card fee',
      'balance,lines:bank,USD,2026-05-10,79.01,,,closing',
      'balance,lines:card,USD,2026-05-01,10.00,,,',
      'line,lines:card,USD,2026-05-04T10:00:00Z,,5.00,lines:card:x,',
      'balance,lines:card,USD,2026-05-10,16.00,,,', // 10.00 + 5.00 is not 16.00
    ),
  });

  // by subject, so the order the checks run in does not matter
  const ours = (findings: readonly Finding[]) =>
    findings
      .filter((finding) => finding.account?.startsWith('lines:'))
      .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0))
      .map(({ severity, kind, subject, account, expected, actual, difference }) => ({ severity, kind, subject, account, expected, actual, difference }));

  const strict = await reconcile(db.pool);
  assert.deepEqual(ours(strict.findings), [
    { severity: 'critical', kind: 'ledger_movement_not_on_statement', subject: 'ledger_movement_not_on_statement:lines:bank:lines:pay:3', account: 'lines:bank', expected: null, actual: 20_00n, difference: 20_00n },
    // the balances are compared as before: the ledger's at each closing date
    { severity: 'critical', kind: 'statement_difference', subject: 'statement:lines:bank', account: 'lines:bank', expected: 79_01n, actual: 94_00n, difference: 14_99n },
    { severity: 'critical', kind: 'statement_difference', subject: 'statement:lines:card', account: 'lines:card', expected: 16_00n, actual: 15_00n, difference: -1_00n },
    { severity: 'critical', kind: 'statement_line_differs', subject: 'statement_line_differs:lines:bank:lines:pay:4', account: 'lines:bank', expected: 5_01n, actual: 5_00n, difference: -1n },
    {
      severity: 'critical',
      kind: 'statement_line_not_in_ledger',
      subject: 'statement_line_not_in_ledger:lines:bank:2026-05-09T12:00:00.000Z:-200:9',
      account: 'lines:bank',
      expected: -2_00n,
      actual: null,
      difference: 2_00n,
    },
    { severity: 'critical', kind: 'statement_line_not_in_ledger', subject: 'statement_line_not_in_ledger:lines:bank:lines:pay:999', account: 'lines:bank', expected: 7_00n, actual: null, difference: -7_00n },
    {
      severity: 'critical',
      kind: 'statement_lines_inconsistent',
      subject: 'statement_lines_inconsistent:lines:card:2026-05-10T23:59:59.999Z',
      account: 'lines:card',
      expected: 16_00n,
      actual: 15_00n,
      difference: -1_00n,
    },
  ]);
  const byKind = (kind: string) => strict.findings.filter((finding) => finding.kind === kind && finding.account?.startsWith('lines:'));
  assert.match(byKind('statement_lines_inconsistent')[0]!.detail, /bank:acme \(statement \d+\) does not add up for lines:card: 1000 at 2026-05-01T23:59:59\.999Z \(line 11\) plus its 1 line up to 2026-05-10T23:59:59\.999Z \(500\) makes 1500, but its balance then is 1600 \(line 13/);
  assert.match(byKind('ledger_movement_not_on_statement')[0]!.detail, /transfer lines:pay:3 moved 2000 USD \(minor units\) on lines:bank at 2026-05-07T10:00:00\.000Z/);
  assert.match(byKind('statement_line_differs')[0]!.detail, /line 7 \(reference lines:pay:4\) says 501 USD .* transfer lines:pay:4 moved 500 on it in the ledger/);
  assert.ok(strict.moneyAtRisk.some((risk) => risk.currency === 'USD' && risk.amount >= 1n + 7_00n + 2_00n + 20_00n + 1_00n));

  // each new finding raised an alert of its severity, once
  const { rows: alerts } = await db.pool.query(
    `select severity, kind from ledgerbox.alerts where dedupe_key like 'reconciliation:%' and position(':lines:' in dedupe_key) > 0 order by kind, id`,
  );
  assert.deepEqual(alerts, [
    { severity: 'critical', kind: 'reconciliation_ledger_movement_not_on_statement' },
    { severity: 'critical', kind: 'reconciliation_statement_difference' },
    { severity: 'critical', kind: 'reconciliation_statement_difference' },
    { severity: 'critical', kind: 'reconciliation_statement_line_differs' },
    { severity: 'critical', kind: 'reconciliation_statement_line_not_in_ledger' },
    { severity: 'critical', kind: 'reconciliation_statement_line_not_in_ledger' },
    { severity: 'critical', kind: 'reconciliation_statement_lines_inconsistent' },
  ]);

  // within the tolerance a difference is a warning; the same subjects persist
  const tolerant = await reconcile(db.pool, { statementTolerance: 100 });
  assert.deepEqual(
    ours(tolerant.findings).map(({ severity, kind, difference }) => [severity, kind, difference]),
    [
      ['critical', 'ledger_movement_not_on_statement', 20_00n],
      ['critical', 'statement_difference', 14_99n],
      ['warning', 'statement_difference_within_tolerance', -1_00n],
      ['warning', 'statement_line_differs', -1n],
      ['critical', 'statement_line_not_in_ledger', 2_00n],
      ['critical', 'statement_line_not_in_ledger', -7_00n],
      ['warning', 'statement_lines_inconsistent', -1_00n],
    ],
  );
  assert.ok(tolerant.comparison.persisting.some((finding) => finding.subject === 'statement_line_differs:lines:bank:lines:pay:4'));

  // the report lists them like every other finding
  const rendered = renderReport(tolerant);
  for (const kind of ['statement_line_differs', 'statement_line_not_in_ledger', 'ledger_movement_not_on_statement', 'statement_lines_inconsistent']) {
    assert.ok(rendered.text.includes(kind), `the text report names ${kind}`);
    assert.ok(rendered.html.includes(kind), `the HTML report names ${kind}`);
  }

  // and so does `ledgerbox reconcile`, which exits 2 for them
  const command = await cli('reconcile', '--no-report');
  assert.equal(command.code, 2, command.stderr);
  for (const kind of ['statement_line_differs', 'statement_line_not_in_ledger', 'ledger_movement_not_on_statement', 'statement_lines_inconsistent']) {
    assert.ok(command.stdout.includes(kind), `the command lists ${kind}:\n${command.stdout}`);
  }
  assert.ok(command.stdout.includes('lines:pay:999'), 'the command shows the detail');

  // a newer statement that agrees with the ledger line for line settles every one of them
  await importStatement(db.pool, {
    source: 'bank:acme',
    fileName: 'acme-2026-05-corrected.csv',
    csv: csv(
      linesHeader,
      'balance,lines:bank,USD,2026-05-01,0.00,,,',
      'line,lines:bank,USD,2026-05-03T10:00:00Z,,100.00,lines:pay:1,',
      'line,lines:bank,USD,2026-05-05T10:00:00Z,,-30.00,lines:pay:2,',
      'line,lines:bank,USD,2026-05-06T10:00:00Z,,-1.00,,bank fee',
      'line,lines:bank,USD,2026-05-07T10:00:00Z,,20.00,,',
      'line,lines:bank,USD,2026-05-08T10:00:00Z,,5.00,lines:pay:4,',
      'balance,lines:bank,USD,2026-05-10,94.00,,,',
      'balance,lines:card,USD,2026-05-01,10.00,,,',
      'line,lines:card,USD,2026-05-04T10:00:00Z,,5.00,lines:card:x,',
      'balance,lines:card,USD,2026-05-10,15.00,,,',
    ),
  });
  const settled = await reconcile(db.pool);
  assert.deepEqual(ours(settled.findings), []);
  assert.ok(settled.comparison.resolved.some((finding) => finding.subject === 'ledger_movement_not_on_statement:lines:bank:lines:pay:3'));
});

// The command line: the built `ledgerbox` (npm test builds first).

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/ledgerbox.js', ...args], {
      env: { ...process.env, DATABASE_URL: db.connectionString, LEDGERBOX_LOG_LEVEL: 'silent' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const directory = await mkdtemp(join(tmpdir(), 'ledgerbox-statements-'));

test('`ledgerbox import-statement FILE` imports the file; the source defaults to its name, --source names it', async () => {
  const file = join(directory, 'acme-april.csv');
  await writeFile(file, csv('account,currency,as_of,balance', 'cli:one,USD,2026-04-30,10.00', 'cli:two,JPY,2026-04-30,1000'));

  const plain = await cli('import-statement', file);
  assert.equal(plain.code, 0, plain.stderr);
  const match = /^imported 2 balances from (.+) \(statement (\d+)\)\n$/.exec(plain.stdout);
  assert.ok(match, plain.stdout);
  assert.equal(match[1], file);
  const { rows } = await db.pool.query(`select source, file_name from ledgerbox.statements where id = $1`, [match[2]]);
  assert.deepEqual(rows, [{ source: 'acme-april.csv', file_name: 'acme-april.csv' }]);
  assert.deepEqual((await storedBalances(match[2]!)).map((row) => row.balance), ['1000', '1000']);

  const named = await cli('import-statement', file, '--source', 'bank:acme');
  assert.equal(named.code, 0, named.stderr);
  const id = /\(statement (\d+)\)/.exec(named.stdout)![1];
  assert.deepEqual((await db.pool.query(`select source from ledgerbox.statements where id = $1`, [id])).rows, [{ source: 'bank:acme' }]);
});

test('`ledgerbox import-statement` exits 2 naming the bad lines of a bad file, 1 for a file it cannot read', async () => {
  const before = await counts();
  const bad = join(directory, 'bad.csv');
  await writeFile(bad, csv('account,currency,as_of,balance', 'cli:one,USD,2026-04-30,10.00', 'cli:one,USD,2026-04-30T12:00:00Z,1.234', 'cli:two,ABC,2026-04-30,1'));
  const refused = await cli('import-statement', bad);
  assert.equal(refused.code, 2, refused.stderr);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /^ledgerbox import-statement: error \[invalid_input\]: Invalid `csv`: statement bad\.csv refused, nothing imported \(2 problems\):\n/);
  assert.ok(refused.stderr.includes('line 3: balance "1.234" has more decimals than USD allows (2)\n'), refused.stderr);
  assert.ok(refused.stderr.includes('line 4: currency "ABC" is not a ledgerbox currency'), refused.stderr);

  const binary = join(directory, 'latin1.csv');
  await writeFile(binary, Buffer.from([...Buffer.from('account,currency,as_of,balance\ncaf'), 0xe9, ...Buffer.from(',USD,2026-04-30,1\n')]));
  const notText = await cli('import-statement', binary);
  assert.equal(notText.code, 2, notText.stderr);
  assert.match(notText.stderr, /is not UTF-8 text/);

  const missing = await cli('import-statement', join(directory, 'missing.csv'));
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^ledgerbox import-statement failed: cannot read .*missing\.csv: ENOENT/);

  const noFile = await cli('import-statement');
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /missing required argument 'file'/);

  assert.deepEqual(await counts(), before, 'nothing written');
});


test('`ledgerbox import-statement FILE` imports a statement with lines and says how many of each; --help shows the format', async () => {
  const file = join(directory, 'acme-lines.csv');
  await writeFile(file, csv(linesHeader, 'balance,cli:three,USD,2026-04-01,0.00,,,', 'line,cli:three,USD,2026-04-02,,3.00,cli:ref,', 'balance,cli:three,USD,2026-04-30,3.00,,,'));
  const run = await cli('import-statement', file);
  assert.equal(run.code, 0, run.stderr);
  const match = /^imported 2 balances and 1 line from (.+) \(statement (\d+)\)\n$/.exec(run.stdout);
  assert.ok(match, run.stdout);
  assert.deepEqual((await storedLines(match[2]!)).map((row) => [row.account, row.amount, row.reference]), [['cli:three', '300', 'cli:ref']]);

  const help = await cli('import-statement', '--help');
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout.replace(/\s+/g, ' '), /type,account,currency,as_of,balance,amount,reference,description; type is balance or line/);
});
