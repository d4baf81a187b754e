/**
 * The terminal report: one line per finished cell while the run goes (with its kernels' releases), then
 * the matrix (cells × steps, each cell the worst of its checks), the kernels each variant stands for,
 * the interop row, the problems worth reading, and the totals.
 * Fits 100 columns: wide matrices wrap into several tables.
 */
import type { Stamped } from '../events.ts';
import type { CellKernel, CellResult, CheckResult, RunResult, Status } from '../results/model.ts';
import { cleanText, colors, duration, kernelText, paintStatus, showValue, type Colors } from './format.ts';

const WIDTH = 100;
const COL = 6; // "XFAIL" + a space

export interface SummaryOptions {
  write: (text: string) => void;
  color: boolean;
  /** Problem lines shown at most. */
  maxProblems?: number;
}

function short(id: string): string {
  return id.length <= COL - 1 ? id : id.slice(0, COL - 1);
}

function matrixTables(run: RunResult, c: Colors): string[] {
  const stepIds = [...new Set(run.cells.flatMap((cell) => cell.steps.map((s) => s.id)))];
  const idWidth = Math.max(4, ...run.cells.map((cell) => cell.id.length)) + 2;
  const perTable = Math.max(1, Math.floor((WIDTH - idWidth - COL) / COL));
  const lines: string[] = [];
  for (let from = 0; from < stepIds.length; from += perTable) {
    const cols = stepIds.slice(from, from + perTable);
    const last = from + perTable >= stepIds.length;
    lines.push(c.bold(`${'cell'.padEnd(idWidth)}${cols.map((id) => short(id).padEnd(COL)).join('')}${last ? 'cell' : ''}`));
    for (const cell of run.cells) {
      const statuses = cols.map((id) => cell.steps.find((s) => s.id === id)?.status);
      const cells = statuses.map((s) => (s ? paintStatus(s, c, s.padEnd(COL)) : c.dim('-'.padEnd(COL))));
      lines.push(`${cell.id.padEnd(idWidth)}${cells.join('')}${last ? paintStatus(cell.status, c) : ''}`);
    }
    lines.push('');
  }
  const truncated = stepIds.filter((id) => short(id) !== id);
  if (truncated.length) lines.push(c.dim(`columns: ${truncated.map((id) => `${short(id)}=${id}`).join(', ')}`));
  return lines;
}

function interopLines(run: RunResult, c: Colors): string[] {
  if (run.interop.groups.length === 0) return [];
  const lines = [`${c.bold('interop')} ${paintStatus(run.interop.status, c)}  (a receiver observes a single-bit ring the same whatever the sender)`];
  for (const direction of ['host-to-ep', 'ep-to-host'] as const) {
    const groups = run.interop.groups.filter((g) => g.direction === direction);
    // Several ringing steps give one group per step and receiver: name the step then, or the line repeats itself.
    const steps = new Set(run.interop.groups.map((g) => g.step));
    const name = (g: (typeof groups)[number]) => `${steps.size > 1 && g.step ? `${g.step}: ` : ''}${g.receiver} ${g.variant}`;
    if (groups.length) lines.push(`  ${direction.padEnd(11)} ${groups.map((g) => `${name(g)} ${paintStatus(g.status, c)}`).join(', ')}`);
  }
  for (const g of run.interop.groups) if (g.status === 'FAIL' && g.message) lines.push(`  ${c.red('✗')} ${cleanText(g.message)}`);
  return lines;
}

/** One line per kernel the run booted: which release and source each variant name stands for. */
function kernelLines(run: RunResult, c: Colors): string[] {
  const seen = new Map<string, { side: string; kernel: CellKernel }>();
  for (const cell of run.cells) {
    for (const side of ['ep', 'host'] as const) {
      const kernel = cell.kernels?.[side];
      if (kernel) seen.set(`${side}\u0000${kernel.name}\u0000${kernel.release}\u0000${kernel.key}`, { side, kernel });
    }
  }
  if (seen.size === 0) return [];
  const nameWidth = Math.max(...[...seen.values()].map(({ kernel }) => kernel.name.length));
  const lines = [...seen.values()].map(({ side, kernel }) => {
    const id = kernel.sourceId !== kernel.source ? `  [${kernel.sourceId}]` : '';
    const line = `  ${side.padEnd(4)} ${kernel.name.padEnd(nameWidth)}  ${kernelText(kernel)}${id}`;
    return line.length > WIDTH ? `${line.slice(0, WIDTH - 3)}...` : line;
  });
  return [c.bold('kernels'), ...lines, ''];
}

/** "ep 6.12.117, host 7.2.13": the releases a finished cell ran. */
function cellReleases(cell: CellResult): string {
  return (['ep', 'host'] as const)
    .filter((side) => cell.kernels?.[side])
    .map((side) => `${side} ${cell.kernels![side]!.release}`)
    .join(', ');
}

const NOTEWORTHY: Status[] = ['FAIL', 'ERROR', 'XPASS'];

function problemLines(run: RunResult, c: Colors, max: number): string[] {
  const rows: string[] = [];
  const describe = (cell: CellResult, step: string, check: CheckResult) => {
    const values = check.status === 'FAIL' ? ` (got ${showValue(check.value)})` : '';
    // Guest text may carry escape sequences: never let them reach the terminal.
    const message = cleanText(check.message ?? '').replace(/\s+/g, ' ');
    return `  ${paintStatus(check.status, c, check.status.padEnd(5))} ${cell.id} ${step} ${check.id}: ${message}${message.includes('got ') ? '' : values}`;
  };
  for (const cell of run.cells) {
    if (cell.message && cell.status === 'ERROR') rows.push(`  ${paintStatus('ERROR', c)} ${cell.id}: ${cleanText(cell.message)}`);
    for (const step of cell.steps) {
      const checks = step.checks.filter((check) => NOTEWORTHY.includes(check.status));
      for (const check of checks) rows.push(describe(cell, step.id, check));
      if (step.checks.length === 0 && NOTEWORTHY.includes(step.status) && !cell.message) rows.push(`  ${paintStatus(step.status, c)} ${cell.id} ${step.id}: ${cleanText(step.message ?? '')}`);
    }
  }
  if (rows.length === 0) return [];
  const shown = rows.slice(0, max).map((row) => (row.length > 400 ? `${row.slice(0, 397)}...` : row));
  if (rows.length > max) shown.push(c.dim(`  … ${rows.length - max} more in results.json`));
  return [c.bold('problems'), ...shown];
}

/** The known behaviours seen, one line per (step.check, reason): what the XFAILs were. */
function xfailLines(run: RunResult, c: Colors): string[] {
  const groups = new Map<string, { cells: Set<string>; checks: number }>();
  for (const cell of run.cells) {
    for (const step of cell.steps) {
      for (const check of step.checks.filter((k) => k.status === 'XFAIL')) {
        // The reason without the per-check evidence the judge appends after " — " (a write, a path).
        const key = `${step.id}.${check.check}\u0000${cleanText(check.message ?? '').split(' — ')[0]}`;
        const entry = groups.get(key) ?? { cells: new Set(), checks: 0 };
        entry.cells.add(cell.id);
        entry.checks++;
        groups.set(key, entry);
      }
    }
  }
  if (groups.size === 0) return [];
  const lines = [c.bold('expected failures (known behaviour of the kernels under test)')];
  for (const [key, { cells, checks }] of groups) {
    const [name, reason] = key.split('\u0000') as [string, string];
    // The counts always show; a long reason is cut instead (results.json has it whole).
    const counts = ` — ${cells.size} cell${cells.size === 1 ? '' : 's'}, ${checks} check${checks === 1 ? '' : 's'}`;
    const room = WIDTH - 8 - name.length - 2 - counts.length; // "  XFAIL " and ": "
    lines.push(`  ${paintStatus('XFAIL', c)} ${name}: ${reason.length > room ? `${reason.slice(0, Math.max(0, room - 3))}...` : reason}${counts}`);
  }
  return [...lines, ''];
}

export function renderSummary(run: RunResult, options: { color: boolean; maxProblems?: number }): string {
  const c = colors(options.color);
  const t = run.totals;
  const totals = (['PASS', 'XFAIL', 'XPASS', 'FAIL', 'ERROR', 'SKIP'] as Status[]).map((s) => `${t[s]} ${paintStatus(s, c)}`).join(', ');
  return [
    '',
    c.bold(`${run.scenario}: ${run.cells.length} cell${run.cells.length === 1 ? '' : 's'} in ${duration(run.durationMs)}`),
    '',
    ...matrixTables(run, c),
    ...kernelLines(run, c),
    ...interopLines(run, c),
    '',
    ...xfailLines(run, c),
    ...problemLines(run, c, options.maxProblems ?? 40),
    `checks: ${totals}`,
    `status: ${paintStatus(run.status, c)}${run.strict ? ' (strict: XPASS fails)' : ''}  exit ${run.exitCode}`,
    '',
  ].join('\n');
}

/** Subscribes to the event stream: a line per finished cell, the full summary at the end. */
export function summaryReporter(options: SummaryOptions): (event: Stamped) => void {
  const c = colors(options.color);
  return (event) => {
    switch (event.kind) {
      case 'run-start':
        options.write(`${c.bold(event.scenario)}: ${event.cells.length} cell(s)\n`);
        break;
      case 'cell-end': {
        const releases = cellReleases(event.cell);
        options.write(`  ${paintStatus(event.cell.status, c, event.cell.status.padEnd(5))} ${event.cell.id} (${duration(event.cell.durationMs)})${releases ? ` ${releases}` : ''}${event.cell.message ? ` — ${cleanText(event.cell.message)}` : ''}\n`);
        break;
      }
      case 'run-end':
        options.write(renderSummary(event.run, options));
        break;
      default:
        break;
    }
  };
}
