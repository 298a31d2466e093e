// After the drain: the invariants, each with its figure. The ledger's rows are read directly
// (as an auditor would, not through the code under test), checked with superstruct, and set
// against what the clients were told and what the workload meant to do.
import type pg from 'pg';
import { array, integer, nullable, object, pattern, string, type Struct } from 'superstruct';
import { validate } from '../src/contracts.ts';
import { listFailedJobs, reconcile } from '../src/index.ts';
import { expect, type ExchangeState } from './expected.ts';
import { currencies, type Op, type Plan } from './plan.ts';
import type { OutcomeMessage, SignalMessage } from './protocol.ts';
import { cardStates, verifyCards } from './verify-cards.ts';

export interface Invariant {
  name: string;
  holds: boolean;
  /** The figure behind it, for the reader: counts and sums. */
  figure: string;
  /** The first violations found (at most 10). */
  violations: string[];
}

const Bigint = pattern(string(), /^-?\d+$/);

async function select<T>(pool: pg.Pool, struct: Struct<T>, query: string): Promise<T[]> {
  const { rows } = await pool.query(query);
  return validate(array(struct), rows, 'rows');
}

function invariant(name: string, violations: string[], figure: string): Invariant {
  return { name, holds: violations.length === 0, figure, violations: violations.slice(0, 10) };
}

const format = (minor: bigint) => {
  const sign = minor < 0n ? '-' : '';
  const absolute = minor < 0n ? -minor : minor;
  return `${sign}${(absolute / 100n).toLocaleString('en-US')}.${String(absolute % 100n).padStart(2, '0')}`;
};

/** Transfers each committed request writes, tagged with its op id in their metadata (a card payment's are its workflow's, checked apart). */
function transfersWritten(op: Op): number {
  if (op.kind === 'batch') return op.transfers.length;
  return op.kind === 'expire_holds' || op.kind === 'card_payment' ? 0 : 1;
}

export async function verify(pool: pg.Pool, plan: Plan, outcomes: ReadonlyMap<string, OutcomeMessage>, signals: readonly SignalMessage[]): Promise<Invariant[]> {
  const results: Invariant[] = [];

  // every request got an answer
  const counts = { committed: 0, refused: 0, skipped: 0, unknown: 0, missing: 0 };
  const refusedBy = new Map<string, number>();
  const unanswered: string[] = [];
  for (const op of plan.ops.values()) {
    const outcome = outcomes.get(op.id);
    if (outcome === undefined) {
      counts.missing++;
      unanswered.push(`${op.id} (${op.kind}): no answer reported`);
      continue;
    }
    counts[outcome.outcome]++;
    if (outcome.outcome === 'refused') refusedBy.set(outcome.code ?? '?', (refusedBy.get(outcome.code ?? '?') ?? 0) + 1);
    if (outcome.outcome === 'unknown') unanswered.push(`${op.id} (${op.kind}): still unknown at the deadline: ${outcome.code ?? ''}`);
  }
  const retried = [...outcomes.values()].filter((outcome) => outcome.attempts > 1).length;
  results.push(
    invariant(
      'every request got an answer',
      unanswered,
      `${plan.ops.size} requests (${[...plan.ops.values()].filter((op) => op.kind === 'expire_holds').length} of them hold-expiry sweeps): ${counts.committed} committed, ${counts.refused} refused (${[...refusedBy].map(([code, n]) => `${code} ${n}`).join(', ') || 'none'}), ${counts.skipped} skipped (what they followed was refused), ${counts.unknown + counts.missing} unanswered; ${retried} needed more than one attempt`,
    ),
  );

  const accounts = await select(
    pool,
    object({ key: string(), currency: string(), allow_negative: nullable(string()), posted: Bigint, pending_in: Bigint, pending_out: Bigint }),
    `select key, currency, allow_negative::text, posted_balance::text as posted, pending_incoming::text as pending_in, pending_outgoing::text as pending_out from ledgerbox.accounts`,
  );
  const sums = await select(
    pool,
    object({ key: string(), posted: Bigint, pending_in: Bigint, pending_out: Bigint }),
    `select a.key,
       coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0)::text as posted,
       coalesce(sum(e.amount) filter (where e.phase = 'pending' and e.amount > 0 and r.id is null), 0)::text as pending_in,
       coalesce(-sum(e.amount) filter (where e.phase = 'pending' and e.amount < 0 and r.id is null), 0)::text as pending_out
     from ledgerbox.accounts a
     left join ledgerbox.entries e on e.account_id = a.id
     left join ledgerbox.transfers r on r.hold_id = e.transfer_id
     group by a.key`,
  );
  const entriesOf = new Map(sums.map((row) => [row.key, row]));

  // each currency sums to zero, in the entries and in the cached balances
  const perCurrency = await select(
    pool,
    object({ currency: string(), entries: Bigint, entries_count: integer(), transfers: integer() }),
    `select currency, coalesce(sum(amount) filter (where phase = 'posted'), 0)::text as entries, count(*)::int as entries_count, count(distinct transfer_id)::int as transfers
     from ledgerbox.entries group by currency order by currency`,
  );
  const zeroViolations: string[] = [];
  const zeroFigures: string[] = [];
  for (const row of perCurrency) {
    const cached = accounts.filter((account) => account.currency === row.currency).reduce((sum, account) => sum + BigInt(account.posted), 0n);
    const pending = accounts.filter((account) => account.currency === row.currency).reduce((sum, account) => sum + BigInt(account.pending_in) - BigInt(account.pending_out), 0n);
    if (BigInt(row.entries) !== 0n) zeroViolations.push(`${row.currency}: posted entries sum to ${row.entries}`);
    if (cached !== 0n) zeroViolations.push(`${row.currency}: cached posted balances sum to ${cached}`);
    if (pending !== 0n) zeroViolations.push(`${row.currency}: cached pending incoming − outgoing sums to ${pending}`);
    zeroFigures.push(`${row.currency} entries ${row.entries}, cached ${cached} (${row.entries_count} entries, ${row.transfers} transfers)`);
  }
  const unbalanced = await select(
    pool,
    object({ transfer_id: string(), currency: string(), total: Bigint }),
    `select transfer_id::text, currency, sum(amount)::text as total from ledgerbox.entries group by transfer_id, currency having sum(amount) <> 0`,
  );
  for (const row of unbalanced) zeroViolations.push(`transfer ${row.transfer_id} sums to ${row.total} ${row.currency}`);
  results.push(invariant('each currency sums to zero', zeroViolations, zeroFigures.join('; ')));

  // every account's cached balance equals the sum of its entries
  const driftViolations: string[] = [];
  for (const account of accounts) {
    const entries = entriesOf.get(account.key)!;
    for (const field of ['posted', 'pending_in', 'pending_out'] as const) {
      if (account[field] !== entries[field]) driftViolations.push(`${account.key}: cached ${field} ${account[field]}, entries say ${entries[field]}`);
    }
    if (account.allow_negative === 'false' && BigInt(entries.posted) - BigInt(entries.pending_out) < 0n) driftViolations.push(`${account.key}: below zero by its entries, which it forbids`);
  }
  results.push(invariant("every account's balance equals the sum of its entries", driftViolations, `${accounts.length} accounts, ${driftViolations.length} differ`));

  // the totals match the intent
  const exchangeRows = await select(
    pool,
    object({ key: string(), status: string(), target_amount: nullable(Bigint), settlement_id: nullable(string()), hold_id: nullable(string()) }),
    `select w.key, w.status, x.target_amount::text, x.settlement_id::text, x.hold_id::text
     from ledgerbox.workflows w left join ledgerbox.exchanges x on x.workflow_id = w.id
     where w.kind = 'exchange'`,
  );
  const cards = await cardStates(pool);
  const exchanges = new Map<string, ExchangeState>(
    exchangeRows.map((row) => [row.key, { key: row.key, status: row.status, targetAmount: row.target_amount === null ? null : BigInt(row.target_amount) }]),
  );
  const expectation = expect(plan, outcomes, exchanges, cards);
  const totalViolations = [...expectation.misconverted];
  const actualPosted = new Map(accounts.map((account) => [account.key, BigInt(account.posted)]));
  for (const key of new Set([...expectation.balances.keys(), ...actualPosted.keys()])) {
    const expected = expectation.balances.get(key) ?? 0n;
    const actual = actualPosted.get(key) ?? 0n;
    if (expected !== actual) totalViolations.push(`${key}: the workload says ${expected}, the ledger ${actual} (difference ${actual - expected})`);
  }
  const totalFigures = currencies.map((code) => {
    const figure = expectation.perCurrency.get(code) ?? { intended: 0n, compensated: 0n, reversed: 0n, released: 0n, moved: 0n };
    return `${code}: intended ${format(figure.intended)} − compensated ${format(figure.compensated)} − reversed ${format(figure.reversed)} − released holds ${format(figure.released)} = moved ${format(figure.moved)}`;
  });
  results.push(
    invariant(
      'the totals match what the workload intended, minus what was compensated',
      totalViolations,
      `${totalFigures.join('; ')}; ${actualPosted.size} account balances checked against the workload, ${totalViolations.length} differ`,
    ),
  );

  // no transfer posted twice
  const transfers = await select(
    pool,
    object({ id: string(), key: string(), kind: string(), op: nullable(string()), hold_id: nullable(string()), reverses_id: nullable(string()), void_reason: nullable(string()) }),
    `select id::text, key, kind, metadata->>'op' as op, hold_id::text, reverses_id::text, void_reason from ledgerbox.transfers`,
  );
  const hostRows = new Set((await select(pool, object({ op_id: string() }), `select op_id from chaos_host.requests`)).map((row) => row.op_id));
  const twiceViolations: string[] = [];
  const byOp = new Map<string, number>();
  const byKey = new Map<string, number>();
  const resolutionsOf = new Map<string, number>();
  const reversalsOf = new Map<string, number>();
  for (const transfer of transfers) {
    if (transfer.op !== null) byOp.set(transfer.op, (byOp.get(transfer.op) ?? 0) + 1);
    byKey.set(transfer.key, (byKey.get(transfer.key) ?? 0) + 1);
    if (transfer.hold_id !== null) resolutionsOf.set(transfer.hold_id, (resolutionsOf.get(transfer.hold_id) ?? 0) + 1);
    if (transfer.reverses_id !== null) reversalsOf.set(transfer.reverses_id, (reversalsOf.get(transfer.reverses_id) ?? 0) + 1);
  }
  for (const [key, n] of byKey) if (n > 1) twiceViolations.push(`key ${key}: ${n} transfers`);
  for (const [hold, n] of resolutionsOf) if (n > 1) twiceViolations.push(`hold ${hold} resolved ${n} times`);
  for (const [transfer, n] of reversalsOf) if (n > 1) twiceViolations.push(`transfer ${transfer} reversed ${n} times`);
  let replays = 0;
  for (const op of plan.ops.values()) {
    if (op.kind === 'expire_holds') continue;
    const outcome = outcomes.get(op.id);
    const committed = outcome?.outcome === 'committed';
    const written = byOp.get(op.id) ?? 0;
    const expected = committed ? transfersWritten(op) : 0;
    if (written !== expected) twiceViolations.push(`${op.id} (${op.kind}, ${outcome?.outcome ?? 'no answer'}): ${written} transfers in the ledger, expected ${expected}`);
    if (committed !== hostRows.has(op.id)) twiceViolations.push(`${op.id} (${op.kind}, ${outcome?.outcome ?? 'no answer'}): host row ${hostRows.has(op.id) ? 'present' : 'missing'}`);
    if (committed && outcome.hostReplayed !== outcome.ledgerReplayed) {
      twiceViolations.push(`${op.id} (${op.kind}): the host row says ${outcome.hostReplayed ? 'replayed' : 'new'}, the ledger ${outcome.ledgerReplayed ? 'replayed' : 'new'}`);
    }
    if (committed && outcome.ledgerReplayed) replays++;
  }
  const transferByKey = new Map(transfers.map((transfer) => [transfer.key, transfer]));
  for (const op of plan.ops.values()) {
    if (op.kind !== 'exchange' || outcomes.get(op.id)?.outcome !== 'committed') continue;
    const state = exchanges.get(op.key);
    const settled = transferByKey.get(`${op.key}:settle`);
    const reversed = settled !== undefined && (reversalsOf.get(settled.id) ?? 0) > 0;
    if (state?.status === 'completed' && (settled === undefined || reversed)) twiceViolations.push(`exchange ${op.key} completed, but its settlement is ${settled ? 'reversed' : 'missing'}`);
    if (state?.status === 'compensated' && settled !== undefined && !reversed) twiceViolations.push(`exchange ${op.key} compensated, but its settlement stands`);
  }
  results.push(
    invariant(
      'no transfer posted twice',
      twiceViolations,
      `${transfers.length} transfers under ${byKey.size} keys; ${counts.committed} committed requests each wrote their transfers once (${replays} were found already written when retried after a lost connection and replayed by key); ${hostRows.size} host rows, each with its ledger writes`,
    ),
  );

  // no hold left pending
  const holds = transfers.filter((transfer) => transfer.kind === 'hold');
  const resolutionKind = new Map(transfers.filter((transfer) => transfer.hold_id !== null).map((transfer) => [transfer.hold_id!, transfer.kind === 'post_hold' ? 'posted' : (transfer.void_reason ?? 'voided')]));
  const holdCounts = { posted: 0, voided: 0, expired: 0, pending: 0 };
  const pendingHolds: string[] = [];
  for (const hold of holds) {
    const resolution = resolutionKind.get(hold.id) as keyof typeof holdCounts | undefined;
    if (resolution === undefined) {
      holdCounts.pending++;
      pendingHolds.push(`hold ${hold.key} (${hold.id}) is still pending`);
    } else holdCounts[resolution]++;
  }
  for (const account of accounts) if (account.pending_in !== '0' || account.pending_out !== '0') pendingHolds.push(`${account.key}: pending in ${account.pending_in}, out ${account.pending_out}`);
  results.push(invariant('no hold left pending', pendingHolds, `${holds.length} holds: ${holdCounts.posted} posted, ${holdCounts.voided} voided, ${holdCounts.expired} expired, ${holdCounts.pending} pending`));

  // every workflow completed or compensated
  const statusCounts = new Map<string, number>();
  const workflowViolations: string[] = [];
  for (const row of exchangeRows) {
    statusCounts.set(row.status, (statusCounts.get(row.status) ?? 0) + 1);
    if (row.status !== 'completed' && row.status !== 'compensated') workflowViolations.push(`workflow ${row.key} is ${row.status}`);
  }
  const special = new Set([...plan.declined, ...plan.erroring]);
  for (const op of plan.ops.values()) {
    if (op.kind !== 'exchange' || outcomes.get(op.id)?.outcome !== 'committed') continue;
    const state = exchanges.get(op.key);
    if (state === undefined) workflowViolations.push(`exchange ${op.key} was started (committed) but has no workflow`);
    else if (special.has(op.customer) && state.status !== 'compensated') workflowViolations.push(`exchange ${op.key} of ${op.customer} (declined or erroring) is ${state.status}, not compensated`);
  }
  const startedExchanges = [...plan.ops.values()].filter((op) => op.kind === 'exchange' && outcomes.get(op.id)?.outcome === 'committed').length;
  if (exchangeRows.length !== startedExchanges) workflowViolations.push(`${exchangeRows.length} workflows for ${startedExchanges} exchanges the clients saw started`);
  // the card workflows too (their own story is the next invariant), and nothing of another kind
  const cardCounts = new Map<string, number>();
  for (const card of cards.values()) {
    cardCounts.set(card.status, (cardCounts.get(card.status) ?? 0) + 1);
    if (card.status !== 'completed' && card.status !== 'compensated') workflowViolations.push(`workflow ${card.key} (card_capture) is ${card.status}`);
  }
  const others = await select(pool, object({ kind: string(), n: integer() }), `select kind, count(*)::int as n from ledgerbox.workflows where kind not in ('exchange', 'card_capture') group by kind`);
  for (const other of others) workflowViolations.push(`${other.n} workflows of kind ${other.kind}, which the run never starts`);
  const countsOf = (byStatus: Map<string, number>) => [...byStatus].map(([status, n]) => `${n} ${status}`).join(', ') || 'none';
  results.push(
    invariant('every workflow completed or compensated', workflowViolations, `${exchangeRows.length} exchange workflows: ${countsOf(statusCounts)}; ${cards.size} card workflows: ${countsOf(cardCounts)}`),
  );

  // every card payment as its processor and its webhooks say
  const card = await verifyCards(pool, plan, outcomes, signals, cards, transfers);
  results.push(invariant('every card payment captured and posted once, or voided, as its processor and its webhooks say', card.violations, card.figure));

  // no job left locked or lost
  const jobs = await select(
    pool,
    object({ task_identifier: string(), key: nullable(string()), locked_by: nullable(string()), attempts: integer(), max_attempts: integer(), last_error: nullable(string()) }),
    `select task_identifier, key, locked_by, attempts, max_attempts, last_error from graphile_worker.jobs`,
  );
  // A step job retired while it ran (its retry was enqueued under the same key, so graphile-worker
  // took its key and set its attempts to the maximum) is deleted when its run ends; if the worker
  // running it was killed, it stays behind, unlocked and never to run again. Its work went on
  // in the retry: litter, not lost work, and counted apart.
  const isRetired = (job: (typeof jobs)[number]) =>
    job.task_identifier === 'ledgerbox:step' && job.locked_by === null && job.key === null && job.last_error === null && job.attempts >= job.max_attempts;
  const retired = jobs.filter(isRetired);
  // a step that failed for good in a workflow that was then compensated is the workflow's story
  // (the invariant above); any other job failed for good is lost work
  const failedJobs = (await listFailedJobs(pool, { limit: 10_000 })).filter((job) => job.state === 'failed');
  const failedForGood = failedJobs.filter((job) => job.task !== 'ledgerbox:step' || job.workflow_status !== 'compensated');
  const notified = await select(pool, object({ exchange_id: string(), deliveries: integer() }), `select exchange_id::text, deliveries from chaos_host.notified`);
  const notifiedIds = new Set(notified.map((row) => row.exchange_id));
  const exchangeIds = new Map([...outcomes].filter(([id]) => plan.ops.get(id)?.kind === 'exchange').map(([id, outcome]) => [(plan.ops.get(id) as Extract<Op, { kind: 'exchange' }>).key, outcome.ids[0]]));
  const jobViolations: string[] = [];
  for (const job of jobs) {
    if (isRetired(job)) continue;
    if (job.locked_by !== null) jobViolations.push(`job ${job.task_identifier} still locked by ${job.locked_by}`);
    else if (job.attempts >= job.max_attempts) jobViolations.push(`job ${job.task_identifier} failed for good: ${job.last_error?.slice(0, 200) ?? ''}`);
    else if (job.task_identifier === 'ledgerbox:step' || job.task_identifier === 'ledgerbox:exchange_settled') jobViolations.push(`job ${job.task_identifier} never ran (attempts ${job.attempts})`);
  }
  for (const job of failedForGood) jobViolations.push(`failed job ${job.job_id} (${job.task}): ${job.last_error?.slice(0, 200) ?? ''}`);
  let completed = 0;
  for (const row of exchangeRows) {
    if (row.status !== 'completed') continue;
    completed++;
    const id = exchangeIds.get(row.key);
    if (id === undefined || !notifiedIds.has(id)) jobViolations.push(`exchange ${row.key} completed, but its settlement notification never ran`);
  }
  const redelivered = notified.filter((row) => row.deliveries > 1).length;
  const leftOver = jobs.filter((job) => job.locked_by === null && job.attempts < job.max_attempts).map((job) => job.task_identifier);
  const retiredNote = retired.length > 0 ? `, ${retired.length} retired step jobs left behind by killed workers` : '';
  results.push(
    invariant(
      'no job left locked or lost',
      jobViolations,
      `${jobs.length} jobs left in the queue (${leftOver.length ? `scheduled: ${leftOver.join(', ')}` : 'none'}${retiredNote}), ${jobs.filter((job) => job.locked_by !== null).length} locked, ${failedForGood.length} failed for good (besides ${failedJobs.length - failedForGood.length} steps of compensated workflows); ${notified.length} of ${completed} settled exchanges notified (${redelivered} more than once: at least once delivery)`,
    ),
  );

  // the reconciliation finds nothing critical
  const report = await reconcile(pool, { full: true });
  const byKind = new Map<string, number>();
  for (const finding of report.findings) byKind.set(`${finding.severity} ${finding.kind}`, (byKind.get(`${finding.severity} ${finding.kind}`) ?? 0) + 1);
  results.push(
    invariant(
      'the reconciliation is clean of criticals',
      report.findings.filter((finding) => finding.severity === 'critical').map((finding) => `${finding.kind} ${finding.subject}: ${finding.detail}`),
      `run ${report.runId} (full, ${report.entriesChecked} entries): ${report.status}; ${[...byKind].map(([kind, n]) => `${n} ${kind}`).join(', ') || 'no findings'}`,
    ),
  );
  return results;
}
