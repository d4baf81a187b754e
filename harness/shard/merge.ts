/**
 * `ntbh merge`: the results directories of a sharded run become one results directory, as a single run
 * would have written it. The cells are taken as the shards recorded them; the run's status, totals,
 * exit code and the cross-cell interop evaluation are recomputed over all of them by the same code a
 * single run uses (buildRunResult), and the same reporters write the files. Events are replayed with
 * their original times, so events.ndjson and the terminal summary read like one run's.
 */
import { copyFile, link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HarnessError } from '../errors.ts';
import { createEmitter, type HarnessEvent, type Stamped } from '../events.ts';
import { attachReporters } from '../report/index.ts';
import { cellError } from '../scenario/execute.ts';
import type { Cell } from '../scenario/matrix.ts';
import { buildRunResult } from '../scenario/run.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { CellResult, RunResult } from '../results/model.ts';
import { makePrivateDir } from '../util/rundir.ts';
import { readRun } from '../compare/results.ts';
import type { ShardSpec } from './select.ts';

export const SHARD_FILE = 'shard.json';

/** What a sharded run records next to its results: enough for merge to check coverage and order cells. */
export interface ShardRecord {
  schemaVersion: 1;
  scenario: string;
  file?: string;
  shard: ShardSpec;
  /** Every cell of the sharded matrix (after --cell), in matrix order. */
  cells: { id: string; ep: string; host: string }[];
  /** The cells this shard ran. */
  selected: string[];
  /** The scenario's steps: the interop evaluation needs their types. */
  steps: { id: string; type: string }[];
}

export async function writeShardRecord(dir: string, record: ShardRecord): Promise<string> {
  const path = join(dir, SHARD_FILE);
  await writeFile(path, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  return path;
}

interface Input {
  dir: string;
  run: RunResult;
  record?: ShardRecord;
  events: Stamped[];
}

async function readInput(dir: string): Promise<Input> {
  const run = await readRun(dir);
  const record = await readFile(join(dir, SHARD_FILE), 'utf8').then(
    (text) => JSON.parse(text) as ShardRecord,
    () => undefined,
  );
  const events = await readFile(join(dir, 'events.ndjson'), 'utf8').then(
    (text) =>
      text
        .split('\n')
        .filter((line) => line.trim())
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Stamped];
          } catch {
            return []; // a line cut short by a killed job
          }
        }),
    () => [] as Stamped[],
  );
  return { dir, run, record, events };
}

function mergeError(message: string, code: string, excerpt?: string): HarnessError {
  return new HarnessError(message, { code, kind: 'input', phase: 'report', ...(excerpt ? { excerpt } : {}) });
}

/**
 * The scenario as far as buildRunResult reads it: name, file, the steps (for interop rules) and the
 * matrix order (as `include`, which expandMatrix keeps in order).
 */
function scenarioOf(name: string, file: string | undefined, cells: { id: string; ep: string; host: string }[], steps: { id: string; type: string }[]): Scenario {
  const shape = { name, ...(file ? { file } : {}), steps, matrix: { ep: [], host: [], include: cells.map(({ ep, host }) => ({ ep, host })), exclude: [] } };
  return shape as unknown as Scenario;
}

/** Files hard-linked where possible (same filesystem), copied otherwise; directories 0700 like a run's. */
async function copyTree(from: string, to: string): Promise<void> {
  await makePrivateDir(to);
  for (const entry of await readdir(from)) {
    const src = join(from, entry);
    const dst = join(to, entry);
    const info = await lstat(src);
    if (info.isDirectory()) await copyTree(src, dst);
    else if (info.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (info.isFile()) await link(src, dst).catch(() => copyFile(src, dst));
  }
}

export interface MergeOptions {
  /** The merged results directory (must not hold results yet). */
  out: string;
  write?: (text: string) => void;
  color?: boolean;
  log?: (line: string) => void;
}

export async function mergeRuns(dirs: string[], options: MergeOptions): Promise<{ run: RunResult; dir: string; written: string[] }> {
  if (dirs.length === 0) throw mergeError('merge needs at least one results directory', 'MERGE_NOTHING');
  const inputs = await Promise.all(dirs.map((dir) => readInput(dir)));
  const first = inputs[0]!;
  for (const input of inputs) {
    if (input.run.scenario !== first.run.scenario) throw mergeError(`${input.dir} is scenario ${input.run.scenario}, ${first.dir} is ${first.run.scenario}`, 'MERGE_MISMATCH');
    if (input.run.strict !== first.run.strict) throw mergeError(`${input.dir} ran ${input.run.strict ? 'with' : 'without'} --strict, ${first.dir} did not`, 'MERGE_MISMATCH');
  }

  // The full matrix and the steps come from the shard records; plain results directories give their own cells.
  const records = inputs.flatMap((i) => (i.record ? [i.record] : []));
  const reference = records[0];
  for (const record of records) {
    const same = record.shard.count === reference!.shard.count && JSON.stringify(record.cells) === JSON.stringify(reference!.cells);
    if (!same) throw mergeError('the shards were planned over different matrices or shard counts', 'MERGE_MISMATCH', records.map((r) => `shard ${r.shard.index}/${r.shard.count}: ${r.cells.length} cells`).join('\n'));
  }
  const seen = new Map<string, string>();
  const cells: CellResult[] = [];
  for (const input of inputs) {
    for (const cell of input.run.cells) {
      const other = seen.get(cell.id);
      if (other) throw mergeError(`cell ${cell.id} is in both ${other} and ${input.dir}`, 'MERGE_DUPLICATE_CELL');
      seen.set(cell.id, input.dir);
      cells.push(cell);
    }
  }
  const matrix = reference?.cells ?? inputs.flatMap((i) => i.run.cells.map(({ id, ep, host }) => ({ id, ep, host })));
  const steps = reference?.steps ?? [...new Map(first.run.cells.flatMap((c) => c.steps).filter((s) => s.id !== 'setup').map((s) => [s.id, { id: s.id, type: s.type }])).values()];
  const scenario = scenarioOf(first.run.scenario, first.run.file, matrix, steps);

  // A shard whose job died left no results: its cells are ERROR, as a cell that could not boot.
  const missing = matrix.filter((c) => !seen.has(c.id));
  if (missing.length > 0) {
    const present = new Set(records.map((r) => r.shard.index));
    const absent = reference ? Array.from({ length: reference.shard.count }, (_, i) => i + 1).filter((i) => !present.has(i)) : [];
    const why = new HarnessError(`no results for this cell: shard${absent.length === 1 ? '' : 's'} ${absent.map((i) => `${i}/${reference!.shard.count}`).join(', ') || '?'} missing from the merge`, { code: 'MERGE_SHARD_MISSING', kind: 'infra', phase: 'report' });
    options.log?.(`merge: ${missing.length} cell(s) without results (${missing.map((c) => c.id).join(' ')}): reported as ERROR`);
    missing.forEach((c, index) => cells.push(cellError({ ...c, index } as Cell, scenario, why)));
  }

  // In matrix order, as a single run hands them over: the interop groups are listed in that order.
  const position = new Map(matrix.map((c, i) => [c.id, i]));
  cells.sort((a, b) => (position.get(a.id) ?? Infinity) - (position.get(b.id) ?? Infinity));

  const starts = inputs.map((i) => Date.parse(i.run.startedAt));
  const ends = inputs.map((i) => Date.parse(i.run.startedAt) + i.run.durationMs);
  const startedAt = new Date(Math.min(...starts));
  const run = buildRunResult(scenario, cells, { strict: first.run.strict, startedAt, durationMs: Math.max(...ends) - startedAt.getTime() });

  const dir = resolve(options.out);
  const existing = await readdir(dir).catch(() => [] as string[]);
  if (existing.length > 0) throw mergeError(`${dir} is not empty: merge writes a fresh results directory`, 'MERGE_TARGET_EXISTS');
  await makePrivateDir(dir);
  for (const input of inputs) {
    for (const cell of input.run.cells) {
      const src = join(input.dir, cell.id);
      if (await lstat(src).then((s) => s.isDirectory(), () => false)) await copyTree(src, join(dir, cell.id));
    }
  }

  // Replayed with their own times; the merged run's start and end framing them.
  let at = startedAt;
  const emitter = createEmitter(() => at);
  const reporters = await attachReporters(emitter, { dir, write: options.write, color: options.color });
  emitter.emit({ kind: 'run-start', scenario: run.scenario, ...(run.file ? { file: run.file } : {}), cells: matrix.map(({ id, ep, host }) => ({ id, ep, host })), strict: run.strict });
  const events = inputs.flatMap((i) => i.events).filter((e) => e.kind !== 'run-start' && e.kind !== 'run-end');
  events.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  for (const { time, ...event } of events) {
    at = new Date(time);
    emitter.emit(event as HarnessEvent);
  }
  at = new Date(startedAt.getTime() + run.durationMs);
  emitter.emit({ kind: 'run-end', run });
  const written = await reporters.close();
  await writeFile(
    join(dir, 'merge.json'),
    `${JSON.stringify({ merged: inputs.map((i) => ({ dir: resolve(i.dir), shard: i.record?.shard, cells: i.run.cells.map((c) => c.id), startedAt: i.run.startedAt, durationMs: i.run.durationMs, exitCode: i.run.exitCode })), missing: missing.map((c) => c.id) }, null, 2)}\n`,
    { mode: 0o600 },
  );
  return { run, dir, written };
}
