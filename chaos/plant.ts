// `--plant`: a violation planted after the drain and before the checks, to prove the verifier
// catches what it claims to. None can happen through ledgerbox's API on its own.
import type pg from 'pg';
import { postTransfer } from '../src/index.ts';
import { DatabaseCardProcessor } from './cards.ts';
import type { plantable } from './options.ts';
import { customerAccount, type Plan } from './plan.ts';
import type { OutcomeMessage } from './protocol.ts';

export async function plantViolation(pool: pg.Pool, plan: Plan, outcomes: ReadonlyMap<string, OutcomeMessage>, violation: (typeof plantable)[number]): Promise<string> {
  if (violation === 'drift') {
    // a superuser bypassing the triggers (session_replication_role = replica) rewrites a cached balance
    const account = customerAccount(plan.customers[0]!, 'USD');
    const client = await pool.connect();
    try {
      await client.query('set session_replication_role = replica');
      await client.query('update ledgerbox.accounts set posted_balance = posted_balance + 1 where key = $1', [account]);
    } finally {
      await client.query('reset session_replication_role').catch(() => undefined);
      client.release();
    }
    return `drift: as a superuser with session_replication_role = replica, added 0.01 USD to the cached balance of ${account}`;
  }
  if (violation === 'double-capture') {
    // a host bug: a capture retried under a new idempotency key, so the processor charges the card twice
    const { rows } = await pool.query<{ key: string; authorization_id: string; amount: string; workflow_id: string }>(
      `select w.key, d.authorization_id, p.amount::text, w.id::text as workflow_id
       from ledgerbox.workflows w
       join card_payments p on p.key = w.key
       join chaos_card_processor d on d.idempotency_key = w.id || ':capture'
       where w.kind = 'card_capture' and w.status = 'completed'
       order by w.created_at limit 1`,
    );
    const payment = rows[0];
    if (payment === undefined) throw new Error('no completed card payment to capture twice');
    const processor = new DatabaseCardProcessor(pool, { declinedCards: plan.declinedCards });
    await processor.capture({ authorizationId: payment.authorization_id, amount: BigInt(payment.amount), idempotencyKey: `${payment.workflow_id}:capture:retried-with-a-new-key` });
    return `double-capture: captured card payment ${payment.key} (authorization ${payment.authorization_id}) a second time under a new idempotency key`;
  }
  // a host bug: a request retried under a new idempotency key, so it is posted a second time
  const op = [...plan.ops.values()].find((candidate) => candidate.kind === 'transfer' && outcomes.get(candidate.id)?.outcome === 'committed');
  if (op === undefined || op.kind !== 'transfer') throw new Error('no committed transfer to post twice');
  await postTransfer(pool, {
    key: `${op.key}:retried-with-a-new-key`,
    legs: op.legs.map((leg) => ({ from: leg.from, to: leg.to, amount: { amount: leg.amount, currency: leg.currency } })),
    metadata: { op: op.id },
  });
  return `double-post: posted request ${op.id} a second time under a new idempotency key`;
}
