// The reproducer bundle writer: every file present, paths relative, nothing that names the run
// directory, a reduced scenario that is exactly the cell, and a materialized scenario whose patch set
// is the bundle's copies (same files, same hashes) wherever the bundle was moved to.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KernelArtifact } from '../../harness/kernel/build.ts';
import { loadPatchSet } from '../../harness/kernel/patches.ts';
import { BUNDLE_DIR, cellExitCode, portableCommandLine, writeBundle, type BundleManifest } from '../../harness/run/bundle.ts';
import { compareStatuses, findBundle, materializeScenario, readManifest } from '../../harness/run/reproduce.ts';
import { expandMatrix } from '../../harness/scenario/matrix.ts';
import { loadScenario, parseScenario } from '../../harness/scenario/load.ts';
import type { CellResult } from '../../harness/results/model.ts';
import { sha256 } from '../../harness/util/hash.ts';
import { cacheRoot, repoRoot } from '../../harness/util/paths.ts';

const scenarioFile = join(repoRoot, 'scenarios', 'doorbell-interop.yaml');

/** A kernel cache entry as buildKernel leaves it: config and metadata.json, with the patches it applied. */
async function fakeKernel(root: string, name: string, arch: 'arm64' | 'x86_64', patches: { path: string; content: string }[]): Promise<KernelArtifact> {
  const dir = join(root, 'cache', `${arch}-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config'), `CONFIG_NTB=y\n# ${name} ${arch}\n`);
  const metadata = {
    key: sha256(`${name}-${arch}`),
    name,
    arch,
    release: '6.12.117',
    source: { spec: 'debian:6.12', id: 'debian:linux-source-6.12=6.12.117-1~deb12u1', label: 'x', package: 'linux-source-6.12', version: '6.12.117-1~deb12u1', file: 'linux-source-6.12_6.12.117-1~deb12u1_all.deb', sha256: 'e849'.padEnd(64, '0') },
    patches: patches.map((p) => ({ path: p.path, sha256: sha256(p.content) })),
    fragments: [{ path: 'kernel-configs/base.config', sha256: sha256('base') }],
    extraModules: [],
    configSha256: sha256('config'),
    toolchain: 'gcc (Debian 12.2.0-14) 12.2.0',
    durationsMs: {},
    builtAt: new Date(0).toISOString(),
    reproducer: 'npx ntbh kernel build',
  };
  await writeFile(join(dir, 'metadata.json'), JSON.stringify(metadata));
  return { key: metadata.key, dir, arch, name, image: join(dir, 'Image'), modulesRoot: join(dir, 'modules'), release: metadata.release, metadata: metadata as KernelArtifact['metadata'], cached: true };
}

function cellResult(id: string, ep: string, host: string): CellResult {
  return {
    id,
    ep,
    host,
    status: 'FAIL',
    durationMs: 1,
    capabilities: {},
    params: {},
    kernels: { ep: { release: '6.12.117', source: 'debian:6.12', sourceId: 'debian:x', name: ep, arch: 'arm64', patches: ['new'], fragments: [], key: sha256(`${ep}-arm64`) } },
    steps: [
      { id: 'setup', type: 'setup', status: 'PASS', durationMs: 1, values: {}, splats: [], checks: [{ id: 'driver_bound', check: 'driver_bound', status: 'PASS', value: true }] },
      { id: 'sweep', type: 'doorbell-sweep', status: 'FAIL', durationMs: 1, values: {}, splats: [], checks: [{ id: 'db[ep bit 0]', check: 'db', status: 'FAIL', value: 2 }, { id: 'db[ep bit 1]', check: 'db', status: 'XFAIL', value: 4 }] },
      { id: 'perf', type: 'perf', status: 'SKIP', durationMs: 0, values: {}, splats: [], checks: [] },
    ],
  } as CellResult;
}

t.test('the bundle: files present, paths relative, the run directory named nowhere, reduced to its cell', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'bundle-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const run = { dir: join(root, 'results', 'run-1'), shm: '/dev/shm/ntbh-20260101-000000-doorbell-interop-abcd' };
  const cellId = 'ep-new__host-old';
  const cellDir = join(run.dir, cellId);
  for (const side of ['ep', 'host']) {
    await mkdir(join(cellDir, side), { recursive: true });
    const initrd = join(cellDir, side, 'initrd.cpio');
    await writeFile(join(cellDir, side, 'qemu.cmdline'), `${cacheRoot()}/qemu/abc/bin/qemu-system-x -kernel ${cacheRoot()}/kernels/k/Image -initrd ${initrd} -object memory-backend-file,mem-path=${run.shm}/${cellId}/${side}.ram -L ${repoRoot}/x\n`);
  }
  const patchDir = join(root, 'patches');
  await mkdir(patchDir);
  const patches = [
    { path: join(patchDir, '0001-a.patch'), content: '--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n' },
    { path: join(patchDir, '0002-b.patch'), content: '--- a/y\n+++ b/y\n@@ -1 +1 @@\n-c\n+d\n' },
  ];
  for (const p of patches) await writeFile(p.path, p.content);
  const qemuDir = join(root, 'qemu');
  await mkdir(qemuDir);
  await writeFile(join(qemuDir, 'build.json'), JSON.stringify({ dsc: 'qemu_7.2+dfsg-7+deb12u18.dsc', key: 'f'.repeat(64) }));

  const scenario = await loadScenario(scenarioFile);
  const cell = cellResult(cellId, 'new', 'old');
  const dir = await writeBundle({
    scenario,
    scenarioSource: await readFile(scenarioFile, 'utf8'),
    cell,
    cellDir,
    run,
    artifacts: {
      ep: { kernel: await fakeKernel(root, 'new', 'arm64', patches), image: { arch: 'arm64', initramfs: '/x', key: 'img-ep', cached: true } },
      host: { error: 'KERNEL_BUILD_FAILED: make failed' },
    },
    qemu: { dir: qemuDir, x86_64: '', aarch64: '', dataDir: '', cached: true, durationMs: 0 },
  });
  t.equal(dir, join(cellDir, BUNDLE_DIR));
  t.equal(findBundle(cellDir), dir, 'found from the cell directory');

  const manifest = await readManifest(dir);
  t.equal(manifest.cell.id, cellId);
  t.equal(manifest.kernels.ep?.sha256, 'e849'.padEnd(64, '0'), 'Debian source sha256');
  t.equal(manifest.kernels.ep?.version, '6.12.117-1~deb12u1');
  t.equal(manifest.kernels.ep?.image?.key, 'img-ep', 'image identity');
  t.same(manifest.kernels.ep?.patchSets, ['new']);
  t.match(manifest.kernels.host?.error ?? '', /KERNEL_BUILD_FAILED/, 'a failed side records why');
  t.same(manifest.qemu, { key: 'f'.repeat(64), dsc: 'qemu_7.2+dfsg-7+deb12u18.dsc' });
  t.equal(manifest.expected.exitCode, 1);
  t.equal(manifest.expected.exitCode, cellExitCode(cell));
  t.same(
    manifest.expected.statuses.map((s) => `${s.step}.${s.check}=${s.status}`),
    ['setup.driver_bound=PASS', 'sweep.db[ep bit 0]=FAIL', 'sweep.db[ep bit 1]=XFAIL', 'perf.=SKIP'],
  );

  // Every path the manifest names is relative and exists.
  const named = [manifest.kernels.ep!.config!, manifest.kernels.ep!.metadata!, ...manifest.kernels.ep!.patches.map((p) => p.file), manifest.qemuCommandLines.ep!, manifest.qemuCommandLines.host!];
  for (const file of named) {
    t.notOk(file.startsWith('/'), `${file} is relative`);
    t.ok(existsSync(join(dir, file)), `${file} exists`);
  }
  for (const [i, p] of manifest.kernels.ep!.patches.entries()) t.equal(sha256(await readFile(join(dir, p.file), 'utf8')), sha256(patches[i]!.content), `${p.file} is the applied patch`);
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const text = await readFile(join(entry.parentPath, entry.name), 'utf8');
    t.notOk(text.includes(run.dir), `${entry.name} does not name the run directory`);
    t.notOk(text.includes(run.shm), `${entry.name} does not name the scratch directory`);
  }
  const cmdline = await readFile(join(dir, 'qemu', 'ep.cmdline'), 'utf8');
  t.match(cmdline, /-initrd \$RUN\/ep-new__host-old\/ep\/initrd\.cpio/);
  t.match(cmdline, /mem-path=\$SHM\//);
  t.match(cmdline, /^\$NTBH_CACHE\/qemu\//);
  t.equal((await stat(join(dir, 'reproduce.sh'))).mode & 0o100, 0o100, 'reproduce.sh is executable');
  t.equal((await stat(dir)).mode & 0o777, 0o700, 'bundle directory is private');

  // The reduced scenario is a valid scenario of exactly this cell, both variants declared.
  const reduced = parseScenario(await readFile(join(dir, 'scenario.yaml'), 'utf8'), 'scenario.yaml');
  t.same(expandMatrix(reduced).map((c) => c.id), [cellId]);
  t.same(reduced.kernels.new, { source: 'debian:6.12', patches: ['new'], fragments: [] });
  t.same(reduced.kernels.old, { source: 'debian:6.12', patches: ['old'], fragments: [] });
  t.same(reduced.steps.map((s) => s.id), scenario.steps.map((s) => s.id), 'same steps');
  t.same(reduced.expect, scenario.expect, 'same expectations');

  // Moved elsewhere, the materialized scenario uses the bundle's patch copies: same files, same hashes.
  const moved = join(root, 'elsewhere', 'b');
  await mkdir(join(root, 'elsewhere'));
  await rename(dir, moved);
  const movedManifest: BundleManifest = await readManifest(moved);
  const materialized = parseScenario(materializeScenario(await readFile(join(moved, 'scenario.yaml'), 'utf8'), moved, movedManifest), 'm.yaml');
  t.same(materialized.kernels.new!.patches, [join(moved, 'kernels', 'ep', 'patches')]);
  const applied = await loadPatchSet(materialized.kernels.new!.patches[0]!, '6.12');
  t.same(applied.map((p) => p.sha256), patches.map((p) => sha256(p.content)), 'the same patches in the same order');
  t.same(materialized.kernels.old!.patches, ['old'], 'a side without a recorded build keeps its patch set name');
  t.equal(materialized.kernels.new!.source, 'debian:6.12=6.12.117-1~deb12u1', 'the Debian source pinned to the version built');
  t.equal(materialized.kernels.old!.source, 'debian:6.12', 'unpinned where nothing was built');
});

t.test('compareStatuses: check for check, missing and new checks included', async (t) => {
  const a = [
    { step: 's', check: 'x', status: 'PASS' as const },
    { step: 's', check: 'y', status: 'XFAIL' as const },
    { step: 't', check: '', status: 'SKIP' as const },
  ];
  t.same(compareStatuses(a, a), []);
  t.same(compareStatuses(a, [a[0]!, { ...a[1]!, status: 'FAIL' }, { step: 'u', check: 'z', status: 'PASS' }]), [
    { step: 's', check: 'y', expected: 'XFAIL', got: 'FAIL' },
    { step: 't', check: '', expected: 'SKIP' },
    { step: 'u', check: 'z', got: 'PASS' },
  ]);
});

t.test('portableCommandLine names the machine\'s directories by placeholder', async (t) => {
  t.equal(portableCommandLine('/r/x -L /c/q -m /s/a', { run: '/r', shm: '/s', cache: '/c' }), '$RUN/x -L $NTBH_CACHE/q -m $SHM/a');
});

t.test('reproduce.sh finds the harness: $NTBH_HOME first, else the checkout it lies in', async (t) => {
  const { execa } = await import('execa');
  const { reproduceScript } = await import('../../harness/run/bundle.ts');
  const root = await mkdtemp(join(tmpdir(), 'bundle-sh-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  // Two stand-in checkouts whose bin/ntbh.js says which one ran and with what.
  const checkout = async (name: string) => {
    const dir = join(root, name);
    await mkdir(join(dir, 'bin'), { recursive: true });
    await mkdir(join(dir, 'harness'), { recursive: true });
    await writeFile(join(dir, 'harness', 'cli.ts'), '');
    await writeFile(join(dir, 'bin', 'ntbh.js'), `console.log(${JSON.stringify(name)}, process.argv.slice(2).join(' '));\n`);
    return dir;
  };
  const home = await checkout('home');
  const enclosing = await checkout('enclosing');
  const bundle = join(enclosing, 'results', 'run', 'cell', 'bundle');
  await mkdir(bundle, { recursive: true });
  const manifest = { cell: { id: 'ep-a__host-b' }, scenario: { name: 's' }, harness: { name: 'epf-ntb-harness', version: '0.1.0', commit: 'abc' } } as BundleManifest;
  await writeFile(join(bundle, 'reproduce.sh'), reproduceScript(manifest));
  const env = { ...process.env, NTBH_HOME: '' };
  const inside = await execa('sh', [join(bundle, 'reproduce.sh'), '--results', 'X'], { cwd: root, env });
  t.equal(inside.stdout, `enclosing reproduce ${bundle} --results X`, 'the checkout the bundle lies in');
  const viaHome = await execa('sh', [join(bundle, 'reproduce.sh')], { cwd: root, env: { ...env, NTBH_HOME: home } });
  t.equal(viaHome.stdout, `home reproduce ${bundle}`, '$NTBH_HOME wins');
  const lonely = join(root, 'lonely');
  await mkdir(lonely);
  await writeFile(join(lonely, 'reproduce.sh'), reproduceScript(manifest));
  const none = await execa('sh', [join(lonely, 'reproduce.sh')], { cwd: lonely, env: { ...env, PATH: '/usr/bin:/bin' }, reject: false });
  t.equal(none.exitCode, 2, 'no harness anywhere: exit 2');
  t.match(none.stderr, /set NTBH_HOME/);
});
