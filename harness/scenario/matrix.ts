/** Expands a scenario's matrix (ep × host, then include, minus exclude) into cells with stable ids. */
import { describeSource } from '../kernel/source.ts';
import type { KernelSpec } from '../kernel/spec.ts';
import { resolveKernel } from './kernels.ts';
import type { Scenario } from './schema.ts';

export interface Cell {
  /** `ep-<variant>__host-<variant>`: used for artifact paths, reports and comparisons. */
  id: string;
  ep: string;
  host: string;
  /** Position in the expanded matrix, for ordering reports. */
  index: number;
}

export function cellId(ep: string, host: string): string {
  return `ep-${ep}__host-${host}`;
}

type MatrixLike = Pick<Scenario['matrix'], 'ep' | 'host' | 'include' | 'exclude'>;

export function expandMatrix(scenario: { matrix: MatrixLike }): Cell[] {
  const { ep, host, include, exclude } = scenario.matrix;
  const excluded = (e: string, h: string) => exclude.some((x) => (x.ep === undefined || x.ep === e) && (x.host === undefined || x.host === h));
  const pairs = ep.flatMap((e) => host.map((h) => [e, h] as const)).filter(([e, h]) => !excluded(e, h));
  // include adds cells after the product; an include is explicit, so exclude does not remove it.
  const all = [...pairs, ...include.map((c) => [c.ep, c.host] as const)];
  const seen = new Set<string>();
  const cells: Cell[] = [];
  for (const [e, h] of all) {
    const id = cellId(e, h);
    if (seen.has(id)) continue;
    seen.add(id);
    cells.push({ id, ep: e, host: h, index: cells.length });
  }
  return cells;
}

export interface CellKernels {
  cell: Cell;
  ep: KernelSpec;
  host: KernelSpec;
}

/** Cells with the KernelSpec of each side, for the runner to build and boot. */
export function cellKernels(scenario: Scenario): CellKernels[] {
  return expandMatrix(scenario).map((cell) => ({ cell, ep: resolveKernel(scenario, cell.ep), host: resolveKernel(scenario, cell.host) }));
}

function describeKernel(spec: KernelSpec): string {
  return [describeSource(spec.source), ...spec.patches.map((p) => `+${p}`), ...spec.fragments.map((f) => `+config:${f}`)].join(' ');
}

/** Text for `ntbh matrix <scenario>`: one line per cell with both kernels. */
export function formatMatrix(scenario: Scenario): string {
  const rows = cellKernels(scenario);
  const width = Math.max(4, ...rows.map((r) => r.cell.id.length));
  const lines = [`${scenario.name}: ${rows.length} cell${rows.length === 1 ? '' : 's'}`, `${'cell'.padEnd(width)}  ep kernel | host kernel`];
  for (const { cell, ep, host } of rows) lines.push(`${cell.id.padEnd(width)}  ${describeKernel(ep)} | ${describeKernel(host)}`);
  return lines.join('\n');
}
