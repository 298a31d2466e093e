// The public API: everything a host service may import, and nothing else.
export { migrate, type MigrateOptions, type MigrateResult } from './db/migrate.js';
export type { DatabaseHandle } from './db/handle.js';

export { defineCurrency } from './ledger/currencies.js';
export { createAccount, getAccount } from './ledger/accounts.js';
export { postTransfer, reverseTransfer, getTransfer, type TransferInput, type TransferJob } from './ledger/transfers.js';
export { postTransfers } from './ledger/batch.js';
export { createHold, postHold, voidHold, expireHolds } from './ledger/holds.js';
export { getBalance } from './ledger/balances.js';
export type { Account, Balance, Transfer, TransferLeg, TransferKind } from './ledger/types.js';

export { minorUnits, type MoneyInput, type CurrencyDefinition } from './money/money.js';

export { defineTask, type TaskDefinition } from './jobs/tasks.js';
export { enqueue, enqueueMany, type EnqueueOptions, type EnqueuedJob } from './outbox/enqueue.js';
export { fanOut, type FanOutOptions, type FanOutResult } from './outbox/fan-out.js';
export { summariseBatches, type BatchSummary, type SummariseBatchesOptions } from './batches/summarise.js';

export { startWorker, type WorkerOptions, type RunningWorker } from './worker/runner.js';
export { resumeWorkflow, cancelWorkflow, retryJob, retryTaskJobs, type ResumedWorkflow } from './operations/recovery.js';
export {
  listFailedJobs,
  workflowTimeline,
  stuckWorkflows,
  moneyInLimbo,
  type FailedJobRow,
  type TimelineRow,
  type StuckRow,
  type LimboRow,
} from './operations/inspection.js';
export type { HostTask, TaskContext } from './worker/task-handlers.js';

export {
  defineWorkflow,
  type Workflow,
  type WorkflowDefinitionInput,
  type WorkflowStep,
  type DatabaseStep,
  type ExternalStep,
  type SignalStep,
  type SleepStep,
  type StepResult,
  type StepDatabase,
  type WorkflowContext,
  type ExternalCallContext,
  type ReceivedSignal,
  type WorkflowJob,
} from './workflows/define.js';
export { startWorkflow, getWorkflow, signalWorkflow, type StartedWorkflow, type WorkflowState, type SignalOutcome } from './workflows/start.js';

export { reconcile, type ReconcileOptions } from './reconcile/run.js';
export type { ReconciliationReport, Finding, FindingKind, Severity } from './reconcile/types.js';
export { importStatement, type ImportStatementInput, type ImportedStatement } from './reconcile/statements.js';

export { recordAlert, type AlertToRecord } from './alerts/record.js';
export { deliverAlerts, type DeliverAlertsOptions } from './alerts/deliver.js';
export { closeInvestigation, listOpenInvestigations } from './alerts/investigations.js';
export type { Alert, AlertSeverity, AlertChannel, DeliveryOutcome, DeliveryCounts, Investigation, RecordedAlert } from './alerts/types.js';
export type { SlackMessage, SlackBlock } from './alerts/slack-message.js';

export { startExchange, getExchange, exchangeSettled, fxClearingAccount, fxClearingShards, type Exchange, type StartedExchange } from './workflows/exchange/exchange.js';
export {
  type FxRateProvider,
  type FxQuote,
  type ComplianceProvider,
  type ComplianceDecision,
  type ExchangeProviders,
} from './workflows/exchange/providers.js';
export type { CardProcessor, CardAuthorization, CardCapture, CardVoid } from './workflows/card-processor.js';

export { createConsoleHandler, type ConsoleOptions, type ConsoleHandler, type MetricsSource } from './console/handler.js';
export { startConsole, type StartConsoleOptions, type RunningConsole } from './console/server.js';
export { createDatabaseMetrics, type WorkerMetricsOptions } from './metrics/index.js';

export { LedgerboxError, InvalidInputError, IdempotencyConflictError, isLedgerboxError, errorCodes, type ErrorCode } from './errors.js';
export { limits } from './limits.js';
