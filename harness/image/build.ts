import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { cachePath, repoRoot } from '../util/paths.ts';
import { run } from '../util/proc.ts';
import { hashParts, short } from '../util/hash.ts';
import { withLock } from '../util/lock.ts';
import { HarnessError } from '../errors.ts';
import { guestDebs } from '../setup/packages.ts';
import type { KernelArtifact } from '../kernel/build.ts';
import type { Arch } from '../kernel/spec.ts';
import { resolveExtraDebs, unpackedDebs, unpackedExtraDebs } from './debs.ts';
import { runtimeClosure } from './elf.ts';

const IMAGE_VERSION = '1';

export interface GuestImage {
  arch: Arch;
  /** Base (busybox, dropbear, init) + the kernel's modules and tools, as one newc cpio. */
  initramfs: string;
  key: string;
  cached: boolean;
}

/**
 * Builds (or finds) the initramfs for a kernel: a cached per-arch base, the scenario's extra Debian
 * packages for that arch (cached per package set), and the kernel's modules.
 */
export async function buildImage(kernel: KernelArtifact, log: (line: string) => void = () => undefined, packages: string[] = []): Promise<GuestImage> {
  const base = await buildBase(kernel.arch, log);
  const extras = packages.length > 0 ? await buildExtras(kernel.arch, packages, log) : undefined;
  const key = hashParts({ version: IMAGE_VERSION, base: base.key, kernel: kernel.key, ...(extras ? { extras: extras.key } : {}) });
  const dir = cachePath('images', `${kernel.arch}-${kernel.name}-${short(key)}`);
  const initramfs = join(dir, 'initramfs.cpio');
  if (existsSync(initramfs)) return { arch: kernel.arch, initramfs, key, cached: true };
  await mkdir(cachePath('images'), { recursive: true });
  return withLock(dir, async () => {
    if (existsSync(initramfs)) return { arch: kernel.arch, initramfs, key, cached: true };
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    const stage = join(tmp, 'stage');
    await mkdir(join(stage, 'usr/bin'), { recursive: true });
    await cp(join(kernel.modulesRoot, 'lib'), join(stage, 'lib'), { recursive: true });
    if (kernel.pcitest) await copyFile(kernel.pcitest, join(stage, 'usr/bin/pcitest'));
    const modulesCpio = join(tmp, 'modules.cpio');
    await makeCpio(stage, modulesCpio);
    // Concatenated newc archives are one initramfs to the kernel: base first, then the modules.
    const layers = [base.cpio, ...(extras ? [extras.cpio] : []), modulesCpio].map((f) => `'${f}'`).join(' ');
    await run('sh', ['-c', `cat ${layers} > '${join(tmp, 'initramfs.cpio')}'`], { phase: 'image-build', code: 'IMAGE_BUILD' });
    await rm(stage, { recursive: true, force: true });
    await rm(modulesCpio);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    log(`image for ${kernel.name} ${kernel.arch} → ${dir}`);
    return { arch: kernel.arch, initramfs, key, cached: false };
  });
}

async function buildBase(arch: Arch, log: (line: string) => void): Promise<{ cpio: string; key: string }> {
  const debs = await unpackedDebs(arch, guestDebs, log);
  const init = await readFile(join(repoRoot, 'images', 'init.sh'), 'utf8');
  const key = hashParts({ version: IMAGE_VERSION, init, debs: debs.versions.join(' '), arch });
  const cpio = cachePath('images', `base-${arch}-${short(key)}.cpio`);
  if (existsSync(cpio)) return { cpio, key };
  await mkdir(cachePath('images'), { recursive: true });
  return withLock(cpio, async () => {
    if (existsSync(cpio)) return { cpio, key };
    const started = Date.now();
    const stage = `${cpio}.stage-${process.pid}`;
    await rm(stage, { recursive: true, force: true });
    for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/dropbear', 'proc', 'sys', 'dev', 'tmp', 'run', 'root/.ssh', 'lib/modules', 'var']) {
      await mkdir(join(stage, dir), { recursive: true });
    }
    await copyFile(join(debs.root, 'bin/busybox'), join(stage, 'bin/busybox'));
    await chmod(join(stage, 'bin/busybox'), 0o755);
    await symlink('busybox', join(stage, 'bin/sh'));
    await copyFile(join(debs.root, 'usr/sbin/dropbear'), join(stage, 'usr/sbin/dropbear'));
    await chmod(join(stage, 'usr/sbin/dropbear'), 0o755);
    for (const file of await runtimeClosure(debs.root, 'usr/sbin/dropbear')) await copyPreservingLinks(debs.root, stage, file);
    // The SSH client and key tool, so one guest can log into the other over their private network.
    for (const tool of ['usr/bin/dbclient', 'usr/bin/dropbearkey']) {
      await copyPreservingLinks(debs.root, stage, tool);
      for (const file of await runtimeClosure(debs.root, tool)) await copyPreservingLinks(debs.root, stage, file);
    }
    await writeFile(join(stage, 'init'), init, { mode: 0o755 });
    await writeFile(join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(join(stage, 'etc/group'), 'root:x:0:\n');
    await writeFile(join(stage, 'etc/shells'), '/bin/sh\n');
    await chmod(join(stage, 'root'), 0o700);
    await chmod(join(stage, 'root/.ssh'), 0o700);
    // The host key is baked in (generating one under TCG at every boot costs seconds).
    await run('dropbearkey', ['-t', 'ed25519', '-f', join(stage, 'etc/dropbear/dropbear_ed25519_host_key')], { phase: 'image-build', code: 'IMAGE_HOSTKEY' });
    await makeCpio(stage, `${cpio}.tmp`);
    await rename(`${cpio}.tmp`, cpio);
    await rm(stage, { recursive: true, force: true });
    log(`guest base image for ${arch} built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { cpio, key };
  });
}

/**
 * The scenario's extra packages for one arch as a newc layer: the packages and the libraries they
 * need, resolved for that arch (debs.ts), without documentation; every executable's libraries must be
 * in the layer or the base.
 */
export async function buildExtras(arch: Arch, packages: string[], log: (line: string) => void): Promise<{ cpio: string; key: string }> {
  const names = await resolveExtraDebs(arch, [...new Set(packages)].sort(), guestDebs);
  const debs = await unpackedExtraDebs(arch, names, short(hashParts({ arch, names: names.join(' ') })), log);
  const key = hashParts({ version: IMAGE_VERSION, arch, debs: debs.versions.join(' ') });
  const cpio = cachePath('images', `extras-${arch}-${short(key)}.cpio`);
  if (existsSync(cpio)) return { cpio, key };
  await mkdir(cachePath('images'), { recursive: true });
  return withLock(cpio, async () => {
    if (existsSync(cpio)) return { cpio, key };
    const stage = `${cpio}.stage-${process.pid}`;
    await rm(stage, { recursive: true, force: true });
    await cp(debs.root, stage, { recursive: true, verbatimSymlinks: true });
    for (const dir of ['usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/lintian', '.complete']) await rm(join(stage, dir), { recursive: true, force: true });
    // The libraries every program needs must be here or in the base (libc): checked now, not at run time.
    const base = await unpackedDebs(arch, guestDebs, log);
    const union = `${cpio}.union-${process.pid}`;
    await rm(union, { recursive: true, force: true });
    await cp(base.root, union, { recursive: true, verbatimSymlinks: true });
    await cp(stage, union, { recursive: true, verbatimSymlinks: true, force: true });
    try {
      for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin']) {
        const files = existsSync(join(stage, dir)) ? await readdir(join(stage, dir)) : [];
        for (const file of files) {
          const path = join(dir, file);
          if ((await lstat(join(stage, path))).isFile() && (await isElf(join(stage, path)))) await checkLibraries(union, path, names);
        }
      }
    } finally {
      await rm(union, { recursive: true, force: true });
    }
    await makeCpio(stage, `${cpio}.tmp`);
    await rename(`${cpio}.tmp`, cpio);
    await rm(stage, { recursive: true, force: true });
    log(`extra packages for ${arch}: ${names.join(' ')}`);
    return { cpio, key };
  });
}

async function isElf(path: string): Promise<boolean> {
  const head = await readFile(path).then((b) => b.subarray(0, 4));
  return head.toString('latin1') === '\x7fELF';
}

/** Every NEEDED library of `file` resolves in the union of the extras and the base. */
async function checkLibraries(union: string, file: string, names: string[]): Promise<void> {
  try {
    await runtimeClosure(union, file);
  } catch (error) {
    throw new HarnessError(`extra package binary ${file} needs a library none of ${names.join(', ')} ships`, {
      code: 'IMAGE_MISSING_LIBRARY',
      kind: 'input',
      phase: 'image-build',
      excerpt: `${(error as Error).message}\nName the Debian package that ships it under topology.<side>.packages.`,
    });
  }
}

/** Copies `file` (relative) from one root to another, recreating symlinks along the way. */
async function copyPreservingLinks(fromRoot: string, toRoot: string, file: string): Promise<void> {
  const source = join(fromRoot, file);
  const target = join(toRoot, file);
  await mkdir(dirname(target), { recursive: true });
  const info = await lstat(source);
  if (info.isSymbolicLink()) {
    const link = await readlink(source);
    if (!existsSync(target)) await symlink(link, target);
    const next = link.startsWith('/') ? link.slice(1) : join(dirname(file), link);
    await copyPreservingLinks(fromRoot, toRoot, next);
  } else if (!existsSync(target)) {
    await copyFile(source, target);
    await chmod(target, info.mode & 0o7777);
  }
}

/** A newc archive of `stage` with every file owned by root (dropbear checks key file ownership). */
export async function makeCpio(stage: string, out: string): Promise<void> {
  await run('sh', ['-c', `cd '${stage}' && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 > '${out}'`], {
    phase: 'image-build',
    code: 'IMAGE_CPIO',
  });
}
