import { integer, object } from 'superstruct';
import { defineTask, defineWorkflow } from '../src/index.ts';

/** Two database steps that write nothing of their own: what is measured is the engine's cost per step. */
export const scaleHostWorkflow = defineWorkflow({
  kind: 'bench_scale',
  version: 1,
  input: object({}),
  steps: {
    first: { type: 'database', run: async () => ({ next: 'second' }) },
    second: { type: 'database', run: async () => ({ complete: true }) },
  },
  compensate: { type: 'database', run: async () => ({ complete: true }) },
});

export const scaleHostTask = defineTask('bench.scale_noop', object({ n: integer() }));
export const scaleBareTask = 'bench_scale_noop';
