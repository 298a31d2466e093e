import type { Dinero } from 'dinero.js/bigint';

export type TransferKind = 'posted' | 'hold' | 'post_hold' | 'void_hold' | 'reversal';

export interface Account {
  key: string;
  currency: string;
  /** false: the database refuses any write that would take `available` below zero. */
  allowNegative: boolean;
  /** Money only passes through: reconciliation warns while it is not back at zero. */
  clearing: boolean;
  metadata: Record<string, unknown>;
  /** Incremented by every balance change: an optimistic-concurrency token for the host. */
  version: bigint;
  createdAt: Date;
}

export interface Balance {
  account: string;
  currency: string;
  /** Sum of posted entries. */
  posted: Dinero<bigint>;
  /** Reserved by unresolved holds, into this account. */
  pendingIncoming: Dinero<bigint>;
  /** Reserved by unresolved holds, out of this account. */
  pendingOutgoing: Dinero<bigint>;
  /** posted − pendingOutgoing: what the account can still send. */
  available: Dinero<bigint>;
  /** The effective date the balance is computed at; null for the current cached balance. */
  asOf: Date | null;
}

export interface TransferLeg {
  from: string;
  to: string;
  amount: Dinero<bigint>;
}

export interface Transfer {
  id: string;
  key: string;
  kind: TransferKind;
  legs: TransferLeg[];
  metadata: Record<string, unknown>;
  effectiveAt: Date;
  createdAt: Date;
  /** For post_hold / void_hold: the hold it resolved. */
  holdId: string | null;
  /** For a reversal: the transfer it undid. */
  reversesId: string | null;
  /** For a hold: when expireHolds voids it if still pending. */
  expiresAt: Date | null;
  /** For a void_hold: 'voided' by a call, or 'expired'. */
  voidReason: 'voided' | 'expired' | null;
  /** True when this call found the transfer already written under its key and changed nothing (and added none of its jobs). */
  replayed: boolean;
}
