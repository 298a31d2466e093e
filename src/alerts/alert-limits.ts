import { limits } from '../limits.js';

/** Alerting's bounds; they live with every other bound in src/limits.ts. */
export const alertLimits = limits.alerts;
