import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachePath, repoRoot } from '../util/paths.ts';
import { compilerErrors, run } from '../util/proc.ts';
import { hashParts, hashTree, short } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';

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
export async function buildLinkQemu(log: (line: string) => void = () => undefined): Promise<QemuBuild> {
  const srcDir = cachePath('qemu-src');
  await mkdir(srcDir, { recursive: true });
  const dsc = await withLock(srcDir, async () => {
    let found = (await readdir(srcDir)).filter((name) => name.endsWith('.dsc')).sort().pop();
    if (!found) {
      log('fetching the Debian qemu source package');
      await run('apt-get', ['source', '--download-only', 'qemu'], { cwd: srcDir, phase: 'qemu-build', code: 'QEMU_SOURCE_FETCH' });
      found = (await readdir(srcDir)).filter((name) => name.endsWith('.dsc')).sort().pop();
    }
    return found!;
  });
  const key = hashParts({
    dsc,
    // What goes into the binaries (not link/qemu/fuzz or the README): sources, build script, wiring patch.
    devices: await hashTree(join(repoRoot, 'link', 'qemu', 'hw')),
    build: await readFile(join(repoRoot, 'link', 'qemu', 'build.sh')),
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
    await run('bash', [join(repoRoot, 'link', 'qemu', 'build.sh'), work, tmp], {
      phase: 'qemu-build',
      code: 'QEMU_BUILD_FAILED',
      env: { QEMU_DEB_SRC_DIR: srcDir },
      logFile,
      excerpt: compilerErrors,
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
