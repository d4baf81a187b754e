import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { run } from '../util/proc.ts';

const libDirs = ['lib', 'usr/lib', 'lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu'];

/**
 * Files (relative to `root`) a dynamically linked binary needs: its interpreter and every NEEDED
 * library, transitively. readelf reads foreign-arch ELF files, so this works for arm64 on x86.
 */
export async function runtimeClosure(root: string, binary: string): Promise<string[]> {
  const needed = new Set<string>();
  const queue = [binary];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const { stdout } = await run('readelf', ['-d', '-l', '-W', join(root, file)], { phase: 'image-build', code: 'IMAGE_ELF' });
    const interp = /Requesting program interpreter: (\S+)\]/.exec(stdout)?.[1];
    if (interp) needed.add(interp.replace(/^\//, ''));
    for (const match of stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      const lib = match[1]!;
      const found = libDirs.map((dir) => join(dir, lib)).find((candidate) => existsSync(join(root, candidate)));
      if (!found) {
        throw new HarnessError(`${file} needs ${lib}, which is in none of the guest packages`, {
          code: 'IMAGE_MISSING_LIBRARY',
          kind: 'infra',
          phase: 'image-build',
          excerpt: 'Add the Debian package that ships it to guestDebs in harness/setup/packages.ts.',
        });
      }
      needed.add(found);
      queue.push(found);
    }
  }
  return [...needed];
}

/** Resolves a path inside `root` through symlinks that are absolute in the guest's view. */
export function resolveInRoot(root: string, path: string): string {
  let current = join(root, path);
  for (let i = 0; i < 8; i++) {
    try {
      return realpathSync(current);
    } catch {
      break;
    }
  }
  return current;
}
