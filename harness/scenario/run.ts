/**
 * Runs a scenario's cells and assembles the run's result. Booting a cell's pair is the runner's job
 * (bootCell); this module sequences cells, turns a boot failure into an ERROR cell, evaluates the
 * cross-cell interop property and computes the run status and exit code.
 */
import pLimit from 'p-limit';
import type { Emitter, HarnessEvent } from '../events.ts';
import type { CellContext } from './context.ts';
import { cellError, executeCell } from './execute.ts';
import { evaluateInterop } from './interop.ts';
import { expandMatrix, type Cell } from './matrix.ts';
import type { Scenario } from './schema.ts';
import { countStatuses, exitCodeFor, worst } from '../results/status.ts';
import { stepEntry } from './steps/index.ts';
import type { CellKernels, CellPhase, CellResult, RunResult, Side, Status } from '../results/model.ts';

export interface BootedCell {
  ctx: CellContext;
  /** Stops the pair and keeps its artifacts; called whatever happened. */
  dispose(): Promise<void>;
}

export interface RunOptions {
  emitter: Emitter;
  strict?: boolean;
  /** Cells run at once (each is a pair of TCG guests: mind the cores). Default 1. */
  concurrency?: number;
  /** A subset of the expanded matrix (e.g. from --cell); default all. */
  cells?: Cell[];
  /** Rewrites each finished cell before it is reported (known issues: harness/compare/known-issues.ts). */
  adjustCell?: (cell: CellResult) => CellResult;
}

/** Every status of a run: each check, each step that never got to produce checks, and the interop groups. */
function allStatuses(cells: CellResult[], interop: RunResult['interop']): Status[] {
  const statuses: Status[] = [];
  for (const cell of cells) {
    for (const step of cell.steps) {
      if (step.checks.length > 0) statuses.push(...step.checks.map((c) => c.status));
      else statuses.push(step.status);
    }
  }
  statuses.push(...interop.groups.map((g) => g.status));
  return statuses;
}

export function buildRunResult(scenario: Scenario, cells: CellResult[], options: { strict?: boolean; startedAt: Date; durationMs: number }): RunResult {
  // Steps whose registry entry declares an interop rule are compared across cells.
  const compared = scenario.steps.flatMap((s) => {
    const rule = stepEntry(s.type)?.interop;
    return rule ? [{ id: s.id, rule }] : [];
  });
  const interop = evaluateInterop(compared, cells);
  const statuses = allStatuses(cells, interop);
  const strict = options.strict ?? false;
  const ordered = [...cells].sort((a, b) => order(scenario, a) - order(scenario, b));
  return {
    scenario: scenario.name,
    ...(scenario.file ? { file: scenario.file } : {}),
    // Worst over every check (not the cells' own summaries), so status and exit code always agree.
    status: worst(statuses, { strict }),
    strict,
    exitCode: exitCodeFor(statuses, { strict }),
    startedAt: options.startedAt.toISOString(),
    durationMs: options.durationMs,
    totals: countStatuses(statuses),
    interop,
    cells: ordered,
  };
}

function order(scenario: Scenario, cell: CellResult): number {
  return expandMatrix(scenario).findIndex((c) => c.id === cell.id);
}

export async function runScenario(scenario: Scenario, bootCell: (cell: Cell) => Promise<BootedCell>, options: RunOptions): Promise<RunResult> {
  const { emitter } = options;
  const cells = options.cells ?? expandMatrix(scenario);
  const startedAt = new Date();
  emitter.emit({ kind: 'run-start', scenario: scenario.name, file: scenario.file, cells: cells.map(({ id, ep, host }) => ({ id, ep, host })), strict: options.strict ?? false });

  // The runner reports each cell's kernels (`kernels`), the setup probes each guest's `uname -r`
  // (`capabilities`); every cell result carries both, whatever happened to the cell.
  const kernels = new Map<string, CellKernels>();
  const phases = new Map<string, CellPhase[]>();
  const addPhase = (cell: string, phase: CellPhase) => {
    const list = phases.get(cell) ?? [];
    list.push(phase);
    phases.set(cell, list);
  };
  const stopWatching = emitter.on((event) => {
    if (event.kind === 'kernels') kernels.set(event.cell, structuredClone(event.kernels));
    if (event.kind === 'phase' && event.cell && event.status !== 'start' && event.durationMs !== undefined) {
      addPhase(event.cell, { name: event.status === 'error' ? `${event.phase} (failed)` : event.phase, ms: event.durationMs, ...(event.guest ? { guest: event.guest } : {}) });
    }
    if (event.kind === 'step-end') addPhase(event.cell, { name: `step:${event.step.id}`, ms: event.step.durationMs });
    if (event.kind === 'capabilities' && event.release) {
      const kernel = kernels.get(event.cell)?.[event.guest as Side];
      if (kernel) kernel.release = event.release;
    }
  });
  const named = (result: CellResult): CellResult => {
    result = options.adjustCell?.(result) ?? result;
    const known = kernels.get(result.id);
    // The list is shared, so the teardown phase (after cell-end) still lands in results.json.
    const timed = { ...result, phases: phases.get(result.id) ?? [] };
    phases.set(result.id, timed.phases);
    return known ? { ...timed, kernels: known } : timed;
  };
  // Events of a cell as the executor emits them, its cell-end naming the kernels.
  const emitNamed = (event: HarnessEvent) => emitter.emit(event.kind === 'cell-end' ? { ...event, cell: named(event.cell) } : event);

  const limit = pLimit(Math.max(1, options.concurrency ?? 1));
  const results = await Promise.all(
    cells.map((cell) =>
      limit(async (): Promise<CellResult> => {
        const started = Date.now();
        let booted: BootedCell | undefined;
        try {
          booted = await bootCell(cell);
        } catch (error) {
          const result = named(cellError(cell, scenario, error, Date.now() - started));
          emitter.emit({ kind: 'cell-start', cell: { id: cell.id, ep: cell.ep, host: cell.host } });
          emitter.emit({ kind: 'cell-end', cell: result });
          return result;
        }
        try {
          // The cell's events go to the run's emitter, whatever the runner put in ctx.emit.
          return named(await executeCell({ ...booted.ctx, emit: emitNamed }, cell, scenario));
        } catch (error) {
          // executeCell handles step errors itself; this is a bug or a lost guest between steps.
          const result = named(cellError(cell, scenario, error, Date.now() - started));
          emitter.emit({ kind: 'cell-end', cell: result });
          return result;
        } finally {
          await booted.dispose().catch((error) => emitter.emit({ kind: 'log', level: 'warn', cell: cell.id, message: `stopping the pair failed: ${(error as Error)?.message ?? error}` }));
        }
      }),
    ),
  );

  stopWatching();
  const run = buildRunResult(scenario, results, { strict: options.strict, startedAt, durationMs: Date.now() - startedAt.getTime() });
  emitter.emit({ kind: 'run-end', run });
  return run;
}
