/**
 * The interop property, checked across cells after the run: for a single-bit ring the wire slot does not
 * depend on the sender's version, so everything a receiver observes (db, vector, vector mask, MSI index,
 * wire, db after clear) must be identical whichever variant the sender runs. For each step whose registry
 * entry declares `interop` (doorbell-sweep), each direction and receiver variant, the cells that differ
 * only in the sender are compared bit by bit.
 */
import { worst } from '../results/status.ts';
import type { InteropRule } from './steps/define.ts';
import { stepEntry } from './steps/index.ts';
import type { CellResult, CheckResult, InteropGroup, InteropResult, Side, Value } from '../results/model.ts';

type Direction = InteropGroup['direction'];

/** A step to compare and its registry entry's rule. */
export interface InteropStep {
  id: string;
  rule: InteropRule;
}

/** Compared on every check it has: a step type the registry does not know declares no sender-side checks. */
const UNDECLARED: InteropRule = { param: 'i', ignore: [] };

/** Doorbell steps label a check direction first ("host-to-ep bit 3"): the label without its brackets. */
function labelOf(check: CheckResult): string[] {
  return check.id.startsWith(`${check.check}[`) ? check.id.slice(check.check.length + 1, -1).split(' ') : [];
}

function observations(cell: CellResult, step: InteropStep, direction: Direction): Map<string, Value> | undefined {
  const result = cell.steps.find((s) => s.id === step.id);
  if (!result || result.status === 'SKIP') return undefined;
  const out = new Map<string, Value>();
  for (const check of result.checks) {
    const [dir, ...rest] = labelOf(check);
    // Sender-side outcomes (the rule's `ignore`) are not receiver observations.
    if (dir !== direction || step.rule.ignore.includes(check.check)) continue;
    if (check.status === 'ERROR' || check.status === 'SKIP') continue;
    // The bit is the check's parameter; results written without params still carry it in the label.
    const bit = check.params?.[step.rule.param];
    out.set(`${bit === undefined ? rest.join(' ') : `bit ${bit}`} ${check.check}`, check.value);
  }
  return out.size > 0 ? out : undefined;
}

function compareGroup(direction: Direction, receiver: Side, variant: string, cells: CellResult[], step: InteropStep): InteropGroup {
  const sender: Side = receiver === 'ep' ? 'host' : 'ep';
  const observed = cells.map((cell) => ({ sender: cell[sender], obs: observations(cell, step, direction) })).filter((c) => c.obs);
  const senders = observed.map((c) => c.sender);
  const group = { direction, receiver, variant, step: step.id, senders };
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

/**
 * `steps`: the scenario's steps whose entry declares `interop`, with that rule (run.ts). A bare id takes
 * the rule of the type the cells' results name.
 */
export function evaluateInterop(steps: Array<string | InteropStep>, cells: CellResult[]): InteropResult {
  const groups: InteropGroup[] = [];
  for (const given of steps) {
    const step = typeof given === 'string' ? { id: given, rule: ruleOf(given, cells) } : given;
    for (const direction of ['host-to-ep', 'ep-to-host'] as const) {
      const receiver: Side = direction === 'host-to-ep' ? 'ep' : 'host';
      const variants = [...new Set(cells.map((cell) => cell[receiver]))];
      for (const variant of variants) {
        const group = compareGroup(direction, receiver, variant, cells.filter((cell) => cell[receiver] === variant), step);
        // A direction the step did not run in has no observations anywhere: leave it out.
        if (group.senders.length > 0) groups.push(group);
      }
    }
  }
  return { status: worst(groups.map((g) => g.status)), groups };
}

function ruleOf(stepId: string, cells: CellResult[]): InteropRule {
  const type = cells.flatMap((c) => c.steps).find((s) => s.id === stepId)?.type;
  return (type !== undefined ? stepEntry(type)?.interop : undefined) ?? UNDECLARED;
}
