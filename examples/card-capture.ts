// Card payments as a host workflow, end to end: `npx tsx examples/card-capture.ts` against
// DATABASE_URL, or the embedded PostgreSQL when it is unset (`npm run build` first: 'ledgerbox'
// resolves to dist/). The workflow itself is in ./card-capture-workflow.ts: authorize (hold) →
// capture → wait for the processor's "captured" webhook, with a deadline → post → sleep until
// settlement → settle; void on decline or a missed deadline.
//
// Five payments, each started in a host transaction beside its card_payments row, and this
// file playing the processor's webhooks, which it sends only for captures the processor shows:
//   normal     the webhook arrives once, while the workflow waits for it
//   duplicate  the webhook arrives twice: the second is a duplicate, taken once
//   early      the webhook beats the processor's answer to the capture call home: it arrives
//              before the workflow reaches its wait, is kept, and taken when the wait begins
//   declined   the fake declines the card: nothing is held, the workflow is compensated
//   missed     the webhook never arrives: at the deadline the authorization and the hold are voided
// Then it prints each payment and the balances, checks them against the entries and the
// processor's captures, and exits 0, or 1 if anything is off. test/examples.test.ts runs it.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { USD, dinero, toDecimal } from 'dinero.js/bigint';
import {
  createAccount,
  defineCurrency,
  getBalance,
  getWorkflow,
  migrate,
  minorUnits,
  signalWorkflow,
  startWorker,
  type CardProcessor,
  type RunningWorker,
  type SignalOutcome,
  type StepDatabase,
  type WorkflowState,
} from 'ledgerbox';
import { FakeCardProcessor } from 'ledgerbox/testing';
// The package has no public way to start its embedded PostgreSQL (the CLI and `npm run demo`
// use this function): DATABASE_URL when set, otherwise the embedded server.
import { resolveDatabase, type ResolvedDatabase } from '../src/db/connection.ts';
import { cardCaptureWorkflow, cardPaymentsTable, merchantAvailable, merchantPending, startCardPayment } from './card-capture-workflow.ts';

type Scenario = 'normal' | 'duplicate' | 'early' | 'declined' | 'missed';
type Outcome = SignalOutcome['outcome'];

interface Planned {
  scenario: Scenario;
  card: string;
  amount: bigint;
  /** What the run must end with: the workflow's status, signalWorkflow's answers, the transfers its steps made (key suffixes, in order). */
  expect: { status: string; webhooks: Outcome[]; transfers: string[] };
}

interface Payment extends Planned {
  key: string;
  workflowId: string;
  /** What signalWorkflow answered, in order, for each webhook sent for it. */
  webhooks: Outcome[];
}

const goodCard = '4242424242424242';
const declinedCard = '4000000000000002';
const moved = [':hold', ':post', ':settle'];
const plan: Planned[] = [
  { scenario: 'normal', card: goodCard, amount: 12_34n, expect: { status: 'completed', webhooks: ['delivered'], transfers: moved } },
  { scenario: 'duplicate', card: goodCard, amount: 25_00n, expect: { status: 'completed', webhooks: ['delivered', 'duplicate'], transfers: moved } },
  { scenario: 'early', card: goodCard, amount: 7_50n, expect: { status: 'completed', webhooks: ['recorded'], transfers: moved } },
  { scenario: 'declined', card: declinedCard, amount: 99_99n, expect: { status: 'compensated', webhooks: [], transfers: [] } },
  { scenario: 'missed', card: goodCard, amount: 40_00n, expect: { status: 'compensated', webhooks: [], transfers: [':hold', ':void'] } },
];
const captureDeadline_ms = 2_000;
const settleAfter_ms = 500;
/** Every wait below looks again this often, and gives up after its bound. */
const lookEvery_ms = 20;
const runBound_ms = 30_000;

// A run of its own: run again against the same database, it makes new accounts and payments.
const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const merchant = `shop-${run}`;
const payerAccount = `card-clearing:${run}:USD`;
const pendingAccount = merchantPending(merchant, 'USD');
const availableAccount = merchantAvailable(merchant, 'USD');

const out = (line = '') => process.stdout.write(`${line}\n`);
const problems: string[] = [];
const check = (ok: boolean, problem: string) => {
  if (!ok) problems.push(problem);
};

let database: ResolvedDatabase | undefined;
let pool: pg.Pool | undefined;
let worker: RunningWorker | undefined;

async function main(): Promise<void> {
  const started = Date.now();
  database = await resolveDatabase();
  out(`database: ${database.description}`);
  pool = new pg.Pool({ connectionString: database.connectionString, max: 4 });
  // a connection dropped by the server must be reported, not crash the process
  pool.on('error', (error) => process.stderr.write(`idle database connection failed: ${error.message}\n`));
  pool.on('connect', (client) => client.on('error', (error) => process.stderr.write(`database connection failed: ${error.message}\n`)));
  const db = pool;
  await migrate({ pgPool: db }); // on boot; a no-op when up to date

  await defineCurrency(db, { code: 'USD', exponent: 2 }); // ISO codes are there already: a no-op
  await createAccount(db, { key: payerAccount, currency: 'USD', allowNegative: true }); // the card network's side
  await createAccount(db, { key: pendingAccount, currency: 'USD' });
  await createAccount(db, { key: availableAccount, currency: 'USD' });
  await db.query(cardPaymentsTable);

  const fake = new FakeCardProcessor({ declinedCards: [declinedCard] });
  const processor = new WebhookFirst(fake);
  const cardCapture = cardCaptureWorkflow({ processor, captureDeadline_ms, settleAfter_ms, currencies: { USD } });
  worker = await startWorker({
    connectionString: database.connectionString,
    workflows: [cardCapture],
    pollInterval_ms: 200,
    retry: { base_ms: 50, max_ms: 500 },
    reconciliation: false,
    noHandleSignals: true,
  });

  // The checkout: each payment's row and its workflow in one host transaction.
  const payments: Payment[] = [];
  for (const planned of plan) {
    const key = `card:${run}:${planned.scenario}`;
    const { workflowId } = await inHostTransaction(db, (client) =>
      startCardPayment(client, cardCapture, { key, card: planned.card, payerAccount, merchant, amount: planned.amount, currency: 'USD' }),
    );
    payments.push({ ...planned, key, workflowId, webhooks: [] });
    if (planned.scenario === 'early') processor.answerCaptureAfterWebhook(workflowId);
  }

  await playWebhooks(db, fake, processor, payments);
  const states = await Promise.all(payments.map((payment) => finished(db, payment.key)));

  out(`payments (run ${run}):`);
  for (const [index, payment] of payments.entries()) {
    const state = states[index]!;
    const transfers = (await transferKeysOf(db, payment.workflowId)).map((key) => key.slice(payment.key.length));
    out(`  ${payment.scenario.padEnd(9)}  ${toDecimal(usd(payment.amount)).padStart(5)} USD  ${state.status.padEnd(11)}  ${story(payment, state, fake)}`);
    check(state.status === payment.expect.status, `${payment.scenario}: ${state.status}, expected ${payment.expect.status}${state.failureReason === null ? '' : ` (${state.failureReason})`}`);
    check(same(payment.webhooks, payment.expect.webhooks), `${payment.scenario}: webhooks answered ${payment.webhooks.join(', ') || 'nothing'}, expected ${payment.expect.webhooks.join(', ') || 'nothing'}`);
    // a capture posted twice, a void beside a post, a hold left over: any would show here
    check(same(transfers, payment.expect.transfers), `${payment.scenario}: its transfers are ${transfers.join(', ') || 'none'}, expected ${payment.expect.transfers.join(', ') || 'none'}`);
  }
  check(fake.doubleCaptured().length === 0, `authorizations captured twice at the processor: ${fake.doubleCaptured().join(', ')}`);

  out('balances:');
  const settled = payments.filter((payment) => payment.expect.status === 'completed').reduce((sum, payment) => sum + payment.amount, 0n);
  const expected: Record<string, bigint> = { [payerAccount]: -settled, [pendingAccount]: 0n, [availableAccount]: settled };
  for (const account of [payerAccount, pendingAccount, availableAccount]) {
    const balance = await getBalance(db, account);
    const entries = await entriesOf(db, account);
    const posted = minorUnits(balance.posted);
    const held = minorUnits(balance.pendingIncoming) + minorUnits(balance.pendingOutgoing);
    out(`  ${account.padEnd(42)}  ${toDecimal(balance.posted).padStart(6)} ${balance.currency}  (sum of entries ${toDecimal(usd(entries.posted))} ${balance.currency}, held ${toDecimal(usd(held))} ${balance.currency})`);
    check(posted === entries.posted, `${account}: posted balance ${posted} is not the sum of its posted entries, ${entries.posted}`);
    check(
      minorUnits(balance.pendingIncoming) === entries.pendingIncoming && minorUnits(balance.pendingOutgoing) === entries.pendingOutgoing,
      `${account}: pending balances differ from the entries of its unresolved holds`,
    );
    check(held === 0n, `${account}: ${held} minor units still held`);
    check(posted === expected[account], `${account}: ${posted} minor units, expected ${expected[account]}`);
  }
  out(
    problems.length === 0
      ? `ok: every balance equals the sum of its entries, no capture posted twice (${((Date.now() - started) / 1000).toFixed(1)} s)`
      : `NOT OK: ${problems.length} problem${problems.length === 1 ? '' : 's'} (on stderr)`,
  );
}

/**
 * The fake processor, plus something real processors do: the webhook for a capture and the
 * answer to the capture call race, and sometimes the webhook wins. For the workflows told so,
 * the answer to `capture` reaches the worker only once the webhook for it has been handled
 * (bounded by the deadline: if it never is, the call runs out of time and the step asks
 * `lookup`, as for any answer lost on the way).
 */
class WebhookFirst implements CardProcessor {
  private readonly holdBack = new Map<string, { handled: Promise<void>; release: () => void }>();
  constructor(private readonly fake: FakeCardProcessor) {}

  answerCaptureAfterWebhook(workflowId: string): void {
    let release!: () => void;
    const handled = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.holdBack.set(workflowId, { handled, release });
  }

  webhookHandled(workflowId: string): void {
    this.holdBack.get(workflowId)?.release();
  }

  authorize(request: Parameters<CardProcessor['authorize']>[0]) {
    return this.fake.authorize(request);
  }

  async capture(request: Parameters<CardProcessor['capture']>[0]) {
    const answer = await this.fake.capture(request);
    // the step's idempotency key is `${workflowId}:capture`
    const held = this.holdBack.get(request.idempotencyKey.slice(0, -':capture'.length));
    if (held !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([held.handled, new Promise<void>((resolve) => (timer = setTimeout(resolve, captureDeadline_ms)))]);
      clearTimeout(timer);
    }
    return answer;
  }

  void(request: Parameters<CardProcessor['void']>[0]) {
    return this.fake.void(request);
  }

  lookup(idempotencyKey: string) {
    return this.fake.lookup(idempotencyKey);
  }
}

/**
 * The processor's webhooks: for each capture the processor shows, a 'captured' event naming it
 * (the capture id is the event's key, so a redelivery is the same signal). `early` is sent the
 * moment the capture exists; `normal` and `duplicate` once the workflow waits (a webhook a
 * little behind the answer, the usual order); `duplicate` then once more; `missed` never.
 */
async function playWebhooks(db: pg.Pool, fake: FakeCardProcessor, processor: WebhookFirst, payments: Payment[]): Promise<void> {
  const webhook = async (payment: Payment, captureId: string) => {
    // what the service's webhook handler does with the processor's event
    const { outcome } = await signalWorkflow(db, { key: payment.key, name: 'captured', payload: { captureId }, signalKey: captureId });
    payment.webhooks.push(outcome);
  };
  const authorizationOf = new Map<string, string>(); // payment key → authorization id, once authorized
  const sent = new Set<string>();
  const toSend = payments.filter((payment) => payment.scenario !== 'missed' && payment.scenario !== 'declined');
  await until('every webhook to be sent', async () => {
    const captures = fake.captured();
    for (const payment of toSend) {
      if (sent.has(payment.key)) continue;
      if (!authorizationOf.has(payment.key)) {
        const authorized = (await getWorkflow(db, { key: payment.key })).results.authorize as { authorizationId?: string } | undefined;
        if (authorized?.authorizationId === undefined) continue;
        authorizationOf.set(payment.key, authorized.authorizationId);
      }
      const capture = captures.find((candidate) => candidate.authorizationId === authorizationOf.get(payment.key));
      if (capture === undefined) continue; // a webhook names a capture that happened: none yet
      if (payment.scenario !== 'early' && (await getWorkflow(db, { key: payment.key })).waiting?.step !== 'await_capture') continue;
      await webhook(payment, capture.captureId);
      if (payment.scenario === 'duplicate') await webhook(payment, capture.captureId);
      processor.webhookHandled(payment.workflowId);
      sent.add(payment.key);
    }
    return sent.size === toSend.length ? true : undefined;
  });
}

const terminal = ['completed', 'compensated', 'compensation_failed'];

function finished(db: pg.Pool, key: string): Promise<WorkflowState> {
  return until(`payment ${key} to finish`, async () => {
    const state = await getWorkflow(db, { key });
    return terminal.includes(state.status) ? state : undefined;
  });
}

/** What became of a payment, from its workflow's recorded results and the processor's side. */
function story(payment: Payment, state: WorkflowState, fake: FakeCardProcessor): string {
  const said: Record<Outcome, string> = { delivered: 'delivered to the wait', recorded: 'recorded before the wait', duplicate: 'duplicate', late: 'late' };
  const webhooks = payment.webhooks.length === 0 ? 'no webhook' : `webhook ${payment.webhooks.map((outcome) => said[outcome]).join(', then ')}`;
  const authorizationId = (state.results.authorize as { authorizationId?: string } | undefined)?.authorizationId;
  const atProcessor = fake.authorizations().find((authorization) => authorization.authorizationId === authorizationId);
  const processor = atProcessor === undefined ? 'not authorized' : `${atProcessor.status}${atProcessor.captured > 0n ? `, ${toDecimal(usd(atProcessor.captured))} USD captured` : ''}`;
  if (state.status === 'completed') {
    const captureId = (state.results.await_capture as { captured?: { captureId?: string } } | undefined)?.captured?.captureId;
    return `${webhooks}; ${captureId} posted, settled [processor: ${processor}]`;
  }
  return `${webhooks}; ${state.failureReason ?? 'no reason recorded'} [processor: ${processor}]`;
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((value, index) => value === b[index]);

async function inHostTransaction<T>(db: pg.Pool, work: (client: StepDatabase) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback');
    throw error;
  } finally {
    client.release();
  }
}

/** An account's entries: the posted ones, and the pending ones of holds not yet resolved. */
async function entriesOf(db: pg.Pool, account: string): Promise<{ posted: bigint; pendingIncoming: bigint; pendingOutgoing: bigint }> {
  const { rows } = await db.query<{ posted: string; pending_in: string; pending_out: string }>(
    `select coalesce(sum(e.amount) filter (where e.phase = 'posted'), 0)::text as posted,
       coalesce(sum(e.amount) filter (where e.phase = 'pending' and e.amount > 0 and not resolved), 0)::text as pending_in,
       coalesce(-sum(e.amount) filter (where e.phase = 'pending' and e.amount < 0 and not resolved), 0)::text as pending_out
     from ledgerbox.accounts a
     join ledgerbox.entries e on e.account_id = a.id
     cross join lateral (select exists (select 1 from ledgerbox.transfers r where r.hold_id = e.transfer_id) as resolved) r
     where a.key = $1`,
    [account],
  );
  const row = rows[0]!;
  return { posted: BigInt(row.posted), pendingIncoming: BigInt(row.pending_in), pendingOutgoing: BigInt(row.pending_out) };
}

async function transferKeysOf(db: pg.Pool, workflowId: string): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>('select key from ledgerbox.transfers where workflow_id = $1 order by created_at', [workflowId]);
  return rows.map((row) => row.key);
}

function usd(amount: bigint) {
  return dinero({ amount, currency: USD });
}

/** Looks again every `lookEvery_ms` until `look` answers, for at most `runBound_ms`. */
async function until<T>(what: string, look: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + runBound_ms;
  for (;;) {
    const value = await look();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${runBound_ms} ms waiting for ${what}`);
    await delay(lookEvery_ms);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// last: the classes and constants above exist by now
try {
  await main();
  process.exitCode = problems.length === 0 ? 0 : 1;
  for (const problem of problems) process.stderr.write(`card-capture: ${problem}\n`);
} catch (error) {
  process.stderr.write(`card-capture failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
} finally {
  await worker?.stop().catch(() => undefined);
  await pool?.end().catch(() => undefined);
  await database?.close().catch(() => undefined);
}
