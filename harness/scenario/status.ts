/** Status arithmetic lives in harness/results/status.ts. */
export * from '../results/status.ts';
