/**
 * `ntbh reproduce <bundle>`: reruns the one cell a reproducer bundle (harness/run/bundle.ts) describes.
 * First the tools: node, the harness (version and commit) and the QEMU build are compared with the
 * bundle's; then the scenario is materialized with the bundle's own patch and fragment files (same
 * content, so the kernel cache finds the same build when it has it, and the normal builders make it
 * when not), the cell runs, and each check's status is compared with the recorded one.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { HarnessError } from '../errors.ts';
import { buildLinkQemu } from '../qemu/build.ts';
import type { CellResult, Side } from '../results/model.ts';
import { makePrivateDir, makeRunDirs } from '../util/rundir.ts';
import { BUNDLE_DIR, cellExitCode, cellStatuses, harnessIdentity, type BundleManifest, type RecordedStatus } from './bundle.ts';
import { runCommand } from './command.ts';

export interface StatusDifference {
  step: string;
  check: string;
  expected?: string;
  got?: string;
}

/** Check-for-check comparison: every recorded status against the rerun's (missing on either side too). */
export function compareStatuses(expected: RecordedStatus[], got: RecordedStatus[]): StatusDifference[] {
  const key = (s: RecordedStatus) => `${s.step}\0${s.check}`;
  const mine = new Map(got.map((s) => [key(s), s]));
  const diffs: StatusDifference[] = [];
  for (const want of expected) {
    const have = mine.get(key(want));
    mine.delete(key(want));
    if (have?.status !== want.status) diffs.push({ step: want.step, check: want.check, expected: want.status, ...(have ? { got: have.status } : {}) });
  }
  for (const extra of mine.values()) diffs.push({ step: extra.step, check: extra.check, got: extra.status });
  return diffs;
}

/** The bundle directory: the one given, or its bundle/ (a cell's results directory). */
export function findBundle(dir: string): string {
  for (const candidate of [dir, join(dir, BUNDLE_DIR)]) if (existsSync(join(candidate, 'bundle.json'))) return resolve(candidate);
  throw new HarnessError(`${dir} is not a reproducer bundle (no bundle.json in it or in ${BUNDLE_DIR}/)`, {
    code: 'NO_BUNDLE',
    kind: 'input',
    phase: 'scenario',
    excerpt: 'Give a cell directory of a run (results/<run>/<cell>) or its bundle/ directory.',
  });
}

export async function readManifest(bundle: string): Promise<BundleManifest> {
  const manifest = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as BundleManifest;
  if (manifest.schemaVersion !== 1) {
    throw new HarnessError(`bundle schema version ${manifest.schemaVersion} is not supported (this harness reads 1)`, { code: 'BUNDLE_VERSION', kind: 'input', phase: 'scenario' });
  }
  return manifest;
}

/**
 * The bundle's scenario with each side's patches and extra fragments pointing at the bundle's copies
 * (absolute paths, resolved now: the bundle may have moved), and a Debian source pinned to the
 * package version the cell was built from.
 */
export function materializeScenario(text: string, bundle: string, manifest: BundleManifest): string {
  const doc = parseDocument(text);
  for (const side of ['ep', 'host'] as const) {
    const kernel = manifest.kernels[side];
    if (!kernel) continue;
    // Without a recorded build (it failed) the patch sets stay as named: the harness resolves them.
    if (kernel.metadata) doc.setIn(['kernels', kernel.name, 'patches'], kernel.patches.length ? [join(bundle, 'kernels', side, 'patches')] : []);
    if (kernel.fragments.length) doc.setIn(['kernels', kernel.name, 'fragments'], kernel.fragments.map((f) => join(bundle, f.file)));
    // The Debian package version the cell used, not whatever the series' newest is today.
    if (kernel.version && /^debian:[^=]+$/.test(kernel.source)) doc.setIn(['kernels', kernel.name, 'source'], `${kernel.source}=${kernel.version}`);
  }
  return doc.toString({ lineWidth: 0 });
}

interface ToolCheck {
  what: string;
  recorded: string;
  here: string;
  same: boolean;
}

function line(check: ToolCheck): string {
  return `  ${check.same ? 'same   ' : 'DIFFERS'}  ${check.what.padEnd(14)} recorded ${check.recorded}${check.same ? '' : `, here ${check.here}`}`;
}

export interface ReproduceOptions {
  results?: string;
  timeoutScale: number;
  log: (line: string) => void;
  write?: (text: string) => void;
}

export interface ReproduceOutcome {
  exitCode: number;
  reproduced: boolean;
  differences: StatusDifference[];
  dir: string;
}

export async function reproduce(dir: string, options: ReproduceOptions): Promise<ReproduceOutcome> {
  const write = options.write ?? ((text: string) => void process.stdout.write(text));
  const bundle = findBundle(dir);
  const manifest = await readManifest(bundle);
  write(`reproducing cell ${manifest.cell.id} of ${manifest.scenario.name} (recorded ${manifest.expected.status}, exit ${manifest.expected.exitCode})\n`);

  // Tools first: a difference is reported, not fatal (the rerun is still evidence).
  const harness = await harnessIdentity();
  const fmt = (h: BundleManifest['harness']) => `${h.version}${h.commit ? ` ${h.commit.slice(0, 12)}${h.dirty ? '+changes' : ''}` : ''}`;
  const checks: ToolCheck[] = [
    { what: 'node', recorded: manifest.node, here: process.version, same: manifest.node.split('.')[0] === process.version.split('.')[0] },
    { what: 'harness', recorded: fmt(manifest.harness), here: fmt(harness), same: fmt(manifest.harness) === fmt(harness) },
  ];
  write(`tools:\n${checks.map(line).join('\n')}\n`);
  const qemu = await buildLinkQemu(options.log);
  const qemuMeta = JSON.parse(await readFile(join(qemu.dir, 'build.json'), 'utf8')) as { key?: string; dsc?: string };
  const qemuCheck = { what: 'qemu build', recorded: `${manifest.qemu?.dsc ?? '?'} ${manifest.qemu?.key?.slice(0, 16) ?? '?'}`, here: `${qemuMeta.dsc} ${qemuMeta.key?.slice(0, 16)}`, same: manifest.qemu?.key === qemuMeta.key };
  write(`${line(qemuCheck)}\n`);

  const run = await makeRunDirs(`reproduce-${manifest.scenario.name}`, options.results);
  const scenarioFile = join(run.dir, 'reproduce', 'scenario.yaml');
  await makePrivateDir(join(run.dir, 'reproduce'));
  await writeFile(scenarioFile, materializeScenario(await readFile(join(bundle, 'scenario.yaml'), 'utf8'), bundle, manifest));
  const exit = await runCommand(scenarioFile, { results: run.dir, cell: [manifest.cell.id], timeoutScale: options.timeoutScale, log: options.log });

  const results = JSON.parse(await readFile(join(run.dir, 'results.json'), 'utf8')) as { cells: CellResult[] };
  const cell = results.cells.find((c) => c.id === manifest.cell.id);
  if (!cell) throw new HarnessError(`the rerun has no cell ${manifest.cell.id}`, { code: 'REPRODUCE_NO_CELL', kind: 'infra', phase: 'report', artifacts: run.dir });
  const differences = compareStatuses(manifest.expected.statuses, cellStatuses(cell));
  const kernelChecks: ToolCheck[] = (['ep', 'host'] as Side[]).map((side) => {
    const want = manifest.kernels[side];
    const got = cell.kernels?.[side];
    return { what: `${side} kernel`, recorded: `${want?.release ?? '?'} ${want?.key?.slice(0, 16) ?? '?'}`, here: `${got?.release ?? '?'} ${got?.key?.slice(0, 16) ?? '?'}`, same: !!want?.key && want.key === got?.key };
  });
  const exitCode = cellExitCode(cell);
  const reproduced = differences.length === 0 && exitCode === manifest.expected.exitCode;
  write(`inputs:\n${kernelChecks.map(line).join('\n')}\n`);
  if (differences.length) {
    write(`${differences.length} check(s) differ from the recorded run:\n`);
    for (const d of differences) write(`  ${d.step}${d.check ? `.${d.check}` : ''}: recorded ${d.expected ?? '(none)'}, now ${d.got ?? '(none)'}\n`);
  }
  write(`${reproduced ? 'REPRODUCED' : 'NOT REPRODUCED'}: cell ${cell.id} ${cell.status} (exit ${exitCode}; recorded ${manifest.expected.status}, exit ${manifest.expected.exitCode}); run exit ${exit}; artifacts in ${run.dir}\n`);
  await writeFile(
    join(run.dir, 'reproduce.json'),
    `${JSON.stringify({ bundle, cell: cell.id, reproduced, exitCode, recordedExitCode: manifest.expected.exitCode, tools: [...checks, qemuCheck], kernels: kernelChecks, differences }, null, 2)}\n`,
  );
  return { exitCode, reproduced, differences, dir: run.dir };
}

