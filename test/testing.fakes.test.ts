// `ledgerbox/testing`: the test doubles live behind their own subpath, not the main entry, and
// the card processor fake behaves as a good idempotent processor under a seeded fault plan.
// The subpath is imported by the package's own name, so it resolves through package.json's
// `exports` to dist/ as a host service's import would: `npm run build` first (`npm test` does).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as sourceEntry from '../src/index.ts';
import { FakeCardProcessor, FakeFxRateProvider, type CardCall, type FaultPlan } from '../src/testing/index.ts';
import type { CardAuthorization, CardCapture, CardVoid } from '../src/index.ts';

const hung = Symbol('hung');
/** The call's answer, its error, or `hung` if it has not settled once the loop turns over. */
async function settle<T>(call: Promise<T>, wait_ms = 30): Promise<T | Error | typeof hung> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof hung>((resolve) => (timer = setTimeout(resolve, wait_ms, hung)));
  try {
    return await Promise.race([call.catch((error: Error) => error), late]);
  } finally {
    clearTimeout(timer);
  }
}

test('the fakes come from ledgerbox/testing, through package.json exports, and no longer from the main entry', async () => {
  const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, { types: string; default: string }> };
  const entry = manifest.exports['./testing'];
  assert.deepEqual(entry, { types: './dist/testing/index.d.ts', default: './dist/testing/index.js' });
  for (const file of [entry.types, entry.default]) assert.ok(existsSync(file), `${file} is missing: run npm run build`);

  const testing = await import('ledgerbox/testing');
  assert.deepEqual(Object.keys(testing).sort(), ['FakeCardProcessor', 'FakeComplianceProvider', 'FakeFxRateProvider']);
  const fx = new testing.FakeFxRateProvider({ rates: { 'USD/EUR': { amount: 9213n, scale: 4 } } });
  assert.equal((await fx.quote({ from: 'USD', to: 'EUR', idempotencyKey: 'k' })).rate.amount, 9213n);
  const card = new testing.FakeCardProcessor();
  assert.equal((await card.authorize({ card: '4242424242424242', amount: 1_000n, currency: 'USD', idempotencyKey: 'a' })).status, 'authorized');

  const main = await import('ledgerbox');
  for (const entryPoint of [main, sourceEntry] as Record<string, unknown>[]) {
    for (const name of ['FakeFxRateProvider', 'FakeComplianceProvider', 'FakeCardProcessor', 'FaultInjector']) assert.equal(name in entryPoint, false, `${name} is exported from the main entry`);
  }
  // the main entry keeps what a real service needs: the errors the fakes throw, for instance
  assert.equal(typeof main.LedgerboxError, 'function');
});

test('FakeCardProcessor: the same key twice gives the same answer and one effect, for every kind of call', async () => {
  const card = new FakeCardProcessor();
  const request = { card: '4242424242424242', amount: 2_500n, currency: 'USD', idempotencyKey: 'order:1:authorize' };
  const first = await card.authorize(request);
  assert.deepEqual(await card.authorize(request), first);
  assert.deepEqual(first, { authorizationId: 'auth_1', status: 'authorized' });

  const capture = { authorizationId: first.authorizationId, amount: 2_500n, idempotencyKey: 'order:1:capture' };
  // concurrent duplicates wait for the one piece of work rather than doing it again
  const [a, b] = await Promise.all([card.capture(capture), card.capture(capture)]);
  assert.deepEqual(a, b);
  assert.equal((await card.capture(capture)).captureId, a.captureId);
  const voided = await card.void({ authorizationId: first.authorizationId, idempotencyKey: 'order:1:void' });
  assert.deepEqual(await card.void({ authorizationId: first.authorizationId, idempotencyKey: 'order:1:void' }), voided);

  assert.deepEqual(
    (['authorize', 'capture', 'void'] as const).map((call) => [call, card.calls(call), card.effects(call)]),
    [
      ['authorize', 2, 1],
      ['capture', 3, 1],
      ['void', 2, 1],
    ],
  );
  assert.deepEqual(card.captured(), [{ authorizationId: 'auth_1', captureId: a.captureId, amount: 2_500n }]);
  assert.deepEqual(card.doubleCaptured(), []);
  assert.deepEqual([...card.executions.values()], [1, 1, 1]);
  // a void after the capture releases nothing captured: both stand in the read-outs
  assert.deepEqual(card.voided(), [{ authorizationId: 'auth_1', voidId: voided.voidId }]);
  assert.deepEqual(card.authorizations(), [{ authorizationId: 'auth_1', card: '4242424242424242', amount: 2_500n, currency: 'USD', status: 'voided', captured: 2_500n }]);
  assert.equal(await card.lookup('order:1:capture'), a);

  // a key is one request: reused for another amount, or another kind of call, it is refused
  await assert.rejects(card.authorize({ ...request, amount: 2_501n }), { name: 'IdempotencyConflictError', code: 'exists_with_different_request', field: 'amount' });
  await assert.rejects(card.void({ authorizationId: first.authorizationId, idempotencyKey: 'order:1:capture' }), { code: 'exists_with_different_request', field: 'call' });
  assert.equal(card.effects('authorize'), 1);
});

test('FakeCardProcessor: a capture that timed out took effect, and lookup by its key finds it', async () => {
  const card = new FakeCardProcessor({ faultsFor: { capture: { script: ['timeout'] } } });
  const { authorizationId } = await card.authorize({ card: '4242424242424242', amount: 900n, currency: 'EUR', idempotencyKey: 'p:authorize' });
  const capture = { authorizationId, amount: 900n, idempotencyKey: 'p:capture' };
  await assert.rejects(card.capture(capture), { code: 'provider_timeout', retryable: true });
  const found = await card.lookup('p:capture');
  assert.equal(found?.status, 'captured');
  assert.equal(card.captured().length, 1);
  // the retry under the same key learns the same answer and captures nothing more
  assert.deepEqual(await card.capture(capture), found);
  assert.equal(card.effects('capture'), 1);
  assert.equal(card.calls('lookup'), 1);
});

test('FakeCardProcessor: a hung call never answers and does nothing; a failed one refuses before any work', async () => {
  const card = new FakeCardProcessor({ faults: { script: ['hang', 'fail'] } });
  const request = { card: '4242424242424242', amount: 100n, currency: 'USD', idempotencyKey: 'h:authorize' };
  assert.equal(await settle(card.authorize(request)), hung);
  assert.equal(await card.lookup(request.idempotencyKey), undefined, 'a hung request was lost on the way in');
  await assert.rejects(card.authorize(request), { code: 'provider_failed', retryable: true });
  assert.equal(card.effects('authorize'), 0);
  assert.equal((await card.authorize(request)).status, 'authorized', 'the third try under the same key is served');
  assert.equal(card.calls('authorize'), 3);
  assert.equal(card.effects('authorize'), 1);

  // the same plan kinds on the exchange fakes, from the same machinery
  const fx = new FakeFxRateProvider({ rates: { 'USD/EUR': { amount: 9213n, scale: 4 } }, faults: { script: ['hang'] } });
  assert.equal(await settle(fx.quote({ from: 'USD', to: 'EUR', idempotencyKey: 'q' })), hung);
  assert.equal(await fx.lookup('q'), undefined);
});

test('FakeCardProcessor: declines by card number, and refuses captures the authorization does not allow', async () => {
  const card = new FakeCardProcessor({ declinedCards: ['4000000000000002'] });
  const declined = await card.authorize({ card: '4000000000000002', amount: 500n, currency: 'USD', idempotencyKey: 'd:authorize' });
  assert.deepEqual(declined, { authorizationId: 'auth_1', status: 'declined', reason: 'card on the decline list' });
  assert.deepEqual(await card.lookup('d:authorize'), declined, 'a decline is an answer, recorded under its key');
  const capture = (authorizationId: string, amount: bigint, idempotencyKey: string) => card.capture({ authorizationId, amount, idempotencyKey });
  assert.deepEqual(await capture(declined.authorizationId, 500n, 'd:capture'), { captureId: 'cap_2', status: 'failed', reason: 'authorization declined' });

  const { authorizationId } = await card.authorize({ card: '4242424242424242', amount: 500n, currency: 'USD', idempotencyKey: 'ok:authorize' });
  assert.equal((await capture(authorizationId, 501n, 'ok:capture:too-much')).reason, 'amount above the authorized 500');
  assert.equal((await capture('auth_404', 1n, 'nobody:capture')).reason, 'unknown authorization');
  await assert.rejects(card.void({ authorizationId: 'auth_404', idempotencyKey: 'nobody:void' }), { code: 'provider_failed', retryable: false });
  await card.void({ authorizationId, idempotencyKey: 'ok:void' });
  assert.equal((await capture(authorizationId, 500n, 'ok:capture')).reason, 'authorization voided');
  assert.deepEqual(card.captured(), []);

  // amounts are bigint minor units: a float, zero or a number is refused before the processor sees it
  for (const amount of [12.5, 0n, -1n, 100] as unknown as bigint[]) {
    await assert.rejects(card.authorize({ card: '4242424242424242', amount, currency: 'USD', idempotencyKey: `bad:${amount}` }), { code: 'invalid_input' });
  }
  await assert.rejects(card.authorize({ card: '', amount: 1n, currency: 'USD', idempotencyKey: 'bad:card' }), { code: 'invalid_input' });
  assert.equal(card.effects('authorize'), 2);
});

test('FakeCardProcessor: a second capture under a new key is a double charge, and doubleCaptured shows it', async () => {
  const card = new FakeCardProcessor();
  const { authorizationId } = await card.authorize({ card: '4242424242424242', amount: 700n, currency: 'GBP', idempotencyKey: 'x:authorize' });
  await card.capture({ authorizationId, amount: 700n, idempotencyKey: 'x:capture:1' });
  await card.capture({ authorizationId, amount: 700n, idempotencyKey: 'x:capture:2' }); // the bug a workflow must not have
  assert.deepEqual(card.doubleCaptured(), [authorizationId]);
  assert.equal(card.authorizations()[0]?.captured, 1_400n);
});

/**
 * A chaos run: payments authorized then captured (or voided) through a seeded fault plan by a
 * client that resolves every unknown outcome by lookup and retries under the same key. What it
 * saw, call by call, and what the processor did are returned so two runs can be compared.
 */
async function chaosRun(seed: number) {
  const faults: FaultPlan = { failRate: 0.15, timeoutRate: 0.15, slowRate: 0.1, hangRate: 0.1, slow_ms: 1, seed };
  const card = new FakeCardProcessor({ faults, declinedCards: ['4000000000000002'] });
  const seen: string[] = [];
  async function reliably<T extends CardAuthorization | CardCapture | CardVoid>(call: CardCall, key: string, attempt: () => Promise<T>): Promise<T> {
    for (let tries = 1; tries <= 50; tries++) {
      const outcome = await settle(attempt());
      if (outcome !== hung && !(outcome instanceof Error)) {
        seen.push(`${key} ${call}: ${outcome.status}`);
        return outcome;
      }
      seen.push(`${key} ${call}: ${outcome === hung ? 'hung' : (outcome as Error & { code: string }).code}`);
      const known = (await card.lookup(key)) as T | undefined;
      if (known !== undefined) {
        seen.push(`${key} ${call}: found ${known.status}`);
        return known;
      }
    }
    throw new Error(`${key} never answered`);
  }
  for (let i = 0; i < 60; i++) {
    const cardNumber = i % 7 === 3 ? '4000000000000002' : '4242424242424242';
    const amount = BigInt(100 + i);
    const authorization = await reliably('authorize', `pay:${i}:authorize`, () => card.authorize({ card: cardNumber, amount, currency: 'USD', idempotencyKey: `pay:${i}:authorize` }));
    if (authorization.status === 'declined') continue;
    const { authorizationId } = authorization;
    if (i % 5 === 0) await reliably('void', `pay:${i}:void`, () => card.void({ authorizationId, idempotencyKey: `pay:${i}:void` }));
    else await reliably('capture', `pay:${i}:capture`, () => card.capture({ authorizationId, amount, idempotencyKey: `pay:${i}:capture` }));
  }
  return { seen, card };
}

test('FakeCardProcessor: a seeded chaos run replays exactly, and a careful client never charges twice', async () => {
  const first = await chaosRun(7);
  const again = await chaosRun(7);
  assert.deepEqual(again.seen, first.seen);
  assert.deepEqual(again.card.captured(), first.card.captured());
  assert.deepEqual(again.card.authorizations(), first.card.authorizations());
  assert.notDeepEqual((await chaosRun(8)).seen, first.seen, 'another seed, other faults');

  const { seen, card } = first;
  for (const fault of ['provider_failed', 'provider_timeout', 'hung']) assert.ok(seen.some((line) => line.endsWith(`: ${fault}`)), `the run saw no ${fault}`);
  assert.ok(seen.some((line) => line.includes(': found ')), 'some timed-out call was resolved by lookup');
  const declined = [...Array(60).keys()].filter((i) => i % 7 === 3).length;
  const voided = [...Array(60).keys()].filter((i) => i % 7 !== 3 && i % 5 === 0).length;
  assert.equal(card.effects('authorize'), 60, 'one authorization per payment, whatever the retries');
  assert.equal(card.effects('capture'), 60 - declined - voided);
  assert.equal(card.captured().length, 60 - declined - voided);
  assert.equal(card.voided().length, voided);
  assert.deepEqual(card.doubleCaptured(), []);
  assert.ok([...card.executions.values()].every((count) => count === 1));
  const captured = card.captured().reduce((sum, { amount }) => sum + amount, 0n);
  const authorizedAndCaptured = card
    .authorizations()
    .filter((authorization) => authorization.status === 'authorized')
    .reduce((sum, { amount }) => sum + amount, 0n);
  assert.equal(captured, authorizedAndCaptured, 'every live authorization captured in full, once');
});
