import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachePath, repoRoot } from '../util/paths.ts';
import { compilerErrors, run } from '../util/proc.ts';
import { hashParts, hashTree, short } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';
import { HarnessError } from '../errors.ts';

export interface QemuBuild {
  dir: string;
  x86_64: string;
  aarch64: string;
  /** ROM/firmware directory for -L. */
  dataDir: string;
  cached: boolean;
  durationMs: number;
}

/**
 * QEMU with our link devices: Debian's qemu source package + link/qemu, built by
 * link/qemu/build.sh. Cached by (source package version, our device sources); the build tree is
 * kept so a change to our devices recompiles only them.
 */
/** The QEMU series link/qemu/qemu-7.2-vepc.patch is written against. */
export const QEMU_SERIES = '7.2';

/** Highest `Version:` of the qemu source package in the series we patch (apt-cache showsrc output). */
export function pickQemuVersion(showsrc: string, series = QEMU_SERIES): string | undefined {
  const versions = [...new Set([...showsrc.matchAll(/^Version: (\S+)$/gm)].map((m) => m[1]!))];
  // 7.2 matches 7.2+dfsg-7 and 7.2.1-1, not 7.20.
  const inSeries = versions.filter((v) => new RegExp(`^${series.replace(/\./g, '\\.')}(?:[.+~-]|$)`).test(v.replace(/^\d+:/, '')));
  return inSeries.sort(compareDebianVersions).pop();
}

/** Debian version order for the shapes qemu uses (epoch:upstream+suffix-revision), via dpkg's rules in brief. */
export function compareDebianVersions(a: string, b: string): number {
  const parts = (v: string) => v.split(/(\d+)/).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const [x, y] = [pa[i] ?? '', pb[i] ?? ''];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    // '~' sorts before everything, even the end of the string.
    const rank = (s: string | number) => (s === '' ? 0 : String(s).startsWith('~') ? -1 : 1);
    if (rank(x) !== rank(y)) return rank(x) - rank(y);
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

/**
 * Our device patch targets one QEMU series, while the release suites the harness adds for kernels
 * carry newer qemu sources: name the version explicitly instead of taking apt's newest.
 */
async function qemuSourceVersion(): Promise<string> {
  const showsrc = await run('apt-cache', ['showsrc', 'qemu'], { phase: 'qemu-build', code: 'QEMU_SOURCE_FETCH' });
  const version = pickQemuVersion(showsrc.stdout);
  if (!version) {
    throw new HarnessError(`no qemu ${QEMU_SERIES} source package in the configured apt sources`, {
      code: 'QEMU_SOURCE_FETCH',
      kind: 'infra',
      phase: 'qemu-build',
      excerpt: `link/qemu/qemu-7.2-vepc.patch targets QEMU ${QEMU_SERIES}; run \`npx ntbh setup\` (adds deb-src for the machine's suites) and check \`apt-cache showsrc qemu\`.`,
    });
  }
  return version;
}

export async function buildLinkQemu(log: (line: string) => void = () => undefined, progress?: (done: number, total: number, elapsedMs: number) => void): Promise<QemuBuild> {
  const srcDir = cachePath('qemu-src');
  await mkdir(srcDir, { recursive: true });
  const dsc = await withLock(srcDir, async () => {
    let found = (await readdir(srcDir)).filter((name) => name.endsWith('.dsc')).sort().pop();
    if (!found) {
      const version = await qemuSourceVersion();
      log(`fetching the Debian qemu source package ${version}`);
      await run('apt-get', ['source', '--download-only', `qemu=${version}`], { cwd: srcDir, phase: 'qemu-build', code: 'QEMU_SOURCE_FETCH' });
      found = (await readdir(srcDir)).filter((name) => name.endsWith('.dsc')).sort().pop();
    }
    return found!;
  });
  const key = hashParts({
    dsc,
    // What goes into the binaries (not link/qemu/fuzz or the README): sources, build script, wiring
    // patch, the device set per target.
    devices: await hashTree(join(repoRoot, 'link', 'qemu', 'hw')),
    build: await readFile(join(repoRoot, 'link', 'qemu', 'build.sh')),
    devicesX86: await readFile(join(repoRoot, 'link', 'qemu', 'devices-x86_64.mak')),
    devicesArm: await readFile(join(repoRoot, 'link', 'qemu', 'devices-aarch64.mak')),
    patch: await readFile(join(repoRoot, 'link', 'qemu', 'qemu-7.2-vepc.patch')),
    header: await hashTree(join(repoRoot, 'link', 'include')),
  });
  const dir = cachePath('qemu', short(key));
  const meta = join(dir, 'build.json');
  if (existsSync(meta)) return fromDir(dir, true, JSON.parse(await readFile(meta, 'utf8')).durationMs);
  await mkdir(cachePath('qemu'), { recursive: true });
  const work = cachePath('qemu-work');
  return withLock(work, async () => {
    if (existsSync(meta)) return fromDir(dir, true, JSON.parse(await readFile(meta, 'utf8')).durationMs);
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const logFile = join(tmp, 'build.log');
    log(`building QEMU (${dsc.replace(/\.dsc$/, '')} + link devices); log: ${logFile}`);
    const started = Date.now();
    let lastProgress = 0;
    await run('bash', [join(repoRoot, 'link', 'qemu', 'build.sh'), work, tmp], {
      phase: 'qemu-build',
      code: 'QEMU_BUILD_FAILED',
      env: { QEMU_DEB_SRC_DIR: srcDir },
      logFile,
      excerpt: compilerErrors,
      // ninja's "[done/total]" prefix, for progress (at most once a second).
      onOutput: (chunk) => {
        const last = [...chunk.matchAll(/^\[(\d+)\/(\d+)\]/gm)].at(-1);
        if (!progress || !last || Date.now() - lastProgress < 1000) return;
        lastProgress = Date.now();
        progress(Number(last[1]), Number(last[2]), lastProgress - started);
      },
    });
    const durationMs = Date.now() - started;
    await writeFile(join(tmp, 'build.json'), JSON.stringify({ dsc, key, durationMs, builtAt: new Date().toISOString() }, null, 2));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    log(`QEMU built in ${Math.round(durationMs / 1000)} s → ${dir}`);
    return fromDir(dir, false, durationMs);
  });
}

function fromDir(dir: string, cached: boolean, durationMs: number): QemuBuild {
  return {
    dir,
    x86_64: join(dir, 'bin', 'qemu-system-x86_64'),
    aarch64: join(dir, 'bin', 'qemu-system-aarch64'),
    dataDir: join(dir, 'share', 'qemu'),
    cached,
    durationMs,
  };
}
