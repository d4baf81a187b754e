/**
 * Splitting a matrix over CI jobs: `--shard i/n` runs a stable subset of the cells. A shard's cost is
 * mostly its kernel builds (minutes per source tree, seconds per extra variant of a tree it already
 * has), so cells are ordered by one side's kernel, then the other's, and cut into n runs of equal size:
 * cells that share a kernel stay together. Both orders are tried; the cheaper plan wins (ties: EP first).
 * The plan depends only on the cells and n, so every job computes the same split.
 */
import { HarnessError } from '../errors.ts';
import { describeSource } from '../kernel/source.ts';
import { resolveKernel } from '../scenario/kernels.ts';
import type { Cell } from '../scenario/matrix.ts';
import type { Scenario } from '../scenario/schema.ts';

export interface ShardSpec {
  /** 1-based. */
  index: number;
  count: number;
}

export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new HarnessError(`bad --shard "${text}": expected i/n with 1 <= i <= n (e.g. 2/4)`, { code: 'BAD_SHARD', kind: 'input', phase: 'scenario' });
  }
  return { index, count };
}

/** Cold build minutes per source tree on the 2-core CI machine (README): x86_64 ~11, arm64 ~7.5. */
const TREE_COST: Record<string, number> = { x86_64: 11, arm64: 7.5 };
/** An extra variant of a tree already built rebuilds a few drivers (~15 s). */
const VARIANT_COST = 0.25;

interface Keyed {
  cell: Cell;
  /** Per side: the source tree (arch + source) and the kernel (tree + patches + fragments). */
  tree: { ep: string; host: string };
  kernel: { ep: string; host: string };
}

type ScenarioKernels = Pick<Scenario, 'kernels' | 'topology'>;

function keyed(cells: Cell[], scenario: ScenarioKernels): Keyed[] {
  return cells.map((cell) => {
    const side = (which: 'ep' | 'host') => {
      const spec = resolveKernel(scenario, cell[which]);
      const tree = `${scenario.topology[which].arch} ${describeSource(spec.source)}`;
      return { tree, kernel: [tree, ...spec.patches.map((p) => `+${p}`), ...spec.fragments.map((f) => `+config:${f}`)].join(' ') };
    };
    const ep = side('ep');
    const host = side('host');
    return { cell, tree: { ep: ep.tree, host: host.tree }, kernel: { ep: ep.kernel, host: host.kernel } };
  });
}

/** Sorted by `first`'s kernel, then the other side's; groups in order of first appearance in the matrix. */
function ordered(cells: Keyed[], first: 'ep' | 'host'): Keyed[] {
  const second = first === 'ep' ? 'host' : 'ep';
  const rank = (key: (k: Keyed) => string) => {
    const seen = new Map<string, number>();
    for (const k of cells) if (!seen.has(key(k))) seen.set(key(k), seen.size);
    return (k: Keyed) => seen.get(key(k))!;
  };
  const keys = [rank((k) => k.tree[first]), rank((k) => k.kernel[first]), rank((k) => k.tree[second]), rank((k) => k.kernel[second])];
  return [...cells].sort((a, b) => {
    for (const key of keys) if (key(a) !== key(b)) return key(a) - key(b);
    return a.cell.index - b.cell.index;
  });
}

/** n consecutive runs whose sizes differ by at most one (the first ones take the remainder). */
function cut<T>(items: T[], n: number): T[][] {
  const out: T[][] = [];
  let from = 0;
  for (let i = 0; i < n; i++) {
    const size = Math.floor(items.length / n) + (i < items.length % n ? 1 : 0);
    out.push(items.slice(from, from + size));
    from += size;
  }
  return out;
}

/** Estimated cold-cache minutes of a shard's builds. */
export function shardCost(cells: Keyed[]): number {
  const trees = new Set(cells.flatMap((k) => [k.tree.ep, k.tree.host]));
  const kernels = new Set(cells.flatMap((k) => [k.kernel.ep, k.kernel.host]));
  let cost = 0;
  for (const tree of trees) cost += TREE_COST[tree.split(' ')[0]!] ?? 10;
  return cost + (kernels.size - trees.size) * VARIANT_COST;
}

export interface ShardPlan {
  shards: { cells: Cell[]; kernels: string[]; cost: number }[];
  groupedBy: 'ep' | 'host';
}

export function planShards(cells: Cell[], scenario: ScenarioKernels, count: number): ShardPlan {
  const all = keyed(cells, scenario);
  const plans = (['ep', 'host'] as const).map((first) => {
    const shards = cut(ordered(all, first), count);
    return { first, shards, cost: shards.reduce((sum, s) => sum + shardCost(s), 0) };
  });
  const best = plans[1]!.cost < plans[0]!.cost ? plans[1]! : plans[0]!;
  return {
    groupedBy: best.first,
    shards: best.shards.map((shard) => ({
      // Within a shard, cells run in matrix order (reports and logs read as in a single run).
      cells: shard.map((k) => k.cell).sort((a, b) => a.index - b.index),
      kernels: [...new Set(shard.flatMap((k) => [k.kernel.ep, k.kernel.host]))],
      cost: shardCost(shard),
    })),
  };
}

export function selectShard(cells: Cell[], scenario: ScenarioKernels, spec: ShardSpec): Cell[] {
  return planShards(cells, scenario, spec.count).shards[spec.index - 1]!.cells;
}
