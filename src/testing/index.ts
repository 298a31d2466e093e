// `ledgerbox/testing`: in-memory fakes of the providers ledgerbox's workflows talk to, for a host
// service's tests and demos. Not for production: nothing here talks to a real provider. The
// provider interfaces they implement come from the main entry, 'ledgerbox'.
export { FakeFxRateProvider, FakeComplianceProvider } from './fake-exchange-providers.js';
export { FakeCardProcessor, type FakeCardProcessorOptions, type FakeAuthorization, type CardCall } from './fake-card-processor.js';
export type { FaultPlan, Fault } from './faults.js';
