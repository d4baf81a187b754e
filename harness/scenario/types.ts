/** The results model lives in harness/results/; the scenario code imports it from there. */
export * from '../results/model.ts';
