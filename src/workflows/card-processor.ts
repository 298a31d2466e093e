/**
 * The card processor a card payment talks to: authorize an amount on a card, then capture it
 * (the money moves) or void it (the authorization is released). Every call takes an idempotency
 * key: asked twice with the same key the processor answers the same without a second effect, and
 * `lookup` tells what, if anything, was answered under a key, for an outcome a timeout left
 * unknown. Amounts are bigint minor units of the authorization's currency (1234n USD is $12.34).
 * An in-memory fake, for tests, is `FakeCardProcessor` in `ledgerbox/testing`.
 */
export interface CardAuthorization {
  authorizationId: string;
  status: 'authorized' | 'declined';
  /** Why the card was declined, in the processor's words. */
  reason?: string;
}

export interface CardCapture {
  captureId: string;
  status: 'captured' | 'failed';
  /** Why the capture failed (unknown, declined or voided authorization, amount above it). */
  reason?: string;
}

export interface CardVoid {
  voidId: string;
  status: 'voided';
}

export interface CardProcessor {
  authorize(request: { card: string; amount: bigint; currency: string; idempotencyKey: string }): Promise<CardAuthorization>;
  capture(request: { authorizationId: string; amount: bigint; idempotencyKey: string }): Promise<CardCapture>;
  void(request: { authorizationId: string; idempotencyKey: string }): Promise<CardVoid>;
  /** The answer recorded under a key, of whichever call made it, or undefined if none was. */
  lookup(idempotencyKey: string): Promise<CardAuthorization | CardCapture | CardVoid | undefined>;
}
