import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cachePath } from '../util/paths.ts';
import { run } from '../util/proc.ts';
import { withLock } from '../util/lock.ts';
import type { Arch } from '../kernel/spec.ts';

export const debArch: Record<Arch, string> = { x86_64: 'amd64', arm64: 'arm64' };

/** Downloads the guest's .debs for `arch` (once) and unpacks them into one tree; returns its path. */
export async function unpackedDebs(arch: Arch, packages: string[], log: (line: string) => void): Promise<{ root: string; versions: string[] }> {
  const dir = cachePath('debs', debArch[arch]);
  const root = join(dir, 'root');
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
