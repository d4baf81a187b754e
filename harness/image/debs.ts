import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cachePath } from '../util/paths.ts';
import { run } from '../util/proc.ts';
import { withLock } from '../util/lock.ts';
import type { Arch } from '../kernel/spec.ts';

export const debArch: Record<Arch, string> = { x86_64: 'amd64', arm64: 'arm64' };

/** Downloads the guest's .debs for `arch` (once) and unpacks them into one tree; returns its path. */
export function unpackedDebs(arch: Arch, packages: string[], log: (line: string) => void): Promise<{ root: string; versions: string[] }> {
  return unpackInto(arch, packages, 'root', log);
}

/** Downloads (into the arch's .deb cache) and unpacks `packages` into a tree of their own. */
export function unpackedExtraDebs(arch: Arch, packages: string[], key: string, log: (line: string) => void): Promise<{ root: string; versions: string[] }> {
  return unpackInto(arch, packages, `extras-${key}`, log);
}

/** The arch's .deb cache holds every package once; `name` is the tree they are unpacked into (again when one was new). */
async function unpackInto(arch: Arch, packages: string[], name: string, log: (line: string) => void): Promise<{ root: string; versions: string[] }> {
  const dir = cachePath('debs', debArch[arch]);
  const root = join(dir, name);
  await mkdir(dir, { recursive: true });
  return withLock(dir, async () => {
    const have = (await readdir(dir)).filter((name) => name.endsWith('.deb'));
    const missing = packages.filter((pkg) => !have.some((file) => file.startsWith(`${pkg}_`)));
    if (missing.length > 0) {
      log(`downloading ${debArch[arch]} packages: ${missing.join(' ')}`);
      await run('apt-get', ['download', ...missing.map((pkg) => `${pkg}:${debArch[arch]}`)], {
        cwd: dir,
        phase: 'image-build',
        code: 'IMAGE_DEB_DOWNLOAD',
      });
    }
    const debs = (await readdir(dir)).filter((name) => name.endsWith('.deb') && packages.some((pkg) => name.startsWith(`${pkg}_`))).sort();
    if (!existsSync(join(root, '.complete')) || missing.length > 0) {
      await run('rm', ['-rf', root], { phase: 'image-build' });
      await mkdir(root, { recursive: true });
      for (const deb of debs) await run('dpkg-deb', ['-x', join(dir, deb), root], { phase: 'image-build', code: 'IMAGE_DEB_UNPACK' });
      await run('touch', [join(root, '.complete')], { phase: 'image-build' });
    }
    return { root, versions: debs };
  });
}

/**
 * The named packages plus the shared-library packages they depend on (Depends/PreDepends on `lib*`,
 * followed transitively), for `arch`, minus what the base image already has. Other dependencies
 * (maintainer-script helpers such as adduser or debconf) are not needed to run a binary in the guest;
 * the ELF check in the image build names any library still missing.
 */
export async function resolveExtraDebs(arch: Arch, packages: string[], base: string[]): Promise<string[]> {
  const want = new Set<string>();
  const queue = [...packages];
  while (queue.length > 0) {
    const pkg = queue.shift()!;
    if (want.has(pkg) || base.includes(pkg)) continue;
    want.add(pkg);
    const { stdout } = await run('apt-cache', ['depends', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', `${pkg}:${debArch[arch]}`], {
      phase: 'image-build',
      code: 'IMAGE_DEB_RESOLVE',
    });
    for (const dep of parseLibDepends(stdout)) if (!want.has(dep)) queue.push(dep);
  }
  return [...want].sort();
}

/** `lib*` packages named by the Depends/PreDepends lines of `apt-cache depends` (virtual ones skipped). */
export function parseLibDepends(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\|?(?:Pre)?Depends: ([^<\s][^\s]*)$/.exec(line);
    if (!m) continue;
    const name = m[1]!.replace(/:[a-z0-9]+$/, '');
    if (name.startsWith('lib') && !out.includes(name)) out.push(name);
  }
  return out;
}

