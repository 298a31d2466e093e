// The card payments' invariant: each payment against what its processor did (chaos_card_processor,
// chaos_card_authorizations), what its webhooks were answered (the clients' reports), the
// signals and alerts ledgerbox kept, and the holds and transfers its workflow made. Read from the
// rows, as an auditor would.
import type pg from 'pg';
import { array, enums, integer, nullable, object, optional, string, type, unknown, type Struct } from 'superstruct';
import { validate } from '../src/contracts.ts';
import type { CardPaymentOp, Plan } from './plan.ts';
import type { OutcomeMessage, SignalMessage } from './protocol.ts';

export interface CardState {
  id: string;
  key: string;
  status: string;
}

/** The transfers the verifier read, by key: what the card workflow's steps made is found by `${payment key}:${step}`. */
export interface TransferRow {
  id: string;
  key: string;
  kind: string;
  hold_id: string | null;
}

async function select<T>(pool: pg.Pool, struct: Struct<T>, query: string): Promise<T[]> {
  const { rows } = await pool.query(query);
  return validate(array(struct), rows, 'rows');
}

/** The card workflows, by key. */
export async function cardStates(pool: pg.Pool): Promise<Map<string, CardState>> {
  const rows = await select(pool, object({ id: string(), key: string(), status: string() }), `select id::text, key, status from ledgerbox.workflows where kind = 'card_capture'`);
  return new Map(rows.map((row) => [row.key, row]));
}

const Answer = type({ status: string(), authorizationId: optional(string()), captureId: optional(string()), voidId: optional(string()) });

export async function verifyCards(
  pool: pg.Pool,
  plan: Plan,
  outcomes: ReadonlyMap<string, OutcomeMessage>,
  signals: readonly SignalMessage[],
  cards: ReadonlyMap<string, CardState>,
  transfers: readonly TransferRow[],
): Promise<{ violations: string[]; figure: string }> {
  const violations: string[] = [];
  const desk = await select(
    pool,
    object({ idempotency_key: string(), kind: enums(['authorize', 'capture', 'void']), authorization_id: string(), answer: nullable(Answer), asks: integer(), lookups: integer() }),
    `select idempotency_key, kind, authorization_id, answer, asks, lookups from chaos_card_processor`,
  );
  const authorizations = await select(
    pool,
    object({ authorization_id: string(), status: string(), amount: string(), captured: string() }),
    `select authorization_id, status, amount::text, captured::text from chaos_card_authorizations`,
  );
  const waits = await select(
    pool,
    object({ workflow_id: string(), result: unknown() }),
    `select workflow_id::text, result from ledgerbox.step_results where step = 'await_capture'`,
  );
  const stored = await select(
    pool,
    object({ id: string(), workflow_id: string(), name: string(), signal_key: string(), consumed_step: nullable(string()) }),
    `select id::text, workflow_id::text, name, signal_key, consumed_step from ledgerbox.workflow_signals`,
  );
  const tooLate = await select(
    pool,
    object({ workflow_id: nullable(string()), signal_id: nullable(string()) }),
    `select workflow_id::text, details->>'signalId' as signal_id from ledgerbox.alerts where kind = 'signal_too_late'`,
  );

  const deskByKey = new Map(desk.map((row) => [row.idempotency_key, row]));
  const authorizationById = new Map(authorizations.map((row) => [row.authorization_id, row]));
  const waitOf = new Map(waits.map((row) => [row.workflow_id, row.result as { missedDeadline?: boolean; captured?: unknown }]));
  const transferByKey = new Map(transfers.map((transfer) => [transfer.key, transfer]));
  const alertedSignals = new Set(tooLate.map((alert) => alert.signal_id));
  const signalsOf = new Map<string, typeof stored>();
  for (const row of stored) signalsOf.set(row.workflow_id, [...(signalsOf.get(row.workflow_id) ?? []), row]);
  const deliveriesOf = new Map<string, SignalMessage[]>();
  for (const report of signals) deliveriesOf.set(report.op, [...(deliveriesOf.get(report.op) ?? []), report]);

  // no processor effect twice: one desk row per key (its primary key), and per authorization at
  // most one capture that took money and one void, whoever asked and however often
  const capturesOf = new Map<string, number>();
  const voidsOf = new Map<string, number>();
  for (const row of desk) {
    if (row.answer === null) violations.push(`processor key ${row.idempotency_key}: no answer recorded`);
    if (row.kind === 'capture' && row.answer?.status === 'captured') capturesOf.set(row.authorization_id, (capturesOf.get(row.authorization_id) ?? 0) + 1);
    if (row.kind === 'void') voidsOf.set(row.authorization_id, (voidsOf.get(row.authorization_id) ?? 0) + 1);
  }
  for (const [authorization, n] of capturesOf) if (n > 1) violations.push(`authorization ${authorization} captured ${n} times`);
  for (const [authorization, n] of voidsOf) if (n > 1) violations.push(`authorization ${authorization} voided ${n} times`);
  for (const row of authorizations) if (BigInt(row.captured) > BigInt(row.amount)) violations.push(`authorization ${row.authorization_id}: captured ${row.captured} of ${row.amount}`);

  const counts = { completed: 0, voided: 0, declined: 0, missedDeadline: 0, lateSignalled: 0, neverSignalled: 0, capturedButVoided: 0 };
  const signalCounts = { delivered: 0, recorded: 0, late: 0, duplicate: 0 };
  let started = 0;
  const ownKeys = new Set<string>();
  for (const op of plan.ops.values()) {
    if (op.kind !== 'card_payment' || outcomes.get(op.id)?.outcome !== 'committed') continue;
    started++;
    const state = cards.get(op.key);
    const where = `card payment ${op.key} (${op.fate})`;
    if (state === undefined) {
      violations.push(`${where} was started (committed) but has no workflow`);
      continue;
    }
    for (const step of ['authorize', 'capture', 'void']) ownKeys.add(`${state.id}:${step}`);
    const authorized = deskByKey.get(`${state.id}:authorize`);
    const authorizationId = authorized?.authorization_id;
    const captured = deskByKey.get(`${state.id}:capture`);
    const voided = deskByKey.get(`${state.id}:void`);
    const hold = transferByKey.get(`${op.key}:hold`);
    const post = transferByKey.get(`${op.key}:post`);
    const settle = transferByKey.get(`${op.key}:settle`);
    const releases = [`${op.key}:void`, `${op.key}:compensate`].map((key) => transferByKey.get(key)).filter((transfer) => transfer !== undefined);
    const own = signalsOf.get(state.id) ?? [];
    const deliveries = deliveriesOf.get(op.id) ?? [];
    const processorCaptured = captured?.answer?.status === 'captured';
    const alerted = own.filter((signal) => signal.consumed_step === null && alertedSignals.has(signal.id));

    // every signal kept once per key, and each either taken by the wait or late and alerted
    const perKey = new Map<string, number>();
    for (const signal of own) perKey.set(signal.signal_key, (perKey.get(signal.signal_key) ?? 0) + 1);
    for (const [key, n] of perKey) if (n > 1) violations.push(`${where}: signal ${key} kept ${n} times`);
    for (const signal of own) {
      if (signal.consumed_step !== null && signal.consumed_step !== 'await_capture') violations.push(`${where}: signal ${signal.signal_key} taken by ${signal.consumed_step}`);
      if (signal.consumed_step === null && !alertedSignals.has(signal.id)) violations.push(`${where}: signal ${signal.signal_key} neither delivered nor alerted as late`);
    }
    for (const delivery of deliveries) {
      if (delivery.outcome in signalCounts) signalCounts[delivery.outcome as keyof typeof signalCounts]++;
      if (delivery.outcome === 'refused' || delivery.outcome === 'gave_up' || delivery.outcome === 'no_capture') {
        violations.push(`${where}: webhook delivery ${delivery.delivery} ${delivery.outcome}${delivery.code ? ` (${delivery.code})` : ''}`);
      }
      // a redelivery is one signal; a first delivery is a duplicate only when a lost answer made it go twice
      if (delivery.delivery === 2 && delivery.outcome !== 'duplicate') violations.push(`${where}: the redelivered webhook was answered ${delivery.outcome}, not duplicate`);
      if (delivery.delivery === 1 && delivery.outcome === 'duplicate' && delivery.attempts === 1) violations.push(`${where}: the first webhook was answered duplicate`);
      if (delivery.outcome === 'late' && (state.status === 'completed' || alerted.length === 0)) violations.push(`${where}: a signal answered late, yet the payment is ${state.status}${alerted.length === 0 ? ' and no signal_too_late alert' : ''}`);
      if ((delivery.outcome === 'delivered' || delivery.outcome === 'recorded') && state.status !== 'completed') violations.push(`${where}: a signal answered ${delivery.outcome}, yet the payment is ${state.status}`);
    }
    const expectedDeliveries = op.fate === 'twice' ? 2 : op.fate === 'never' || op.fate === 'declined' ? 0 : 1;
    if (deliveries.length !== expectedDeliveries) violations.push(`${where}: ${deliveries.length} webhook deliveries reported, expected ${expectedDeliveries}`);
    if (own.length !== (expectedDeliveries > 0 ? 1 : 0)) violations.push(`${where}: ${own.length} signals kept, expected ${expectedDeliveries > 0 ? 1 : 0}`);

    if (authorized === undefined || authorized.answer === null) {
      violations.push(`${where}: the processor never authorized it`);
      continue;
    }
    const declined = authorized.answer.status === 'declined';
    if (declined !== (op.fate === 'declined')) violations.push(`${where}: the processor answered ${authorized.answer.status}`);
    if (state.status === 'completed') {
      counts.completed++;
      // captured once, posted once, settled once; nothing voided, here or at the processor
      if (!processorCaptured) violations.push(`${where}: completed, but the processor did not capture it`);
      if (voided !== undefined) violations.push(`${where}: completed, but the processor voided it`);
      if (hold === undefined || hold.kind !== 'hold') violations.push(`${where}: completed without its hold`);
      if (post === undefined || post.kind !== 'post_hold' || post.hold_id !== hold?.id) violations.push(`${where}: completed, but its hold was not posted by ${op.key}:post`);
      if (settle === undefined || settle.kind !== 'posted') violations.push(`${where}: completed without its settlement`);
      if (releases.length > 0) violations.push(`${where}: completed, yet its hold was voided`);
      if (!own.some((signal) => signal.consumed_step === 'await_capture')) violations.push(`${where}: completed without taking a 'captured' signal`);
    } else if (state.status === 'compensated') {
      counts.voided++;
      if (post !== undefined || settle !== undefined) violations.push(`${where}: voided, yet ${post ? 'posted' : 'settled'}`);
      if (own.some((signal) => signal.consumed_step !== null)) violations.push(`${where}: voided, yet it took a signal`);
      if (declined) {
        // the processor said no: nothing held, captured or voided
        counts.declined++;
        if (hold !== undefined || captured !== undefined || voided !== undefined) violations.push(`${where}: declined, yet ${hold ? 'held' : captured ? 'capture asked' : 'void asked'}`);
        continue;
      }
      if (hold === undefined) violations.push(`${where}: voided without ever holding its amount`);
      else if (releases.length !== 1 || releases[0]!.hold_id !== hold.id) violations.push(`${where}: voided, but its hold was released ${releases.length} times`);
      if (voided?.answer?.status !== 'voided') violations.push(`${where}: voided here, but not at the processor`);
      if (waitOf.get(state.id)?.missedDeadline === true) counts.missedDeadline++;
      if (processorCaptured) {
        // the processor has the money and we voided: expected only when its webhook came too
        // late (then an alert says so) or never; anything else is money lost between the two
        counts.capturedButVoided++;
        if (waitOf.get(state.id)?.missedDeadline !== true) violations.push(`${where}: captured at the processor and voided here without a missed deadline`);
        if (alerted.length > 0) counts.lateSignalled++;
        else if (own.length === 0) counts.neverSignalled++;
        else violations.push(`${where}: captured at the processor, voided here, and its signal neither late nor alerted`);
      }
    } else {
      violations.push(`${where}: workflow is ${state.status}`);
    }
    if (authorizationId !== undefined && processorCaptured && authorizationById.get(authorizationId)?.captured !== op.amount.toString()) {
      violations.push(`${where}: the processor captured ${authorizationById.get(authorizationId)?.captured ?? 'nothing'} of ${op.amount}`);
    }
  }
  if (cards.size !== started) violations.push(`${cards.size} card workflows for ${started} card payments the clients saw started`);
  for (const row of desk) if (!ownKeys.has(row.idempotency_key)) violations.push(`processor key ${row.idempotency_key} belongs to no card payment's step`);

  const asked = desk.reduce((sum, row) => sum + row.asks, 0);
  const replayedKeys = desk.filter((row) => row.asks > 1).length;
  const lookedUp = desk.filter((row) => row.lookups > 0).length;
  const kinds = (kind: string) => desk.filter((row) => row.kind === kind).length;
  const fates = (fate: CardPaymentOp['fate']) => [...plan.ops.values()].filter((op) => op.kind === 'card_payment' && op.fate === fate).length;
  const figure =
    `${cards.size} card payments (fates: ${fates('on_time')} on time, ${fates('twice')} twice, ${fates('late')} late, ${fates('never')} never, ${fates('declined')} declined): ` +
    `${counts.completed} completed, each captured, posted and settled once; ${counts.voided} voided (${counts.declined} declined, ${counts.missedDeadline} past the capture deadline); ` +
    `${counts.capturedButVoided} captured by the processor but voided here, expected: ${counts.lateSignalled} signalled late, each with its signal_too_late alert, ${counts.neverSignalled} never signalled; ` +
    `processor: ${kinds('authorize')} authorizations, ${kinds('capture')} captures, ${kinds('void')} voids, one effect per key for ${asked} asks (keys asked again: ${replayedKeys}; looked up after a lost answer: ${lookedUp}); ` +
    `webhooks: ${signalCounts.delivered} delivered, ${signalCounts.recorded} recorded before the wait, ${signalCounts.late} late, ${signalCounts.duplicate} duplicates kept once`;
  return { violations, figure };
}
