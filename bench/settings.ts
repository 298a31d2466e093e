/**
 * Every size and duration of the suite, in one place. Quick mode (CI) only proves the suite
 * runs; default and large are the runs whose figures mean something.
 */
export interface BenchSettings {
  quick: boolean;
  scale: 'default' | 'large';
  /** How long each posting run (ledgerbox and pgbench alike) lasts. */
  postingDuration_s: number;
  postingClients: readonly number[];
  postingAccounts: number;
  hotAccounts: number;
  hotClients: number;
  /** Jobs per throughput run, bare graphile-worker and the step wrapper alike. */
  jobs: number;
  /** How many times the job sides take turns (bare, wrapper, host, …); each figure is the median. `--job-rounds N` overrides. */
  jobRounds: number;
  jobConcurrency: number;
  /** Single jobs enqueued one after another to measure commit-to-start latency. */
  latencySamples: number;
  reconcileEntries: number;
  reconcileNewEntries: number;
  /** Each timed reconciliation query runs this many times; the median is reported. */
  reconcileRepeats: number;
  exchanges: number;
  /**
   * The sides the memory benchmark runs (`--memory-side ledgerbox|bare`; default both): at
   * `--scale large` each side is a long run of its own, and one can be run alone.
   */
  memorySides: readonly ('ledgerbox' | 'bare')[];
}

export function readSettings(argv: readonly string[], env: NodeJS.ProcessEnv): BenchSettings {
  const quick = argv.includes('--quick') || env.LEDGERBOX_BENCH_QUICK === '1';
  const scaleAt = argv.indexOf('--scale');
  const scaleName = scaleAt >= 0 ? argv[scaleAt + 1] : (env.LEDGERBOX_BENCH_SCALE ?? 'default');
  if (scaleName !== 'default' && scaleName !== 'large') {
    throw new Error(`Expected \`--scale\` to be default or large, got ${JSON.stringify(scaleName)}`);
  }
  const scale = scaleName;
  const sideAt = argv.indexOf('--memory-side');
  const sideName = sideAt >= 0 ? argv[sideAt + 1] : undefined;
  if (sideName !== undefined && sideName !== 'ledgerbox' && sideName !== 'bare') {
    throw new Error(`Expected \`--memory-side\` to be ledgerbox or bare, got ${JSON.stringify(sideName)}`);
  }
  const roundsAt = argv.indexOf('--job-rounds');
  const jobRounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : undefined;
  if (jobRounds !== undefined && !(Number.isInteger(jobRounds) && jobRounds >= 1 && jobRounds <= 100)) {
    throw new Error(`Expected \`--job-rounds\` to be a whole number from 1 to 100, got ${JSON.stringify(argv[roundsAt + 1])}`);
  }
  const memorySides = sideName === undefined ? (['ledgerbox', 'bare'] as const) : ([sideName] as const);
  if (quick) {
    return {
      quick,
      scale,
      postingDuration_s: 2,
      postingClients: [1, 4, 16],
      postingAccounts: 1_000,
      hotAccounts: 10,
      hotClients: 16,
      jobs: 300,
      jobRounds: jobRounds ?? 1,
      jobConcurrency: 8,
      latencySamples: 20,
      reconcileEntries: 20_000,
      reconcileNewEntries: 2_000,
      reconcileRepeats: 1,
      exchanges: 50,
      memorySides,
    };
  }
  return {
    quick,
    scale,
    postingDuration_s: 10,
    postingClients: [1, 4, 16],
    postingAccounts: 1_000,
    hotAccounts: 10,
    hotClients: 16,
    jobs: scale === 'large' ? 50_000 : 5_000,
    jobRounds: jobRounds ?? (scale === 'large' ? 1 : 3),
    jobConcurrency: 8,
    latencySamples: 300,
    reconcileEntries: scale === 'large' ? 10_000_000 : 1_000_000,
    reconcileNewEntries: 100_000,
    reconcileRepeats: 3,
    exchanges: 300,
    memorySides,
  };
}
