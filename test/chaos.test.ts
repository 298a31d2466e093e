import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { dropDatabase, serverUrl } from './support/database.ts';

// `npm run chaos` in a process of its own, as a developer runs it; its JSON summary is what we
// assert on. Each run makes its own database (or embedded server), so no test database here.
const scratch = await mkdtemp(path.join(os.tmpdir(), 'ledgerbox-chaos-test-'));
after(() => rm(scratch, { recursive: true, force: true }));

interface Summary {
  seed: number;
  ok: boolean;
  replay: string;
  database: { kind: string; kept: string | null };
  size: { exchanges: number; requests: number; cardPayments: number };
  requests: { committed: number; refused: number; skipped: number; unknown: number; replayed: number };
  faults: { injected: Record<string, number>; skipped: Record<string, string> };
  planted: string | null;
  invariants: { name: string; holds: boolean; figure: string; violations: string[] }[];
  logs: string;
}

async function chaos(args: string[], env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string; summary: Summary }> {
  const json = path.join(scratch, `summary-${Math.random().toString(36).slice(2)}.json`);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/run.ts', ...args, '--json', json], {
      env: { ...process.env, LEDGERBOX_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (exitCode) => resolve({ code: exitCode, stdout, stderr }));
  });
  const summary = JSON.parse(await readFile(json, 'utf8').catch(() => 'null')) as Summary;
  assert.ok(summary, `no JSON summary; exit ${code}\n${stdout}\n${stderr}`);
  return { code, stdout, stderr, summary };
}

const invariantNames = [
  'every request got an answer',
  'each currency sums to zero',
  "every account's balance equals the sum of its entries",
  'the totals match what the workload intended, minus what was compensated',
  'no transfer posted twice',
  'no hold left pending',
  'every workflow completed or compensated',
  'every card payment captured and posted once, or voided, as its processor and its webhooks say',
  'no job left locked or lost',
  'the reconciliation is clean of criticals',
];

const invariant = (summary: Summary, name: string) => {
  const found = summary.invariants.find((candidate) => candidate.name === name);
  assert.ok(found, `invariant ${name} reported`);
  return found;
};

test('a short chaos run on its own embedded PostgreSQL: every fault kind injected, every invariant holds, the seed reported', { timeout: 600_000 }, async () => {
  // no DATABASE_URL: the run starts its own server, so it can restart it
  const { code, stdout, stderr, summary } = await chaos(['--exchanges', '250', '--duration', '15'], { DATABASE_URL: undefined });
  const failing = summary.invariants.filter((candidate) => !candidate.holds);
  assert.equal(code, 0, `exit code ${code} (seed ${summary.seed}): ${JSON.stringify(failing, null, 2)}\n${stdout}\n${stderr}`);
  assert.equal(summary.ok, true);

  // the seed is printed first, is in the summary, and the replay command carries it
  const printed = /^chaos seed (\d+)$/m.exec(stdout);
  assert.ok(printed, stdout);
  assert.equal(summary.seed, Number(printed[1]));
  assert.match(summary.replay, new RegExp(`^npm run chaos -- --seed ${summary.seed} --exchanges 250 --duration 15 `));

  assert.equal(summary.database.kind, 'embedded');
  assert.deepEqual(summary.faults.skipped, {});
  for (const kind of ['provider_fail', 'provider_timeout', 'provider_slow', 'worker_kill', 'client_connection_kill', 'worker_connection_kill', 'postgres_restart', 'commit_answer_lost']) {
    assert.ok(summary.faults.injected[kind]! >= 1, `${kind} injected at least once: ${JSON.stringify(summary.faults.injected)}`);
  }
  assert.equal(summary.faults.injected.postgres_restart, 1);

  assert.deepEqual(summary.invariants.map((candidate) => candidate.name), invariantNames);
  for (const candidate of summary.invariants) {
    assert.equal(candidate.holds, true, `${candidate.name}: ${candidate.violations.join('; ')}`);
    assert.match(stdout, new RegExp(`ok {3}${candidate.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n\\s+${candidate.figure.slice(0, 40).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  }
  assert.equal(summary.size.exchanges, 250);
  assert.equal(summary.requests.unknown, 0);
  // COMMITs whose answer was lost were retried with their key and replayed, not posted again
  assert.ok(summary.requests.replayed >= 1, JSON.stringify(summary.requests));
  assert.ok(summary.requests.committed > summary.size.requests * 0.9, JSON.stringify(summary.requests));
  // 2% of the exchanges ask for more than the customer has and are refused at the start
  const workflows = Number(/^(\d+) exchange workflows: /.exec(invariant(summary, 'every workflow completed or compensated').figure)?.[1]);
  assert.ok(workflows > 225 && workflows <= 250, `${workflows} exchange workflows`);

  // the card workflow ran beside the exchange, on the same workers, its processor's webhooks
  // coming on time, twice, late and never, and some cards declined
  assert.equal(summary.size.cardPayments, 25);
  const cards = invariant(summary, 'every card payment captured and posted once, or voided, as its processor and its webhooks say').figure;
  const figure = (pattern: RegExp) => {
    const found = pattern.exec(cards);
    assert.ok(found, `${pattern} in: ${cards}`);
    return Number(found[1]);
  };
  assert.equal(figure(/^(\d+) card payments/), 25);
  assert.ok(figure(/(\d+) completed, each captured, posted and settled once/) >= 1, cards);
  assert.ok(figure(/\((\d+) declined/) >= 1, cards);
  assert.ok(figure(/(\d+) signalled late, each with its signal_too_late alert/) >= 1, cards);
  assert.ok(figure(/(\d+) never signalled/) >= 1, cards);
  assert.ok(figure(/(\d+) duplicates kept once/) >= 1, cards);
  // the processor's lost answers were found by looking the key up, not by asking again blindly
  assert.ok(figure(/looked up after a lost answer: (\d+)/) >= 1, cards);
  // a passing run cleans up after itself
  assert.equal(summary.database.kept, null);
});

test('a planted drift (a superuser rewrites a cached balance): the run fails, names it, prints the seed, and keeps the database', { timeout: 600_000 }, async () => {
  const { code, stdout, stderr, summary } = await chaos(['--exchanges', '30', '--duration', '3', '--clients', '1', '--seed', '4242', '--plant', 'drift'], { DATABASE_URL: serverUrl() });
  try {
    assert.equal(code, 1, `exit code\n${stdout}\n${stderr}`);
    assert.equal(summary.ok, false);
    assert.equal(summary.seed, 4242);
    assert.match(stdout, /^chaos: FAILED, seed 4242; replay with: npm run chaos -- --seed 4242 .*--plant drift$/m);
    assert.match(summary.planted ?? '', /^drift: .*chaos:c0001:USD/);
    // with a server it does not control, the restart is skipped, and says so
    assert.match(summary.faults.skipped.postgres_restart ?? '', /DATABASE_URL is set/);
    assert.equal(summary.faults.injected.postgres_restart, 0);

    const drift = invariant(summary, "every account's balance equals the sum of its entries");
    assert.equal(drift.holds, false);
    assert.equal(drift.violations.length, 1, drift.violations.join('; '));
    const [, cached, entries] = /^chaos:c0001:USD: cached posted (-?\d+), entries say (-?\d+)$/.exec(drift.violations[0]!) ?? [];
    assert.equal(BigInt(cached!) - BigInt(entries!), 1n, drift.violations[0]);
    assert.equal(invariant(summary, 'each currency sums to zero').holds, false);
    assert.match(invariant(summary, 'each currency sums to zero').violations.join('\n'), /USD: cached posted balances sum to 1$/m);
    assert.equal(invariant(summary, 'the reconciliation is clean of criticals').holds, false);
    assert.match(invariant(summary, 'the reconciliation is clean of criticals').violations.join('\n'), /^balance_drift /m);
    // what the drift does not touch still holds
    for (const name of [
      'every request got an answer',
      'no transfer posted twice',
      'no hold left pending',
      'every workflow completed or compensated',
      'every card payment captured and posted once, or voided, as its processor and its webhooks say',
      'no job left locked or lost',
    ]) {
      assert.equal(invariant(summary, name).holds, true, `${name}: ${invariant(summary, name).violations.join('; ')}`);
    }
    assert.equal(summary.database.kind, 'DATABASE_URL');
    assert.match(summary.database.kept ?? '', /^ledgerbox_chaos_4242_[0-9a-f]{8}$/);
  } finally {
    // a failing run keeps its database and its processes' logs for a look around
    if (summary.database.kept) await dropDatabase(summary.database.kept);
    await rm(summary.logs, { recursive: true, force: true });
  }
});

test('a planted double post (a request retried under a new key): the run fails on the idempotency and totals invariants', { timeout: 600_000 }, async () => {
  const { code, stdout, stderr, summary } = await chaos(['--exchanges', '30', '--duration', '3', '--clients', '1', '--seed', '77', '--plant', 'double-post'], { DATABASE_URL: serverUrl() });
  try {
    assert.equal(code, 1, `exit code\n${stdout}\n${stderr}`);
    assert.match(stdout, /chaos: FAILED, seed 77/);
    const twice = invariant(summary, 'no transfer posted twice');
    assert.equal(twice.holds, false);
    assert.match(twice.violations.join('\n'), /^1\.\d+ \(transfer, committed\): 2 transfers in the ledger, expected 1$/m);
    const totals = invariant(summary, 'the totals match what the workload intended, minus what was compensated');
    assert.equal(totals.holds, false);
    assert.match(totals.violations.join('\n'), /the workload says -?\d+, the ledger -?\d+ \(difference -?\d+\)/);
    // the books still balance: only the intent shows the duplicate
    for (const name of ['each currency sums to zero', "every account's balance equals the sum of its entries", 'the reconciliation is clean of criticals']) {
      assert.equal(invariant(summary, name).holds, true, `${name}: ${invariant(summary, name).violations.join('; ')}`);
    }
  } finally {
    // a failing run keeps its database and its processes' logs for a look around
    if (summary.database.kept) await dropDatabase(summary.database.kept);
    await rm(summary.logs, { recursive: true, force: true });
  }
});

test('--help lists the options; a bad option is refused with exit 2 before anything runs', { timeout: 60_000 }, async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'chaos/run.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
  const help = await run(['--help']);
  assert.equal(help.code, 0, help.stderr);
  for (const option of ['--seed', '--exchanges', '--duration', '--provider-fail-rate', '--worker-kills-per-min', '--client-conn-kills-per-min', '--no-pg-restart', '--json', '--plant']) {
    assert.ok(help.stdout.includes(option), `${option} in --help`);
  }
  const bad = await run(['--provider-fail-rate', '2']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--provider-fail-rate.*expected a share from 0 to 0\.5/);
  assert.doesNotMatch(bad.stdout, /chaos seed/);
});
