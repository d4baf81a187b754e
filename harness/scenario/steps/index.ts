/** Step type → implementation and default time budget (seconds, before scaling). */
import type { Rig } from '../rig.ts';
import type { Step, StepType } from '../schema-steps.ts';
import { perf, pingpong } from './clients.ts';
import { mw, spad } from './data.ts';
import { doorbellClear, doorbellMulti, doorbellSweep, doorbellZero } from './doorbell.ts';
import { dbValidMask, linkCycle, linkUp } from './link.ts';
import { pcitestBar, pcitestMsi, pcitestRw } from './pcitest.ts';
import type { Out } from './util.ts';

type Impl<T extends StepType> = (rig: Rig, step: Extract<Step, { type: T }>, out: Out) => Promise<void>;

interface Entry<T extends StepType> {
  run: Impl<T>;
  /** Seconds a step may take before it is abandoned as hung (multiplied by the timeout scale). */
  budget: (step: Extract<Step, { type: T }>) => number;
}

export const STEP_IMPLS: { [T in StepType]: Entry<T> } = {
  'link-up': { run: linkUp, budget: () => 120 },
  'db-valid-mask': { run: dbValidMask, budget: () => 60 },
  'doorbell-sweep': { run: doorbellSweep, budget: () => 900 },
  'doorbell-multi': { run: doorbellMulti, budget: () => 120 },
  'doorbell-zero': { run: doorbellZero, budget: () => 120 },
  'doorbell-clear': { run: doorbellClear, budget: () => 120 },
  spad: { run: spad, budget: () => 300 },
  mw: { run: mw, budget: () => 300 },
  perf: { run: perf, budget: (s) => 2 * (s.timeout ?? 300) + 120 },
  'pingpong-atomic': { run: pingpong, budget: (s) => s.duration + 120 },
  'link-cycle': { run: linkCycle, budget: (s) => 150 * s.times },
  'pcitest-bar': { run: pcitestBar, budget: () => 300 },
  'pcitest-msi': { run: pcitestMsi, budget: () => 600 },
  'pcitest-rw': { run: pcitestRw, budget: (s) => 120 * s.sizes.length },
};

export function stepImpl(step: Step): { run: (rig: Rig, out: Out) => Promise<void>; budgetSeconds: number } {
  const entry = STEP_IMPLS[step.type] as unknown as Entry<StepType>;
  return { run: (rig, out) => entry.run(rig, step as never, out), budgetSeconds: step.timeout !== undefined && step.type !== 'perf' ? step.timeout : entry.budget(step as never) };
}
