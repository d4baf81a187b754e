/**
 * The interop property, checked across cells after the run: for a single-bit ring the wire slot does not
 * depend on the sender's version, so everything a receiver observes (db, vector, vector mask, MSI index,
 * wire, db after clear) must be identical whichever variant the sender runs. For each doorbell-sweep step,
 * direction and receiver variant, the cells that differ only in the sender are compared bit by bit.
 */
import { worst } from './status.ts';
import type { CellResult, InteropGroup, InteropResult, Side, Value } from './types.ts';

const SWEEP_ID = /^(\w+)\[(host-to-ep|ep-to-host) bit (\d+)\]$/;
/** Sender-side outcomes are not receiver observations. */
const NOT_OBSERVED = new Set(['ring_ok']);

type Direction = InteropGroup['direction'];

function observations(cell: CellResult, stepId: string, direction: Direction): Map<string, Value> | undefined {
  const step = cell.steps.find((s) => s.id === stepId);
  if (!step || step.status === 'SKIP') return undefined;
  const out = new Map<string, Value>();
  for (const check of step.checks) {
    const m = SWEEP_ID.exec(check.id);
    if (!m || m[2] !== direction || NOT_OBSERVED.has(m[1]!)) continue;
    if (check.status === 'ERROR' || check.status === 'SKIP') continue;
    out.set(`bit ${m[3]} ${m[1]}`, check.value);
  }
  return out.size > 0 ? out : undefined;
}

function compareGroup(direction: Direction, receiver: Side, variant: string, cells: CellResult[], stepId: string): InteropGroup {
  const sender: Side = receiver === 'ep' ? 'host' : 'ep';
  const observed = cells.map((cell) => ({ sender: cell[sender], obs: observations(cell, stepId, direction) })).filter((c) => c.obs);
  const senders = observed.map((c) => c.sender);
  const group = { direction, receiver, variant, senders };
  if (observed.length < 2) return { ...group, status: 'SKIP', message: `${observed.length} sender variant(s) observed; nothing to compare` };

  const keys = new Set(observed.flatMap((c) => [...c.obs!.keys()]));
  const differences: string[] = [];
  for (const key of keys) {
    const values = observed.filter((c) => c.obs!.has(key)).map((c) => ({ sender: c.sender, value: JSON.stringify(c.obs!.get(key)) }));
    if (new Set(values.map((v) => v.value)).size > 1) differences.push(`${key}: ${values.map((v) => `${sender} ${v.sender} → ${v.value}`).join(', ')}`);
  }
  if (differences.length === 0) return { ...group, status: 'PASS' };
  const shown = differences.slice(0, 6).join('; ');
  return { ...group, status: 'FAIL', message: `${receiver} ${variant} observes differently by sender: ${shown}${differences.length > 6 ? `; … ${differences.length - 6} more` : ''}` };
}

export function evaluateInterop(sweepStepIds: string[], cells: CellResult[]): InteropResult {
  const groups: InteropGroup[] = [];
  for (const stepId of sweepStepIds) {
    for (const direction of ['host-to-ep', 'ep-to-host'] as const) {
      const receiver: Side = direction === 'host-to-ep' ? 'ep' : 'host';
      const variants = [...new Set(cells.map((cell) => cell[receiver]))];
      for (const variant of variants) {
        const group = compareGroup(direction, receiver, variant, cells.filter((cell) => cell[receiver] === variant), stepId);
        // A direction the step did not run in has no observations anywhere: leave it out.
        if (group.senders.length > 0) groups.push(group);
      }
    }
  }
  return { status: worst(groups.map((g) => g.status)), groups };
}
