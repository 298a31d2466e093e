// The reconciliation report email: rendered once per run (stored with it), then delivered.
export { renderReport, reportHeadline } from './render.js';
export { formatMinorUnits, formatSignedMinorUnits } from '../../money/format.js';
export {
  deliverReport,
  reportDeliveryFromEnv,
  default_report_directory,
  report_recipients_max,
  report_smtp_connection_timeout_ms,
  report_smtp_greeting_timeout_ms,
  report_smtp_socket_timeout_ms,
  type DeliverReportOptions,
  type DeliveryResult,
} from './deliver.js';
export { report_table_rows_max } from './document.js';
