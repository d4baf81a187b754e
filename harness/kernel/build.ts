import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { cachePath, repoRoot } from '../util/paths.ts';
import { compilerErrors, run } from '../util/proc.ts';
import { hashParts, hashTree, sha256, short } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';
import { builtinFragments, configMismatches, loadFragments } from './config.ts';
import { loadPatchSet } from './patches.ts';
import { describeSource, resolveSource } from './source.ts';
import { assertKernelSupported } from './support.ts';
import { applyPatches, prepareWorkTree } from './worktree.ts';
import { buildMeter, estimateBuild, previousBuilds, type BuildProgress } from './build-progress.ts';
import type { Arch, KernelSpec, SourceProvenance } from './spec.ts';

/** Bump when the build recipe changes in a way that changes artifacts. */
const BUILDER_VERSION = '1';

export interface KernelArtifact {
  key: string;
  dir: string;
  arch: Arch;
  name: string;
  /** The image QEMU boots (x86: vmlinux with a PVH note when the config has CONFIG_PVH, else bzImage; arm64: Image). */
  image: string;
  /** Root of the installed modules (contains lib/modules/<release>). */
  modulesRoot: string;
  release: string;
  /** Statically linked pcitest for this arch, when the source has tools/pci. */
  pcitest?: string;
  metadata: KernelMetadata;
  cached: boolean;
}

export interface KernelMetadata {
  key: string;
  name: string;
  arch: Arch;
  release: string;
  /** For debian: sources also package, version, upstream, file, sha256 and suite (SourceProvenance). */
  source: { spec: string; id: string; label: string } & Partial<SourceProvenance>;
  patches: { path: string; sha256: string }[];
  fragments: { path: string; sha256: string }[];
  extraModules: { path: string; sha256: string }[];
  configSha256: string;
  toolchain: string;
  durationsMs: Record<string, number>;
  builtAt: string;
  reproducer: string;
  /** For the next build's progress estimate: the work tree, objects compiled, whether it started from built objects. */
  workTree?: string;
  objects?: number;
  incremental?: boolean;
}

export interface BuildOptions {
  log?: (line: string) => void;
  jobs?: number;
  /** Out-of-tree modules built against this kernel and installed under extra/ (default: the EPC driver). */
  extraModules?: string[];
  /** Objects compiled and the estimate, about once a second while make builds the kernel. */
  progress?: (progress: BuildProgress) => void;
}

const toolchains: Record<Arch, { karch: string; cross: string; target: string; imagePath: string }> = {
  x86_64: { karch: 'x86_64', cross: '', target: 'bzImage', imagePath: 'arch/x86/boot/bzImage' },
  arm64: { karch: 'arm64', cross: 'aarch64-linux-gnu-', target: 'Image', imagePath: 'arch/arm64/boot/Image' },
};

export function defaultExtraModules(): string[] {
  // The EPC driver (EP side of the link). Test-only modules (test/modules/) are not here: a test that
  // needs one asks for it, so it is not in every kernel's cache key.
  return [join(repoRoot, 'link', 'epc-driver')].filter((dir) => existsSync(join(dir, 'Kbuild')) || existsSync(join(dir, 'Makefile')));
}

/** Builds (or finds in the cache) a kernel for `arch` from `spec`. */
export async function buildKernel(spec: KernelSpec, arch: Arch, options: BuildOptions = {}): Promise<KernelArtifact> {
  const log = options.log ?? (() => undefined);
  const tc = toolchains[arch];
  const source = await resolveSource(spec.source, log);
  await assertKernelSupported(source.dir, options.extraModules ?? defaultExtraModules());
  const series = await kernelSeries(source.dir);
  const patches = (await Promise.all(spec.patches.map((set) => loadPatchSet(set, series)))).flat();
  if (patches.length > 0 && source.external) {
    throw new HarnessError(`patches cannot be applied to the local tree ${source.dir}`, {
      code: 'KERNEL_PATCH_EXTERNAL',
      kind: 'input',
      phase: 'kernel-build',
      excerpt: 'Commit them to a git tree and use a git: source, or apply them yourself.',
    });
  }
  const fragments = await loadFragments([...builtinFragments(arch, series), ...spec.fragments]);
  const extraModules = options.extraModules ?? defaultExtraModules();
  // An out-of-tree module may include headers from a sibling include/ (link/include): hash both.
  const extraHashes = await Promise.all(
    extraModules.map(async (dir) => ({ path: dir, sha256: sha256((await hashTree(dir)) + (await hashTree(join(dir, '..', 'include')))) })),
  );
  const toolchain = (await run(`${tc.cross}gcc`, ['--version'], { phase: 'kernel-build', code: 'TOOLCHAIN_MISSING' })).stdout.split('\n')[0]!;

  const key = hashParts({
    builder: BUILDER_VERSION,
    source: source.id,
    arch,
    patches: patches.map((p) => p.sha256).join(','),
    fragments: fragments.map((f) => sha256(f.content)).join(','),
    extra: extraHashes.map((e) => e.sha256).join(','),
    toolchain,
  });
  const dir = cachePath('kernels', `${arch}-${spec.name}-${short(key)}`);
  const cachedMeta = join(dir, 'metadata.json');
  if (existsSync(cachedMeta)) return artifactFrom(dir, JSON.parse(await readFile(cachedMeta, 'utf8')), true);

  // One work tree per (source, arch, config inputs): variants of it differ only in patches.
  const workKey = short(hashParts({ source: source.id, arch, fragments: fragments.map((f) => f.content).join('\0'), toolchain }));
  const workRoot = cachePath('work', `${arch}-${workKey}`);
  await mkdir(cachePath('work'), { recursive: true });
  return withLock(
    workRoot,
    async () => {
      if (existsSync(cachedMeta)) return artifactFrom(dir, JSON.parse(await readFile(cachedMeta, 'utf8')), true);
      const durations: Record<string, number> = {};
      const timed = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
        const start = Date.now();
        try {
          return await fn();
        } finally {
          durations[label] = (durations[label] ?? 0) + Date.now() - start;
        }
      };
      const tmp = `${dir}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mkdir(tmp, { recursive: true });
      const logFile = join(tmp, 'build.log');
      const tree = source.external ? { src: source.dir, build: join(workRoot, 'build') } : await prepareWorkTree(workRoot, source.dir, log);
      await mkdir(tree.build, { recursive: true });
      if (!source.external) await timed('patch', () => applyPatches(workRoot, tree, source.dir, patches, logFile, log));

      const jobs = options.jobs ?? cpus().length;
      const ccacheDir = cachePath('ccache');
      const makeArgs = ['-C', tree.src, `O=${tree.build}`, `ARCH=${tc.karch}`, `CROSS_COMPILE=${tc.cross}`, `CC=ccache ${tc.cross}gcc`, `HOSTCC=ccache gcc`];
      const env = {
        CCACHE_DIR: ccacheDir,
        CCACHE_BASEDIR: workRoot,
        KBUILD_BUILD_USER: 'ntbh',
        KBUILD_BUILD_HOST: 'ntbh',
        KBUILD_BUILD_TIMESTAMP: '2026-01-01',
        LOCALVERSION: '',
      };
      const make = (args: string[], code = 'KERNEL_BUILD_FAILED', onOutput?: (chunk: string) => void) =>
        run('make', [...makeArgs, ...args], { phase: 'kernel-build', env, logFile, code, excerpt: compilerErrors, onOutput });

      // Variants of a work tree share its config: configure only when the fragments changed.
      const configStamp = join(tree.build, '.ntbh-config-stamp');
      const wantStamp = hashParts({ fragments: fragments.map((f) => f.content).join('\0'), source: source.id });
      const haveStamp = existsSync(configStamp) ? await readFile(configStamp, 'utf8') : '';
      if (haveStamp !== wantStamp || !existsSync(join(tree.build, '.config'))) {
        await timed('config', async () => {
          log(`configuring ${arch} (tinyconfig + ${fragments.map((f) => f.path.split('/').pop()).join(' + ')})`);
          await make(['tinyconfig'], 'KERNEL_CONFIG_FAILED');
          await run(join(tree.src, 'scripts/kconfig/merge_config.sh'), ['-m', '-O', tree.build, join(tree.build, '.config'), ...fragments.map((f) => f.path)], {
            phase: 'kernel-build',
            cwd: tree.src,
            env: { ...env, ARCH: tc.karch, CROSS_COMPILE: tc.cross },
            logFile,
            code: 'KERNEL_CONFIG_FAILED',
          });
          await make(['olddefconfig'], 'KERNEL_CONFIG_FAILED');
        });
        await writeFile(configStamp, wantStamp);
      }
      const merged = await readFile(join(tree.build, '.config'), 'utf8');
      const mismatches = configMismatches(fragments, merged);
      if (mismatches.length > 0) {
        throw new HarnessError(`${mismatches.length} requested kernel option(s) did not take (missing dependency or unknown symbol)`, {
          code: 'KERNEL_CONFIG_MISMATCH',
          kind: 'input',
          phase: 'kernel-build',
          excerpt: mismatches.join('\n'),
          artifacts: logFile,
        });
      }

      log(`building ${spec.name} ${arch} kernel (${tc.target} + modules, -j${jobs}); log: ${logFile}`);
      const current = { arch, sourceId: source.id, workTree: workKey, incremental: existsSync(join(tree.build, 'vmlinux')) };
      const meter = buildMeter(current, estimateBuild(await previousBuilds(), current), options.progress);
      await timed('build', () => make([`-j${jobs}`, tc.target, 'modules'], undefined, meter.onOutput));
      const release = (await make(['-s', 'kernelrelease'])).stdout.trim();
      const modulesRoot = join(tmp, 'modules');
      await timed('modules_install', () => make(['modules_install', `INSTALL_MOD_PATH=${modulesRoot}`, 'INSTALL_MOD_STRIP=1', 'DEPMOD=/bin/true']));
      for (const extra of extraModules) {
        log(`building out-of-tree module ${extra.replace(repoRoot + '/', '')}`);
        await timed('extra_modules', async () => {
          // Build a private copy (with its sibling include/): kbuild writes objects next to M= sources.
          const copyRoot = join(tree.build, 'ntbh-extra', basename(dirname(extra)));
          await rm(copyRoot, { recursive: true, force: true });
          await mkdir(copyRoot, { recursive: true });
          for (const part of [extra, join(extra, '..', 'include')].filter((p) => existsSync(p))) {
            await cp(part, join(copyRoot, basename(part)), { recursive: true });
          }
          const moduleDir = join(copyRoot, basename(extra));
          await make([`M=${moduleDir}`, `-j${jobs}`, 'modules']);
          await make([`M=${moduleDir}`, 'modules_install', `INSTALL_MOD_PATH=${modulesRoot}`, 'INSTALL_MOD_STRIP=1', 'INSTALL_MOD_DIR=extra', 'DEPMOD=/bin/true']);
        });
      }
      await timed('depmod', () =>
        run('depmod', ['-b', modulesRoot, '-F', join(tree.build, 'System.map'), release], { phase: 'kernel-build', logFile, code: 'KERNEL_DEPMOD' }),
      );
      await copyFile(join(tree.build, tc.imagePath), join(tmp, tc.target));
      // With a PVH entry note, QEMU starts the ELF vmlinux directly: no real-mode setup and no
      // decompression, which under TCG is about a second of every x86 boot (see docs/guests.md).
      const bootImage = arch === 'x86_64' && /^CONFIG_PVH=y$/m.test(merged) ? 'vmlinux' : tc.target;
      if (bootImage === 'vmlinux') {
        await run('objcopy', ['--strip-debug', join(tree.build, 'vmlinux'), join(tmp, 'vmlinux')], { phase: 'kernel-build', logFile, code: 'KERNEL_BUILD_FAILED' });
      }
      await copyFile(join(tree.build, 'System.map'), join(tmp, 'System.map'));
      await writeFile(join(tmp, 'config'), merged);
      const pcitest = await timed('pcitest', () => buildPcitest(tree.src, tmp, tc.cross, logFile));

      const metadata: KernelMetadata & { image: string; pcitest?: string } = {
        key,
        name: spec.name,
        arch,
        release,
        source: { spec: describeSource(spec.source), id: source.id, label: source.label, ...source.provenance },
        patches: patches.map((p) => ({ path: p.path.replace(repoRoot + '/', ''), sha256: p.sha256 })),
        fragments: fragments.map((f) => ({ path: f.path.replace(repoRoot + '/', ''), sha256: sha256(f.content) })),
        extraModules: extraHashes.map((e) => ({ path: e.path.replace(repoRoot + '/', ''), sha256: e.sha256 })),
        configSha256: sha256(merged),
        toolchain,
        durationsMs: durations,
        builtAt: new Date().toISOString(),
        reproducer: reproducer(spec, arch),
        image: bootImage,
        pcitest: pcitest ? 'pcitest' : undefined,
        ...meter.metadata(),
      };
      await writeFile(join(tmp, 'metadata.json'), JSON.stringify(metadata, null, 2));
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      log(`kernel ${spec.name} ${arch} ${release} built in ${Math.round(Object.values(durations).reduce((a, b) => a + b, 0) / 1000)} s → ${dir}`);
      return artifactFrom(dir, metadata, false);
    },
    (owner) => log(`waiting for another harness (pid ${owner}) building in the same work tree`),
  );
}

function artifactFrom(dir: string, meta: KernelMetadata & { image?: string; pcitest?: string }, cached: boolean): KernelArtifact {
  return {
    key: meta.key,
    dir,
    arch: meta.arch,
    name: meta.name,
    image: join(dir, meta.image ?? (meta.arch === 'arm64' ? 'Image' : 'bzImage')),
    modulesRoot: join(dir, 'modules'),
    release: meta.release,
    pcitest: meta.pcitest ? join(dir, meta.pcitest) : undefined,
    metadata: meta,
    cached,
  };
}

async function kernelSeries(src: string): Promise<string> {
  const makefile = await readFile(join(src, 'Makefile'), 'utf8');
  const version = /^VERSION = (\d+)/m.exec(makefile)?.[1];
  const patchlevel = /^PATCHLEVEL = (\d+)/m.exec(makefile)?.[1];
  return `${version}.${patchlevel}`;
}

/** tools/pci/pcitest.c (up to 6.13) as a static binary for the guest; only its uapi header is needed. */
async function buildPcitest(src: string, out: string, cross: string, logFile: string): Promise<string | undefined> {
  const source = join(src, 'tools/pci/pcitest.c');
  const header = join(src, 'include/uapi/linux/pcitest.h');
  if (!existsSync(source) || !existsSync(header)) return undefined;
  const include = join(out, '.pcitest-include');
  await mkdir(join(include, 'linux'), { recursive: true });
  await copyFile(header, join(include, 'linux/pcitest.h'));
  await run(`${cross}gcc`, ['-static', '-O2', '-I', include, '-o', join(out, 'pcitest'), source], {
    phase: 'kernel-build',
    logFile,
    code: 'PCITEST_BUILD_FAILED',
    excerpt: compilerErrors,
  });
  await rm(include, { recursive: true, force: true });
  return join(out, 'pcitest');
}

export function reproducer(spec: KernelSpec, arch: Arch): string {
  const parts = ['npx ntbh kernel build', `--arch ${arch}`, `--source ${describeSource(spec.source)}`, `--name ${spec.name}`];
  for (const p of spec.patches) parts.push(`--patches ${p}`);
  for (const f of spec.fragments) parts.push(`--fragment ${f}`);
  return parts.join(' ');
}
