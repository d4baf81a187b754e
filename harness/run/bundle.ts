/**
 * A reproducer bundle per cell: `<run>/<cell>/bundle/` holds what reruns that one cell elsewhere —
 * the scenario reduced to the cell, each side's kernel inputs (source identity, Debian version and
 * sha256, the patch files applied, extra fragments, the merged config, the cache's metadata.json),
 * the QEMU build and image identities, both QEMU command lines, the cell's recorded statuses and a
 * reproduce.sh that runs `ntbh reproduce` on it (harness/run/reproduce.ts).
 *
 * Every path inside the bundle is relative to the bundle, and recorded command lines name the run
 * directory, the tmpfs scratch and the cache as $RUN, $SHM and $NTBH_CACHE, so the bundle can be
 * moved or handed to someone else.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';
import { Document, parseDocument } from 'yaml';
import { execa } from 'execa';
import type { Emitter } from '../events.ts';
import type { KernelArtifact } from '../kernel/build.ts';
import { describeSource } from '../kernel/source.ts';
import type { Arch, KernelSpec } from '../kernel/spec.ts';
import type { QemuBuild } from '../qemu/build.ts';
import { resolveKernel } from '../scenario/kernels.ts';
import type { Scenario } from '../scenario/schema.ts';
import { exitCodeFor } from '../results/status.ts';
import type { CellResult, Side, Status } from '../results/model.ts';
import { sha256 } from '../util/hash.ts';
import { cacheRoot, repoRoot } from '../util/paths.ts';
import { makePrivateDir, type RunDirs } from '../util/rundir.ts';
import type { ArtifactStore, BootArtifacts } from './artifacts.ts';

export const BUNDLE_DIR = 'bundle';
export const BUNDLE_SCHEMA_VERSION = 1;

/** One check's status as recorded (a step without checks counts with check ""). */
export interface RecordedStatus {
  step: string;
  check: string;
  status: Status;
}

export interface BundleKernel {
  name: string;
  arch: Arch;
  release?: string;
  /** The source as given (debian:6.12, git:<url>@<ref>, path:<tree>) and its resolved identity. */
  source: string;
  sourceId?: string;
  package?: string;
  version?: string;
  file?: string;
  sha256?: string;
  key?: string;
  configSha256?: string;
  toolchain?: string;
  /** Patch sets as the scenario names them; the applied files are copied under patches/. */
  patchSets: string[];
  patches: { file: string; origin: string; sha256: string }[];
  /** Extra config fragments (besides the harness's built-in ones), copied under fragments/. */
  fragments: { file: string; origin: string; sha256: string }[];
  /** Built-in fragments as the build used them (path in the harness and sha256). */
  builtinFragments: { path: string; sha256: string }[];
  config?: string;
  metadata?: string;
  image?: { key: string };
  /** Why the kernel's inputs are incomplete (its build failed). */
  error?: string;
}

export interface BundleManifest {
  schemaVersion: number;
  createdAt: string;
  scenario: { name: string; file?: string };
  cell: { id: string; ep: string; host: string };
  harness: HarnessIdentity;
  node: string;
  kernels: Partial<Record<Side, BundleKernel>>;
  qemu?: { key?: string; dsc?: string; error?: string };
  /** Recorded QEMU command lines, relative to the bundle. */
  qemuCommandLines: Partial<Record<Side | 'host2', string>>;
  expected: { status: Status; exitCode: number; statuses: RecordedStatus[] };
}

export interface HarnessIdentity {
  name: string;
  version: string;
  /** git HEAD of the checkout, when it is one; `dirty` when it had uncommitted changes. */
  commit?: string;
  dirty?: boolean;
}

/** Every status of a cell: each check, or the step's own status when it produced none. */
export function cellStatuses(cell: Pick<CellResult, 'steps'>): RecordedStatus[] {
  return cell.steps.flatMap((step) =>
    step.checks.length > 0 ? step.checks.map((c) => ({ step: step.id, check: c.id, status: c.status })) : [{ step: step.id, check: '', status: step.status }],
  );
}

/** The exit code the cell alone gives (interop groups need other cells and are left out). */
export function cellExitCode(cell: Pick<CellResult, 'steps'>): number {
  return exitCodeFor(cellStatuses(cell).map((s) => s.status));
}

let identity: Promise<HarnessIdentity> | undefined;

/** The harness's package version and, in a git checkout, its commit. */
export function harnessIdentity(): Promise<HarnessIdentity> {
  identity ??= (async () => {
    const pkg = JSON.parse(await readFile(join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
    const head = await execa('git', ['rev-parse', 'HEAD'], { cwd: repoRoot, reject: false });
    if (head.exitCode !== 0) return { name: pkg.name, version: pkg.version };
    // Uncommitted changes to what runs (not results/ or caches) make the commit an approximation.
    const status = await execa('git', ['status', '--porcelain', '--untracked-files=no', '--', 'harness', 'link', 'images', 'kernel-configs', 'kernel-patches', 'package.json'], {
      cwd: repoRoot,
      reject: false,
    });
    return { name: pkg.name, version: pkg.version, commit: head.stdout.trim(), dirty: status.stdout.trim() !== '' };
  })();
  return identity;
}

/** Replaces the machine's own directories in a recorded command line by placeholders. */
export function portableCommandLine(text: string, places: { run: string; shm: string; cache: string }): string {
  let out = text;
  for (const [dir, name] of [
    [places.run, '$RUN'],
    [places.shm, '$SHM'],
    [places.cache, '$NTBH_CACHE'],
    [repoRoot, '$NTBH_HOME'],
  ] as const) {
    if (dir) out = out.split(dir).join(name);
  }
  return out;
}

/** The scenario file reduced to one cell: matrix ep × host, and both variants declared explicitly. */
export function reducedScenario(source: string | undefined, scenario: Scenario, cell: { ep: string; host: string }, specs: Record<Side, KernelSpec>): string {
  const doc = source !== undefined ? parseDocument(source) : new Document(plain(scenario));
  const kernels: Record<string, unknown> = { ...(plainObject(doc.get('kernels')) ?? {}) };
  for (const spec of [specs.ep, specs.host]) kernels[spec.name] = variantOf(spec);
  doc.set('kernels', kernels);
  doc.set('matrix', { ep: [cell.ep], host: [cell.host] });
  const header = `Reduced to one cell (EP ${cell.ep} x host ${cell.host}) by ntbh for a reproducer bundle`;
  doc.commentBefore = doc.commentBefore ? `${header}\n${doc.commentBefore}` : ` ${header}`;
  return doc.toString({ lineWidth: 0 });
}

function plain(scenario: Scenario): Record<string, unknown> {
  const { file: _file, ...rest } = scenario;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

function plainObject(node: unknown): Record<string, unknown> | undefined {
  if (node && typeof node === 'object' && 'toJSON' in node) return (node as { toJSON(): Record<string, unknown> }).toJSON();
  return undefined;
}

/** A KernelSpec in the scenario's `kernels:` shape. */
export function variantOf(spec: KernelSpec): Record<string, unknown> {
  const s = spec.source;
  const source = s.kind === 'debian' ? `debian:${s.version}` : s.kind === 'git' ? { git: s.url, ref: s.ref } : { path: s.path };
  return { source, patches: [...spec.patches], fragments: [...spec.fragments] };
}

export interface BundleInputs {
  scenario: Scenario;
  /** The scenario file's text (undefined: the scenario was built in memory). */
  scenarioSource?: string;
  cell: CellResult;
  /** The cell's results directory (<run>/<cell>). */
  cellDir: string;
  run: Pick<RunDirs, 'dir' | 'shm'>;
  artifacts: Partial<Record<Side, BootArtifacts | { error: string }>>;
  qemu?: QemuBuild | { error: string };
}

/** Writes `<cellDir>/bundle/`; returns its path. */
export async function writeBundle(inputs: BundleInputs): Promise<string> {
  const { scenario, cell } = inputs;
  const dir = join(inputs.cellDir, BUNDLE_DIR);
  await makePrivateDir(dir);
  const specs: Record<Side, KernelSpec> = { ep: resolveKernel(scenario, cell.ep), host: resolveKernel(scenario, cell.host) };
  const arches: Record<Side, Arch> = { ep: scenario.topology.ep.arch, host: scenario.topology.host.arch };

  const kernels: Partial<Record<Side, BundleKernel>> = {};
  for (const side of ['ep', 'host'] as const) {
    kernels[side] = await kernelInputs(dir, side, specs[side], arches[side], inputs.artifacts[side], cell);
  }

  const qemuCommandLines: Partial<Record<Side | 'host2', string>> = {};
  const places = { run: inputs.run.dir, shm: inputs.run.shm, cache: cacheRoot() };
  // A bridge cell (topology: bridge) has a third guest, host2.
  for (const side of ['ep', 'host', 'host2'] as const) {
    const recorded = join(inputs.cellDir, side, 'qemu.cmdline');
    if (!existsSync(recorded)) continue;
    await mkdir(join(dir, 'qemu'), { recursive: true });
    const file = join('qemu', `${side}.cmdline`);
    await writeFile(join(dir, file), portableCommandLine(await readFile(recorded, 'utf8'), places));
    qemuCommandLines[side] = file;
  }

  const manifest: BundleManifest = {
    schemaVersion: BUNDLE_SCHEMA_VERSION,
    createdAt: new Date().toISOString(),
    scenario: { name: scenario.name, ...(scenario.file ? { file: basename(scenario.file) } : {}) },
    cell: { id: cell.id, ep: cell.ep, host: cell.host },
    harness: await harnessIdentity(),
    node: process.version,
    kernels,
    qemu: await qemuIdentity(inputs.qemu),
    qemuCommandLines,
    expected: { status: cell.status, exitCode: cellExitCode(cell), statuses: cellStatuses(cell) },
  };
  await writeFile(join(dir, 'scenario.yaml'), reducedScenario(inputs.scenarioSource, scenario, cell, specs));
  await writeFile(join(dir, 'expected.json'), `${JSON.stringify(cell, null, 2)}\n`);
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(dir, 'reproduce.sh'), reproduceScript(manifest));
  await chmod(join(dir, 'reproduce.sh'), 0o700);
  return dir;
}

async function qemuIdentity(qemu: BundleInputs['qemu']): Promise<BundleManifest['qemu']> {
  if (!qemu) return undefined;
  if ('error' in qemu) return { error: qemu.error };
  const meta = JSON.parse(await readFile(join(qemu.dir, 'build.json'), 'utf8').catch(() => '{}')) as { key?: string; dsc?: string };
  return { key: meta.key, dsc: meta.dsc };
}

async function kernelInputs(
  bundle: string,
  side: Side,
  spec: KernelSpec,
  arch: Arch,
  built: BootArtifacts | { error: string } | undefined,
  cell: CellResult,
): Promise<BundleKernel> {
  const sideDir = join('kernels', side);
  await makePrivateDir(join(bundle, sideDir));
  const recorded = cell.kernels?.[side];
  const entry: BundleKernel = {
    name: spec.name,
    arch,
    source: describeSource(spec.source),
    patchSets: [...spec.patches],
    patches: [],
    fragments: [],
    builtinFragments: [],
    ...(recorded ? { release: recorded.release, sourceId: recorded.sourceId, key: recorded.key } : {}),
  };
  // Extra fragments are inputs of the user's: copy them (the built-in ones are recorded by hash).
  for (const [i, fragment] of spec.fragments.entries()) {
    const origin = isAbsolute(fragment) ? fragment : join(repoRoot, fragment);
    const content = await readFile(origin).catch(() => undefined);
    if (!content) continue;
    const file = join(sideDir, 'fragments', `${String(i).padStart(2, '0')}-${basename(fragment)}`);
    await mkdir(join(bundle, sideDir, 'fragments'), { recursive: true });
    await writeFile(join(bundle, file), content);
    entry.fragments.push({ file, origin: fragment, sha256: sha256(content) });
  }
  if (!built || 'error' in built) return { ...entry, ...(built ? { error: built.error } : {}) };
  const kernel: KernelArtifact = built.kernel;
  const meta = kernel.metadata;
  Object.assign(entry, {
    release: recorded?.release ?? kernel.release,
    sourceId: meta.source.id,
    ...(meta.source.package ? { package: meta.source.package } : {}),
    ...(meta.source.version ? { version: meta.source.version } : {}),
    ...(meta.source.file ? { file: meta.source.file } : {}),
    ...(meta.source.sha256 ? { sha256: meta.source.sha256 } : {}),
    key: kernel.key,
    configSha256: meta.configSha256,
    toolchain: meta.toolchain,
    image: { key: built.image.key },
  });
  const extra = new Set(entry.fragments.map((f) => f.sha256));
  entry.builtinFragments = meta.fragments.filter((f) => !extra.has(f.sha256)).map((f) => ({ path: f.path, sha256: f.sha256 }));
  // The patch files exactly as applied, in order (the NN- prefix keeps loadPatchSet's name order).
  for (const [i, patch] of meta.patches.entries()) {
    const origin = isAbsolute(patch.path) ? patch.path : join(repoRoot, patch.path);
    const content = await readFile(origin, 'utf8').catch(() => undefined);
    if (content === undefined || sha256(content) !== patch.sha256) {
      entry.error = `patch ${patch.path} is no longer the file the kernel was built with (sha256 ${patch.sha256})`;
      continue;
    }
    const file = join(sideDir, 'patches', `${String(i).padStart(2, '0')}-${basename(patch.path)}`);
    await mkdir(join(bundle, sideDir, 'patches'), { recursive: true });
    await writeFile(join(bundle, file), content);
    entry.patches.push({ file, origin: patch.path, sha256: patch.sha256 });
  }
  for (const [name, target] of [
    ['config', 'config'],
    ['metadata.json', 'metadata'],
  ] as const) {
    const from = join(kernel.dir, name);
    if (!existsSync(from)) continue;
    await copyFile(from, join(bundle, sideDir, name));
    entry[target] = join(sideDir, name);
  }
  return entry;
}

/**
 * reproduce.sh finds the harness at run time: $NTBH_HOME, then a checkout the bundle sits in, then
 * `ntbh` on PATH, then `npx ntbh` from the current directory's project.
 */
export function reproduceScript(manifest: BundleManifest): string {
  const { harness } = manifest;
  const made = `${harness.name} ${harness.version}${harness.commit ? ` (commit ${harness.commit.slice(0, 12)}${harness.dirty ? ', with local changes' : ''})` : ''}`;
  return `#!/bin/sh
# Reruns cell ${manifest.cell.id} of scenario ${manifest.scenario.name}, made by ${made}.
# Checks the tools first, builds or fetches what is missing through the harness's caches, reruns the
# cell, compares every check's status with the recorded one and exits as the rerun cell did.
# The harness: $NTBH_HOME (a checkout), else the checkout this bundle lies in, else ntbh on PATH,
# else npx ntbh from the current directory. Arguments go to \`ntbh reproduce\` (e.g. --results DIR).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "\${NTBH_HOME:-}" ]; then
  exec node "$NTBH_HOME/bin/ntbh.js" reproduce "$here" "$@"
fi
dir=$here
while [ "$dir" != / ]; do
  if [ -f "$dir/bin/ntbh.js" ] && [ -f "$dir/harness/cli.ts" ]; then
    exec node "$dir/bin/ntbh.js" reproduce "$here" "$@"
  fi
  dir=$(dirname "$dir")
done
if command -v ntbh >/dev/null 2>&1; then
  exec ntbh reproduce "$here" "$@"
fi
if npx --no-install ntbh --help >/dev/null 2>&1; then
  exec npx --no-install ntbh reproduce "$here" "$@"
fi
echo "reproduce.sh: no harness found: set NTBH_HOME to a checkout of ${harness.name}${harness.commit ? ` (commit ${harness.commit})` : ''}" >&2
exit 2
`;
}

/**
 * Writes a bundle for every cell as it ends. The kernels and QEMU come from the run's artifact store
 * (its builds are memoized: asking again returns the build the cell used).
 */
export function attachBundleWriter(
  emitter: Emitter,
  options: { scenario: Scenario; run: Pick<RunDirs, 'dir' | 'shm'>; store: ArtifactStore; log: (line: string) => void },
): { close(): Promise<string[]> } {
  const { scenario, store } = options;
  const source = scenario.file ? readFile(scenario.file, 'utf8').catch(() => undefined) : Promise.resolve(undefined);
  const pending: Promise<string | undefined>[] = [];
  const settle = <T>(p: Promise<T>) => p.then(
    (value) => value,
    (error: unknown) => ({ error: (error as Error)?.message ?? String(error) }),
  );
  const off = emitter.on((event) => {
    if (event.kind !== 'cell-end') return;
    const cell = event.cell;
    pending.push(
      (async () => {
        const [ep, host, qemu] = await Promise.all([
          settle(store.guest(resolveKernel(scenario, cell.ep), scenario.topology.ep.arch)),
          settle(store.guest(resolveKernel(scenario, cell.host), scenario.topology.host.arch)),
          settle(store.linkQemu()),
        ]);
        const scenarioSource = await source;
        // An ad-hoc scenario (--ep/--host) changed kernels and matrix in memory: the reduction redoes both.
        return writeBundle({ scenario, scenarioSource, cell, cellDir: join(options.run.dir, cell.id), run: options.run, artifacts: { ep, host }, qemu });
      })().catch((error: unknown) => {
        options.log(`${cell.id}: writing the reproducer bundle failed: ${(error as Error)?.message ?? error}`);
        return undefined;
      }),
    );
  });
  return {
    async close() {
      off();
      return (await Promise.all(pending)).filter((p): p is string => p !== undefined);
    },
  };
}
