// What the client and worker processes tell the run, one JSON object per line on stdout.
// Lines are checked with superstruct like every other input; anything else on stdout is an error.
import { array, boolean, enums, integer, literal, number, object, optional, string, union, type Infer } from 'superstruct';
import { validate } from '../src/contracts.ts';

export const providerFaultKinds = ['provider_fail', 'provider_timeout', 'provider_slow'] as const;
export const providerNames = ['fx', 'compliance', 'card'] as const;

const Outcome = object({
  type: literal('outcome'),
  op: string(),
  /** committed: the request's transaction committed (first time or replayed); refused: a business error, nothing written; skipped: what it followed was refused. */
  outcome: enums(['committed', 'refused', 'skipped', 'unknown']),
  code: optional(string()),
  attempts: integer(),
  /** Committed on a retry: the host row and the ledger each found the earlier commit. */
  hostReplayed: optional(boolean()),
  ledgerReplayed: optional(boolean()),
  /** Ids the ledger returned: the transfer(s), the hold, the exchange. */
  ids: array(string()),
});

const ClientReady = object({ type: literal('client_ready'), client: integer() });

const ClientDone = object({ type: literal('client_done'), client: integer(), connectionErrors: integer() });

/** The run to each client, on its stdin, once every process is up: when the workload starts and when to give up (epoch ms). */
export const Go = object({ start_ms: integer(), deadline_ms: integer() });

const WorkerReady = object({ type: literal('worker_ready'), worker: integer(), incarnation: integer(), workerIds: array(string()) });

const ProviderFault = object({
  type: literal('fault'),
  kind: enums(providerFaultKinds),
  provider: enums(providerNames),
  delay_ms: optional(number()),
});

/**
 * One delivery of a card payment's 'captured' webhook (chaos/client.ts), as signalWorkflow
 * answered it: delivered, recorded, late or duplicate; refused (an error not worth retrying,
 * with its code); no_capture (the payment ended before the processor captured: nothing to
 * send); gave_up (no answer by the run's deadline).
 */
const Signal = object({
  type: literal('signal'),
  op: string(),
  /** 1 for the webhook, 2 for its redelivery. */
  delivery: integer(),
  outcome: enums(['delivered', 'recorded', 'late', 'duplicate', 'refused', 'no_capture', 'gave_up']),
  /** The processor's event id, sent as the signal key. */
  signalKey: optional(string()),
  code: optional(string()),
  attempts: integer(),
});

export const Message = union([Outcome, ClientReady, ClientDone, WorkerReady, ProviderFault, Signal]);
export type Message = Infer<typeof Message>;
export type OutcomeMessage = Infer<typeof Outcome>;
export type SignalMessage = Infer<typeof Signal>;

export function send(message: Message): void {
  // stdout to a pipe is written synchronously on Linux: a line sent is a line received, even if
  // the process is killed with SIGKILL right after
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

export function readMessage(line: string): Message {
  return validate(Message, JSON.parse(line), 'message');
}
