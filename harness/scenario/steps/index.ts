/**
 * The step registry: one entry per step type, each in its own file (docs/steps.md). The scenario
 * schema, the check catalogue, the executor, the interop evaluation and the README table read it.
 * Adding a step type: its file, and one line here.
 */
import { HarnessError } from '../../errors.ts';
import type { Rig } from '../rig.ts';
import dbValidMask from './db-valid-mask.ts';
import type { StepEntry } from './define.ts';
import doorbellClear from './doorbell-clear.ts';
import doorbellMulti from './doorbell-multi.ts';
import doorbellSweep from './doorbell-sweep.ts';
import doorbellZero from './doorbell-zero.ts';
import guestNet from './guest-net.ts';
import guestStop from './guest-stop.ts';
import linkCycle from './link-cycle.ts';
import linkUp from './link-up.ts';
import msiFault from './msi-fault.ts';
import mw from './mw.ts';
import netdevLinkCycle from './netdev-link-cycle.ts';
import netdevPing from './netdev-ping.ts';
import netdevSoak from './netdev-soak.ts';
import netdevTransfer from './netdev-transfer.ts';
import netdevUp from './netdev-up.ts';
import pcitestBar from './pcitest-bar.ts';
import pcitestMsi from './pcitest-msi.ts';
import pcitestRw from './pcitest-rw.ts';
import perf from './perf.ts';
import pingpongAtomic from './pingpong-atomic.ts';
import spad from './spad.ts';
import type { Out } from './util.ts';

/** In the order the README table lists them. */
export const STEP_ENTRIES = [
  linkUp,
  dbValidMask,
  doorbellSweep,
  doorbellMulti,
  doorbellZero,
  doorbellClear,
  spad,
  mw,
  perf,
  pingpongAtomic,
  linkCycle,
  pcitestBar,
  pcitestMsi,
  pcitestRw,
  netdevUp,
  netdevPing,
  netdevTransfer,
  netdevLinkCycle,
  netdevSoak,
  msiFault,
  guestNet,
  guestStop,
] as const;

export { SETUP } from './setup-step.ts';

const byType = new Map<string, StepEntry>(STEP_ENTRIES.map((e) => [e.type, e as unknown as StepEntry]));

export function stepEntry(type: string): StepEntry | undefined {
  return byType.get(type);
}

/** The implementation and time budget of a listed step, as the executor runs it. */
export function stepImpl(step: { type: string; id: string; timeout?: number }): { run: (rig: Rig, out: Out) => Promise<void>; budgetSeconds: number } {
  const entry = stepEntry(step.type);
  if (!entry) throw new HarnessError(`no registered step type '${step.type}'`, { code: 'SCENARIO_STEP_TYPE', kind: 'input', phase: 'step' });
  const budgetSeconds = step.timeout !== undefined && !entry.ownTimeout ? step.timeout : entry.budget(step as never);
  return { run: (rig, out) => entry.run(rig, step as never, out), budgetSeconds };
}
