// One chaos client process: a host service placing its share of the workload through the
// public API, each request inside the host's own transaction (BEGIN, the host's row in
// chaos_host.requests, the ledgerbox call, COMMIT). Its connections are terminated at random
// and the server restarts under it: a request whose fate is unknown (the connection died, maybe
// during COMMIT) is made again with the same idempotency key until it gets an answer, which is
// what a well-behaved host does. It reports each request's outcome to the run.
//
// It is also the card processor's webhook sender for its card payments: once the processor has
// captured one, it sends the 'captured' signal through signalWorkflow in a host transaction (a
// webhook handler's), on time, twice, after the deadline or never, as the plan says.
import { createInterface } from 'node:readline';
import pg from 'pg';
import { integer, object, string } from 'superstruct';
import { startCardPayment } from '../examples/card-capture-workflow.ts';
import { validate } from '../src/contracts.ts';
import {
  createHold,
  expireHolds,
  getWorkflow,
  isLedgerboxError,
  postHold,
  postTransfer,
  postTransfers,
  reverseTransfer,
  signalWorkflow,
  startExchange,
  voidHold,
  type Transfer,
} from '../src/index.ts';
import { chaosCardWorkflow, DatabaseCardProcessor } from './cards.ts';
import { buildPlan, type CardPaymentOp, type Leg, type Op } from './plan.ts';
import { Go, send, type OutcomeMessage, type SignalMessage } from './protocol.ts';
import { dice, streamSeed } from './random.ts';

const ClientSettings = object({
  index: integer(),
  /** Carries application_name=chaos-client-<index>. */
  connectionString: string(),
  seed: integer(),
  exchanges: integer(),
  clients: integer(),
  customers: integer(),
  cardPayments: integer(),
  /** How long the workload is spread over. */
  duration_ms: integer(),
  lanes: integer(),
});

const settings = validate(ClientSettings, JSON.parse(process.env.CHAOS_CLIENT ?? 'null'), 'CHAOS_CLIENT');
const plan = buildPlan({ seed: settings.seed, exchanges: settings.exchanges, clients: settings.clients, customers: settings.customers, cardPayments: settings.cardPayments });
const ops = plan.clients[settings.index - 1]!;
const random = dice(streamSeed(settings.seed, `client:${settings.index}`));
const pool = new pg.Pool({ connectionString: settings.connectionString, max: settings.lanes });
// the webhooks' own connections, so that waiting for a capture never holds up a request
const webhookPool = new pg.Pool({ connectionString: settings.connectionString, max: 2 });
// A terminated connection is not news here: the request it served fails and is retried. Every
// connection gets a listener of its own, for as long as it lives: node-postgres emits 'error' on
// a connection that dies between two statements, and ledgerbox's own transactions on a pool
// (expireHolds here) attach none, so without this the process would crash.
for (const each of [pool, webhookPool]) {
  each.on('error', () => undefined);
  each.on('connect', (connection) => connection.on('error', () => undefined));
}

let connectionErrors = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Outcome = Omit<OutcomeMessage, 'type' | 'op'>;
const outcomes = new Map<string, Promise<Outcome>>();
const expiries: number[] = [];
const webhooks: Promise<void>[] = [];
// the host only starts card payments (the workers run them): the same definition the workers
// run, with the run's processor, which this process never calls
const cardWorkflow = chaosCardWorkflow(new DatabaseCardProcessor(pool, { declinedCards: plan.declinedCards }));

const money = (leg: Leg) => ({ amount: leg.amount, currency: leg.currency });
const legsFor = (legs: Leg[]) => legs.map((leg) => ({ from: leg.from, to: leg.to, amount: money(leg) }));

/** The ledgerbox call of one request, on the host's connection inside its transaction. */
async function callLedger(client: pg.PoolClient, op: Op, dependency: Outcome | undefined, expiresAt: Date | undefined): Promise<{ ids: string[]; replayed: boolean }> {
  const metadata = { op: op.id };
  const one = (transfer: Transfer) => ({ ids: [transfer.id], replayed: transfer.replayed });
  switch (op.kind) {
    case 'exchange': {
      const started = await startExchange(client, { key: op.key, from: op.from, to: op.to, amount: { amount: op.amount, currency: op.currency }, metadata });
      return { ids: [started.exchangeId, started.holdId], replayed: started.replayed };
    }
    case 'transfer':
      return one(await postTransfer(client, { key: op.key, legs: legsFor(op.legs), metadata }));
    case 'batch': {
      const transfers = await postTransfers(client, op.transfers.map((transfer) => ({ key: transfer.key, legs: legsFor(transfer.legs), metadata })));
      return { ids: transfers.map((transfer) => transfer.id), replayed: transfers.every((transfer) => transfer.replayed) };
    }
    case 'hold': {
      const hold = await createHold(client, { key: op.key, from: op.leg.from, to: op.leg.to, amount: money(op.leg), metadata, ...(expiresAt ? { expiresAt } : {}) });
      if (hold.expiresAt !== null) expiries.push(hold.expiresAt.getTime());
      return one(hold);
    }
    case 'post_hold':
      return one(
        await postHold(client, {
          key: op.key,
          holdId: dependency!.ids[0]!,
          metadata,
          ...(op.amount === null ? {} : { amount: { amount: op.amount, currency: (plan.ops.get(op.hold) as Extract<Op, { kind: 'hold' }>).leg.currency } }),
        }),
      );
    case 'void_hold':
      return one(await voidHold(client, { key: op.key, holdId: dependency!.ids[0]!, metadata }));
    case 'reverse':
      return one(await reverseTransfer(client, { key: op.key, transferId: dependency!.ids[0]!, metadata }));
    case 'card_payment': {
      // the host's checkout: its card_payments row and the workflow, in this transaction
      const started = await startCardPayment(client, cardWorkflow, { key: op.key, card: op.card, payerAccount: op.payer, merchant: op.merchant, amount: op.amount, currency: op.currency });
      return { ids: [started.workflowId], replayed: started.replayed };
    }
    case 'expire_holds':
      throw new Error('expire_holds runs outside a host transaction');
  }
}

/** BEGIN; the host's row; the ledger call; COMMIT. A connection lost on the way throws. */
async function inHostTransaction(op: Op, dependency: Outcome | undefined, expiresAt: Date | undefined): Promise<{ ids: string[]; replayed: boolean; hostReplayed: boolean }> {
  return hostTransaction(pool, async (client) => {
    const host = await client.query(`insert into chaos_host.requests (op_id, client, kind) values ($1, $2, $3) on conflict (op_id) do nothing returning op_id`, [
      op.id,
      settings.index,
      op.kind,
    ]);
    // the host's own work takes a moment: a wider window for a connection to die mid-transaction
    if (random.chance(0.3)) await client.query('select pg_sleep($1)', [random.int(30) / 1000]);
    const result = await callLedger(client, op, dependency, expiresAt);
    return { ...result, hostReplayed: host.rowCount === 0 };
  });
}

/** BEGIN; the work; COMMIT, on a connection of its own, thrown away if it failed. */
async function hostTransaction<T>(from: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await from.connect();
  let lost: unknown;
  const onError = (error: unknown) => (lost = error);
  client.on('error', onError);
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    // a connection that failed is thrown away, not handed to the next request
    client.release(lost === undefined ? undefined : (lost as Error));
  }
}

/** Until an answer: a business refusal, or a commit (first time, or found on a retry). */
async function execute(op: Op): Promise<Outcome> {
  const dependsOn = op.kind === 'post_hold' || op.kind === 'void_hold' ? op.hold : op.kind === 'reverse' ? op.transfer : undefined;
  const dependency = dependsOn === undefined ? undefined : await outcomes.get(dependsOn);
  if (dependency !== undefined && dependency.outcome !== 'committed') return { outcome: 'skipped', attempts: 0, ids: [] };
  if (op.kind === 'expire_holds' && op === ops.at(-1)) {
    // the last one: after every other request, and after every hold this client let expire has expired
    await Promise.all([...outcomes].filter(([id]) => id !== op.id).map(([, outcome]) => outcome));
    const last = Math.max(0, ...expiries);
    if (last > Date.now()) await sleep(last - Date.now() + 50);
  }
  // a retry is the same request: an expiry computed again would be a different one
  // (exists_with_different_request), so it is fixed once, before the first attempt
  const expiresAt = op.kind === 'hold' && op.expiresIn_ms !== null ? new Date(Date.now() + op.expiresIn_ms) : undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      if (op.kind === 'expire_holds') {
        const voided = await expireHolds(pool);
        return { outcome: 'committed', attempts: attempt, ids: voided.map((transfer) => transfer.id) };
      }
      const result = await inHostTransaction(op, dependency, expiresAt);
      return { outcome: 'committed', attempts: attempt, ids: result.ids, hostReplayed: result.hostReplayed, ledgerReplayed: result.replayed };
    } catch (error) {
      if (isLedgerboxError(error) && !error.retryable) return { outcome: 'refused', code: error.code, attempts: attempt, ids: [] };
      if (!isLedgerboxError(error)) connectionErrors++;
      if (Date.now() > go.deadline_ms) {
        return { outcome: 'unknown', code: error instanceof Error ? error.message.slice(0, 200) : String(error), attempts: attempt, ids: [] };
      }
      await sleep(Math.min(1_000, 20 * 2 ** Math.min(attempt, 6)));
    }
  }
}

/**
 * The processor's webhook for one card payment, as the plan's fate says (see cardFates): once
 * the processor has captured it (its capture under the workflow's capture key), 'captured' with
 * the capture's id as the signal key, as a processor names its events.
 */
async function processorWebhook(op: CardPaymentOp, workflowId: string): Promise<void> {
  if (op.fate === 'never' || op.fate === 'declined') return;
  let polls = 0;
  const capture = await poll(async () => {
    const { rows } = await webhookPool.query<{ capture_id: string | null }>(
      `select answer->>'captureId' as capture_id from chaos_card_processor where idempotency_key = $1 and answer->>'status' = 'captured'`,
      [`${workflowId}:capture`],
    );
    if (rows[0]?.capture_id) return { captureId: rows[0].capture_id };
    // a payment that ended before any capture has no webhook coming (asked every 2 s: it is rare)
    return ++polls % 8 === 0 && (await ended(workflowId)) ? { captureId: null } : undefined;
  });
  if (capture === undefined || capture.captureId === null) {
    send({ type: 'signal', op: op.id, delivery: 1, outcome: capture === undefined ? 'gave_up' : 'no_capture', attempts: 0 });
    return;
  }
  if (op.fate !== 'late' && random.chance(0.5)) {
    // half the time once the payment waits for it (the signal wakes the wait), else at once
    // (mostly before the wait begins: the signal is kept for it)
    await poll(async () => {
      const state = await getWorkflow(webhookPool, { id: workflowId });
      return state.waiting?.step === 'await_capture' || state.results.await_capture !== undefined || state.status !== 'running' ? true : undefined;
    });
  }
  if (op.fate === 'late') {
    // only once the wait's deadline has passed (the payment is being voided, or was)
    const passed = await poll(async () => {
      const state = await getWorkflow(webhookPool, { id: workflowId });
      const wait = state.results.await_capture as { missedDeadline?: boolean } | undefined;
      return wait?.missedDeadline === true || state.status !== 'running' ? true : undefined;
    });
    if (passed === undefined) {
      send({ type: 'signal', op: op.id, delivery: 1, outcome: 'gave_up', attempts: 0 });
      return;
    }
  }
  await deliver(op, workflowId, capture.captureId, 1);
  if (op.fate === 'twice') {
    // the processor sends it again: at once, or once the payment has ended
    if (random.chance(0.5)) await poll(async () => ((await ended(workflowId)) ? true : undefined));
    await deliver(op, workflowId, capture.captureId, 2);
  }
}

const ended = async (workflowId: string) => ['completed', 'compensated', 'compensation_failed'].includes((await getWorkflow(webhookPool, { id: workflowId })).status);

/** One webhook delivery, in the host's transaction, made again on a lost connection until it has an answer. */
async function deliver(op: CardPaymentOp, workflowId: string, captureId: string, delivery: number): Promise<void> {
  const report = (fields: Omit<SignalMessage, 'type' | 'op' | 'delivery' | 'signalKey'>) => send({ type: 'signal', op: op.id, delivery, signalKey: captureId, ...fields });
  for (let attempt = 1; ; attempt++) {
    try {
      const signalled = await hostTransaction(webhookPool, (client) => signalWorkflow(client, { workflowId, name: 'captured', signalKey: captureId, payload: { captureId } }));
      report({ outcome: signalled.outcome, attempts: attempt });
      return;
    } catch (error) {
      if (isLedgerboxError(error) && !error.retryable) {
        report({ outcome: 'refused', code: error.code, attempts: attempt });
        return;
      }
      if (!isLedgerboxError(error)) connectionErrors++;
      if (Date.now() > go.deadline_ms) {
        report({ outcome: 'gave_up', code: error instanceof Error ? error.message.slice(0, 200) : String(error), attempts: attempt });
        return;
      }
      await sleep(Math.min(1_000, 20 * 2 ** Math.min(attempt, 6)));
    }
  }
}

/** Asks `check` every 250 ms until it answers, through lost connections; undefined past the run's deadline. */
async function poll<T>(check: () => Promise<T | undefined>): Promise<T | undefined> {
  while (Date.now() <= go.deadline_ms) {
    try {
      const answer = await check();
      if (answer !== undefined) return answer;
    } catch (error) {
      if (!isLedgerboxError(error)) connectionErrors++;
    }
    await sleep(250);
  }
  return undefined;
}

// ready when connected; then wait for the run's go (start and deadline) on stdin
await pool.query('select 1');
send({ type: 'client_ready', client: settings.index });
const go = await new Promise<{ start_ms: number; deadline_ms: number }>((resolve, reject) => {
  const lines = createInterface({ input: process.stdin });
  lines.once('line', (line) => {
    lines.close();
    try {
      resolve(validate(Go, JSON.parse(line), 'go'));
    } catch (error) {
      reject(error);
    }
  });
});

let next = 0;
await Promise.all(
  Array.from({ length: settings.lanes }, async () => {
    while (next < ops.length) {
      const position = next++;
      const op = ops[position]!;
      // paced over the run's duration, so the faults land across the whole workload; registered
      // before the wait, so a request that follows this one always finds it
      const due = go.start_ms + Math.floor((settings.duration_ms * position) / ops.length);
      const running = sleep(due - Date.now()).then(() => execute(op));
      outcomes.set(op.id, running);
      const outcome = await running;
      send({ type: 'outcome', op: op.id, ...outcome });
      if (op.kind === 'card_payment' && outcome.outcome === 'committed') webhooks.push(processorWebhook(op, outcome.ids[0]!));
    }
  }),
);
// the last webhooks come after the last deadlines
await Promise.all(webhooks);
send({ type: 'client_done', client: settings.index, connectionErrors });
await Promise.all([pool.end(), webhookPool.end()]);
