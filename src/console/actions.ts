import { object, pattern, size, string, trimmed, type Infer } from 'superstruct';
import type { DatabaseHandle } from '../db/handle.js';
import { validate } from '../contracts.js';
import { cancelWorkflow, resumeWorkflow, retryJob } from '../operations/recovery.js';
import { closeInvestigation } from '../alerts/investigations.js';

/**
 * The console's operator actions: the same audited functions the CLI calls (each writes its
 * row to ledgerbox.operator_actions, or closes the investigation with who and why), so a
 * change made in the browser is as traceable as one made in psql. Each needs a reason.
 */

const Reason = size(trimmed(string()), 3, 500);
const Uuid = pattern(string(), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
const Id = pattern(string(), /^[1-9]\d{0,18}$/);

const forms = {
  'retry-job': object({ job_id: Id, reason: Reason }),
  'resume-workflow': object({ workflow_id: Uuid, reason: Reason }),
  'cancel-workflow': object({ workflow_id: Uuid, reason: Reason }),
  'close-investigation': object({ investigation_id: Id, reason: Reason }),
} as const;

export type ActionName = keyof typeof forms;

export function isActionName(name: string): name is ActionName {
  return Object.hasOwn(forms, name);
}

/** Runs one action from its form's fields (already known to come from the console itself); returns what to tell the operator. */
export async function runAction(db: DatabaseHandle, name: ActionName, fields: Record<string, string>): Promise<string> {
  switch (name) {
    case 'retry-job': {
      const form: Infer<(typeof forms)['retry-job']> = validate(forms[name], fields, 'form');
      const outcome = await retryJob(db, { jobId: form.job_id, reason: form.reason });
      return `Job ${form.job_id}: ${outcome}.`;
    }
    case 'resume-workflow': {
      const form = validate(forms[name], fields, 'form');
      const resumed = await resumeWorkflow(db, { workflowId: form.workflow_id, reason: form.reason });
      return `Workflow ${form.workflow_id} resumed at step ${resumed.step}.`;
    }
    case 'cancel-workflow': {
      const form = validate(forms[name], fields, 'form');
      await cancelWorkflow(db, { workflowId: form.workflow_id, reason: form.reason });
      return `Workflow ${form.workflow_id} cancelled: its compensation runs next.`;
    }
    case 'close-investigation': {
      const form = validate(forms[name], fields, 'form');
      await closeInvestigation(db, { id: form.investigation_id, resolution: form.reason, closedBy: 'console' });
      return `Investigation ${form.investigation_id} closed.`;
    }
  }
}
