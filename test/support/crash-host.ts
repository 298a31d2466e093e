// The host side of test/workflows.crash.test.ts, shared by the test and its worker processes
// (test/support/host-workflow-worker.ts): a card payment workflow of the host's own, a card
// processor whose side of the story lives in the database (so it survives a SIGKILL of the
// worker that called it), two host tasks (one transactional, one at least once), and the named
// points where a worker may be told to stop dead.
import type pg from 'pg';
import { dinero, USD } from 'dinero.js/bigint';
import { object, string } from 'superstruct';
import { createHold, defineTask, defineWorkflow, getTransfer, postHold, postTransfer, voidHold, type DatabaseHandle, type StepDatabase } from '../../src/index.ts';

/**
 * Where a worker can be stopped in a step, in the order a step passes them:
 * - before_call: an external step, before the provider is asked;
 * - after_call: the provider acted and answered; its answer not yet recorded by ledgerbox;
 * - before_commit: the step's ledger writes are made (and an external answer recorded), its
 *   transaction not yet committed;
 * - after_commit: the step's transaction committed; graphile-worker has not completed the job.
 */
export const stepCrashPoints = [
  'authorize:before_call',
  'authorize:after_call',
  'authorize:before_commit',
  'authorize:after_commit',
  'capture:before_call',
  'capture:after_call',
  'post:before_commit',
  'post:after_commit',
  'settle:before_commit',
  'settle:after_commit',
] as const;
export type StepCrashPoint = (typeof stepCrashPoints)[number];

/** A transactional task's point: its writes and its job's completion committed together. A plain task's: its effect done. */
export type TaskCrashPoint = 'task:after_commit' | 'task:after_effect';

/**
 * What a worker does at a crash point: nothing (the test process, a recovering worker) or stop
 * dead there (test/support/host-workflow-worker.ts). `client` is the transaction's connection,
 * for an after_commit point.
 */
export interface CrashHooks {
  /** At the top of every step: a worker stopping dead parks every later step of a workflow whose point it has entered. */
  enter(target: { key: string }): Promise<void>;
  at(point: StepCrashPoint | TaskCrashPoint, target: { key: string }, client?: pg.PoolClient | pg.Client): Promise<void>;
}

export const noCrashHooks: CrashHooks = { enter: async () => undefined, at: async () => undefined };

/** The host's tables: payments, the processor's records, the kill plan and the tasks' effects. */
export const crashHostTables = `
  -- what the host was asked to charge; the workflow's input names the payment only
  create table crash_payments (key text primary key, amount bigint not null check (amount > 0));

  -- the processor's side: one row per idempotency key it was asked under, with how often it
  -- was asked; it acts once per key (a repeated key gets the first answer back)
  create sequence processor_ids;
  create table processor_calls (
    idempotency_key text primary key,
    kind text not null,
    workflow_id uuid not null,
    calls integer not null,
    answer jsonb not null
  );
  -- the money the processor moved: a capture under a second key would capture again
  create table processor_authorizations (
    authorization_id text primary key,
    workflow_id uuid not null unique,
    amount bigint not null,
    captured bigint not null default 0
  );

  -- where a worker that runs with CRASH_AT_PLANNED_POINTS stops dead: target is a workflow's key
  -- or a task's effect; armed when the point is entered, reached when the worker hangs there
  create table crash_plan (
    target text primary key,
    point text not null,
    armed_at timestamptz,
    reached_at timestamptz,
    pid integer
  );

  -- what the host tasks did: runs counts how often each effect was applied
  create table task_effects (effect text primary key, runs integer not null);
`;

export const payerAccount = (payment: string) => `payer:${payment}`;
export const merchantPending = (payment: string) => `merchant:${payment}:pending`;
export const merchantAvailable = (payment: string) => `merchant:${payment}:available`;

const money = (amount: bigint) => dinero({ amount, currency: USD });

/**
 * A card processor whose records are rows: authorize and capture act once per idempotency key
 * (the provider's side of the step engine's contract), count every call, and answer a repeated
 * key with its first answer. Each call is one statement: the provider's effect and its record
 * of the key are one.
 */
export class RecordedCardProcessor {
  constructor(private readonly pool: pg.Pool) {}

  async authorize(request: { idempotencyKey: string; workflowId: string; amount: bigint }): Promise<{ authorizationId: string; status: string }> {
    const { rows } = await this.pool.query(
      `with asked as (
         insert into processor_calls as c (idempotency_key, kind, workflow_id, calls, answer)
         values ($1, 'authorize', $2::uuid, 1, jsonb_build_object('authorizationId', 'auth_' || nextval('processor_ids'), 'status', 'authorized'))
         on conflict (idempotency_key) do update set calls = c.calls + 1
         returning c.answer, c.calls = 1 as first
       ), acted as (
         insert into processor_authorizations (authorization_id, workflow_id, amount)
         select answer->>'authorizationId', $2::uuid, $3::bigint from asked where first
       )
       select answer from asked`,
      [request.idempotencyKey, request.workflowId, request.amount.toString()],
    );
    return rows[0].answer;
  }

  async capture(request: { idempotencyKey: string; workflowId: string; authorizationId: string; amount: bigint }): Promise<{ captureId: string; status: string }> {
    const { rows } = await this.pool.query(
      `with asked as (
         insert into processor_calls as c (idempotency_key, kind, workflow_id, calls, answer)
         values ($1, 'capture', $2::uuid, 1, jsonb_build_object(
           'captureId', 'cap_' || nextval('processor_ids'),
           'status', case when exists (select 1 from processor_authorizations where authorization_id = $3 and amount >= $4::bigint) then 'captured' else 'failed' end))
         on conflict (idempotency_key) do update set calls = c.calls + 1
         returning c.answer, c.calls = 1 as first
       ), acted as (
         update processor_authorizations set captured = captured + $4::bigint
         where authorization_id = $3 and exists (select 1 from asked where first and answer->>'status' = 'captured')
       )
       select answer from asked`,
      [request.idempotencyKey, request.workflowId, request.authorizationId, request.amount.toString()],
    );
    return rows[0].answer;
  }

  /** What became of a key: its answer, or undefined if the processor never saw it. */
  async lookup(idempotencyKey: string): Promise<unknown> {
    const { rows } = await this.pool.query('select answer from processor_calls where idempotency_key = $1', [idempotencyKey]);
    return rows[0]?.answer;
  }
}

async function amountOf(db: DatabaseHandle | StepDatabase, payment: string): Promise<bigint> {
  const { rows } = await (db as pg.Pool).query('select amount::text as amount from crash_payments where key = $1', [payment]);
  if (rows[0] === undefined) throw new Error(`no payment ${payment}`);
  return BigInt(rows[0].amount);
}

type Results = Readonly<Record<string, unknown>>;
const authorizationOf = (results: Results) => results.authorize as { authorizationId: string; holdId: string } | undefined;

/**
 * authorize (external, recorded in a transaction: a hold) → capture (external, decided
 * purely) → post (database: the hold is posted) → settle (database: a transfer from the
 * merchant's pending account to its available one). Every step calls `hooks.at` at its points.
 */
export function crashPaymentWorkflow(processor: RecordedCardProcessor | undefined, hooks: CrashHooks = noCrashHooks) {
  const provider = () => {
    if (processor === undefined) throw new Error('this copy of the workflow is for starting payments, not for running them');
    return processor;
  };
  return defineWorkflow({
    kind: 'crash_payment',
    version: 1,
    input: object({ payment: string() }),
    maxAttempts: 5,
    steps: {
      authorize: {
        type: 'external',
        provider: 'recorded_card',
        async call({ db, input, key, workflowId, idempotencyKey }) {
          await hooks.enter({ key });
          const amount = await amountOf(db, input.payment);
          await hooks.at('authorize:before_call', { key });
          const answer = await provider().authorize({ idempotencyKey, workflowId, amount });
          await hooks.at('authorize:after_call', { key });
          return answer;
        },
        lookup: ({ idempotencyKey }) => provider().lookup(idempotencyKey) as Promise<{ authorizationId: string; status: string } | undefined>,
        async record(db, { input, key, answer }) {
          await hooks.enter({ key });
          if (answer.status !== 'authorized') return { result: answer, fail: `not authorized: ${JSON.stringify(answer)}` };
          const hold = await createHold(db, {
            key: `${key}:hold`,
            from: payerAccount(input.payment),
            to: merchantPending(input.payment),
            amount: money(await amountOf(db, input.payment)),
            metadata: { authorization: answer.authorizationId },
          });
          await hooks.at('authorize:before_commit', { key });
          await hooks.at('authorize:after_commit', { key }, db);
          return { result: { authorizationId: answer.authorizationId, holdId: hold.id }, next: 'capture' };
        },
      },
      capture: {
        type: 'external',
        provider: 'recorded_card',
        async call({ db, input, key, workflowId, results, idempotencyKey }) {
          await hooks.enter({ key });
          const amount = await amountOf(db, input.payment);
          await hooks.at('capture:before_call', { key });
          const answer = await provider().capture({ idempotencyKey, workflowId, authorizationId: authorizationOf(results)!.authorizationId, amount });
          await hooks.at('capture:after_call', { key });
          return answer;
        },
        lookup: ({ idempotencyKey }) => provider().lookup(idempotencyKey) as Promise<{ captureId: string; status: string } | undefined>,
        decide({ answer }) {
          if (answer.status !== 'captured') return { result: answer, fail: `capture failed: ${JSON.stringify(answer)}` };
          return { result: { captureId: answer.captureId }, next: 'post' };
        },
      },
      post: {
        type: 'database',
        compensateWhenExhausted: false,
        async run(db, { key, results }) {
          await hooks.enter({ key });
          const posted = await postHold(db, { key: `${key}:post`, holdId: authorizationOf(results)!.holdId });
          await hooks.at('post:before_commit', { key });
          await hooks.at('post:after_commit', { key }, db);
          return { result: { postedBy: posted.id }, next: 'settle' };
        },
      },
      settle: {
        type: 'database',
        compensateWhenExhausted: false,
        async run(db, { key, input }) {
          await hooks.enter({ key });
          const settled = await postTransfer(db, {
            key: `${key}:settle`,
            legs: [{ from: merchantPending(input.payment), to: merchantAvailable(input.payment), amount: money(await amountOf(db, input.payment)) }],
          });
          await hooks.at('settle:before_commit', { key });
          await hooks.at('settle:after_commit', { key }, db);
          return { result: { settledBy: settled.id }, complete: true };
        },
      },
    },
    compensate: {
      type: 'database',
      async run(db, { key, results }) {
        const authorization = authorizationOf(results);
        if (authorization === undefined) return { result: { nothingHeld: true }, complete: true };
        const hold = await getTransfer(db, { id: authorization.holdId });
        const resolved = await db.query('select 1 from ledgerbox.transfers where hold_id = $1', [hold.id]);
        if (resolved.rowCount !== 0) return { result: { holdAlreadyResolved: true }, complete: true };
        const voided = await voidHold(db, { key: `${key}:compensate`, holdId: authorization.holdId });
        return { result: { voidedBy: voided.id }, complete: true };
      },
    },
  });
}

/** A host task whose effect is a row written in the job's own transaction (`transaction: true`). */
export const transactionalEffectTask = defineTask('crash.transactional_effect', object({ effect: string() }));
/** A host task whose effect is written outside any job transaction: at least once. */
export const plainEffectTask = defineTask('crash.plain_effect', object({ effect: string() }));

export const applyEffect = `insert into task_effects (effect, runs) values ($1, 1) on conflict (effect) do update set runs = task_effects.runs + 1`;
