/**
 * Progress of a kernel build for people watching it: objects compiled so far (kbuild's quiet
 * `  CC      path.o` lines) and an estimate of the whole from the previous build of the same work
 * tree (its metadata.json: durationsMs.build, and the object count and kind recorded here).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachePath } from '../util/paths.ts';

export interface BuildProgress {
  /** Objects compiled or assembled so far. */
  objects: number;
  elapsedMs: number;
  estimate?: BuildEstimate;
}

export interface BuildEstimate {
  /** The previous build's `build` step duration. */
  ms: number;
  /** The previous build's object count, when it recorded one. */
  objects?: number;
  /** What the estimate comes from, for the reader: "this work tree", "this source". */
  basis: string;
}

/** What an estimate needs of a cached kernel's metadata.json. */
export interface PreviousBuild {
  arch: string;
  builtAt: string;
  source: { id: string };
  durationsMs: Record<string, number>;
  /** Recorded since progress reporting: the work tree, the object count, whether objects were already there. */
  workTree?: string;
  objects?: number;
  incremental?: boolean;
}

export interface CurrentBuild {
  arch: string;
  sourceId: string;
  workTree: string;
  /** The work tree already holds a built kernel: only what changed recompiles. */
  incremental: boolean;
}

// kbuild's quiet output: two spaces, the tool, padding, the target (`CC [M]` for modules).
const OBJECT_LINE = /^ {2}(?:CC|AS)(?: \[M\])? +\S+\.o$/;

export function isObjectLine(line: string): boolean {
  return OBJECT_LINE.test(line.trimEnd());
}

/**
 * The estimate for a build: from this work tree's previous build of the same kind (cold or
 * incremental); for a cold build without one, the slowest build of the same source and arch (its
 * cold build; older metadata did not say which). An incremental build with no history of its own
 * gets none: it may recompile two files or two thousand.
 */
export function estimateBuild(previous: PreviousBuild[], current: CurrentBuild): BuildEstimate | undefined {
  const usable = previous.filter((p) => p.arch === current.arch && (p.durationsMs.build ?? 0) > 0);
  const latest = (list: PreviousBuild[]) => [...list].sort((a, b) => b.builtAt.localeCompare(a.builtAt))[0];
  const slowest = (list: PreviousBuild[]) => [...list].sort((a, b) => b.durationsMs.build! - a.durationsMs.build!)[0];
  const tree = usable.filter((p) => p.workTree === current.workTree);
  const sameKind = latest(tree.filter((p) => p.incremental === current.incremental));
  const pick = (p: PreviousBuild | undefined, basis: string): BuildEstimate | undefined =>
    p ? { ms: p.durationsMs.build!, ...(p.objects ? { objects: p.objects } : {}), basis } : undefined;
  if (sameKind) return pick(sameKind, 'this work tree');
  if (current.incremental) return undefined;
  return pick(slowest(usable.filter((p) => p.source.id === current.sourceId)), 'this source');
}

/** The metadata of every cached kernel (unreadable or half-written ones skipped). */
export async function previousBuilds(root = cachePath('kernels')): Promise<PreviousBuild[]> {
  if (!existsSync(root)) return [];
  const entries = await readdir(root).catch(() => [] as string[]);
  const builds = await Promise.all(
    entries.map(async (entry) => {
      try {
        const meta = JSON.parse(await readFile(join(root, entry, 'metadata.json'), 'utf8')) as PreviousBuild;
        return meta?.durationsMs && meta.source?.id ? [meta] : [];
      } catch {
        return [];
      }
    }),
  );
  return builds.flat();
}

export interface BuildMeter {
  /** Feeds make's output (chunks may split lines). */
  onOutput(chunk: string): void;
  /** Fields for metadata.json, so the next build of this tree can estimate. */
  metadata(): { workTree: string; objects: number; incremental: boolean };
}

/** Counts objects in make's output and reports at most once per `everyMs`. */
export function buildMeter(current: CurrentBuild, estimate: BuildEstimate | undefined, report?: (p: BuildProgress) => void, options: { now?: () => number; everyMs?: number } = {}): BuildMeter {
  const now = options.now ?? Date.now;
  const every = options.everyMs ?? 1000;
  const started = now();
  let objects = 0;
  let partial = '';
  let lastReport = -Infinity;
  return {
    onOutput(chunk) {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (isObjectLine(line)) objects++;
      const t = now();
      if (report && t - lastReport >= every) {
        lastReport = t;
        report({ objects, elapsedMs: t - started, ...(estimate ? { estimate } : {}) });
      }
    },
    metadata: () => ({ workTree: current.workTree, objects, incremental: current.incremental }),
  };
}

/** Time left by the estimate: by the object rate when both builds counted objects, else by the clock. */
export function remainingMs(progress: BuildProgress): number | undefined {
  const e = progress.estimate;
  if (!e) return undefined;
  // Object counts say more than the clock when both builds recorded them (ccache hits are fast).
  if (e.objects && progress.objects > 0 && progress.elapsedMs > 10_000) {
    const left = Math.max(0, e.objects - progress.objects);
    return Math.round((progress.elapsedMs / progress.objects) * left);
  }
  return Math.max(0, e.ms - progress.elapsedMs);
}
