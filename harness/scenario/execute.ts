/**
 * Executes one cell on a booted pair: the implicit `setup` step (drivers, capability probes, function
 * configuration, host bind), then the scenario's steps in order. A step that throws is an ERROR for
 * that step only, unless a guest stopped answering or a timed-out step's commands could not be killed:
 * then the remaining steps are ERROR and the cell ends.
 */
import { HarnessError } from '../errors.ts';
import type { Cell } from './matrix.ts';
import type { CellContext } from './context.ts';
import { Rig } from './rig.ts';
import type { Scenario } from './schema.ts';
import { runStep } from './step-runner.ts';
import { SETUP, stepImpl } from './steps/index.ts';
import { worst } from '../results/status.ts';
import type { CellResult, StepResult } from '../results/model.ts';

/** After a step threw: asks both guests for a trivial command and the relay for the link; returns why the cell cannot go on. */
async function guestsGone(rig: Rig): Promise<string | undefined> {
  const aborted = rig.ctx.aborted?.();
  if (aborted) return aborted;
  for (const guest of rig.guests()) {
    const answered = await guest
      .exec('true', { timeoutMs: rig.ms(15_000) })
      .then((r) => r.exitCode === 0)
      .catch(() => false);
    if (!answered) return `the ${guest.name} guest stopped answering`;
  }
  // Checked only after a step failed: link-cycle takes the link down on purpose but ends with it up.
  const down = rig.links().find((link) => !link.linkUp);
  if (down) return `${rig.ctx.bridge ? `link ${down.linkId}` : 'the link'} is down (the relay reports the function unplugged)`;
  return undefined;
}

function notRun(id: string, type: string, status: 'ERROR' | 'SKIP', message: string): StepResult {
  return { id, type, status, durationMs: 0, values: {}, checks: [], splats: [], message };
}

/** Setup must have produced a bound host function for any step to be meaningful. */
function setupUsable(result: StepResult): boolean {
  // A bridge binds a function on each host: every one of them must be bound.
  const bound = result.checks.filter((c) => c.check === 'driver_bound');
  return bound.length > 0 && bound.every((c) => c.value === true);
}

export async function executeCell(ctx: CellContext, cell: Cell, scenario: Scenario): Promise<CellResult> {
  const started = Date.now();
  const rig = new Rig(ctx, scenario, cell.id);
  ctx.emit({ kind: 'cell-start', cell: { id: cell.id, ep: cell.ep, host: cell.host } });
  const steps: StepResult[] = [];
  let stopped: string | undefined;

  const setup = await runStep(rig, { id: 'setup', type: 'setup' }, SETUP.budget, (out) => SETUP.run(rig, out));
  steps.push(setup.result);
  if (setup.error !== undefined) stopped = setup.unclean ?? (await guestsGone(rig));
  const usable = setupUsable(setup.result);

  for (const step of scenario.steps) {
    if (stopped) {
      steps.push(notRun(step.id, step.type, 'ERROR', `not run: ${stopped}`));
      continue;
    }
    if (!usable) {
      // The setup step already carries the failure; these could not test anything.
      steps.push(notRun(step.id, step.type, 'SKIP', 'not run: the function was not set up and bound on the host'));
      continue;
    }
    const impl = stepImpl(step);
    const outcome = await runStep(rig, step, impl.budgetSeconds, (out) => impl.run(rig, out));
    steps.push(outcome.result);
    // A guest left running a command that could not be stopped is not a known state: end the cell.
    if (outcome.error !== undefined) stopped = outcome.unclean ?? (await guestsGone(rig));
  }

  const result: CellResult = {
    id: cell.id,
    ep: cell.ep,
    host: cell.host,
    ...(rig.bridgeEp ? { guests: rig.guests().map((g) => g.name), sides: { ep: rig.sideName('ep'), host: rig.sideName('host') } } : {}),
    status: worst(steps.map((s) => s.status)),
    durationMs: Date.now() - started,
    capabilities: { ...rig.caps },
    params: { ...rig.params },
    steps,
    ...(stopped ? { message: stopped } : {}),
  };
  ctx.emit({ kind: 'cell-end', cell: result });
  return result;
}

/** A cell the runner could not boot (kernel build, QEMU, SSH, link): every step is ERROR with the reason. */
export function cellError(cell: Cell, scenario: Scenario, error: unknown, durationMs = 0): CellResult {
  const message = error instanceof HarnessError ? `${error.code}: ${error.message}` : ((error as Error)?.message ?? String(error));
  const steps = [notRun('setup', 'setup', 'ERROR', message), ...scenario.steps.map((s) => notRun(s.id, s.type, 'ERROR', `not run: ${message}`))];
  return { id: cell.id, ep: cell.ep, host: cell.host, status: 'ERROR', durationMs, capabilities: {}, params: {}, steps, message };
}
