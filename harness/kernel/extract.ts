/** A kernel source unpacked once into the cache (shared by the Debian and git sources). */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cachePath } from '../util/paths.ts';
import { withLock } from '../util/lock.ts';

/** Unpacks into a temporary directory and renames into place, so a half-unpacked tree is never used. */
export async function extractOnce(dir: string, log: (line: string) => void, what: string, unpack: (tmp: string) => Promise<string>): Promise<void> {
  if (existsSync(join(dir, 'Makefile'))) return;
  await mkdir(cachePath('src'), { recursive: true });
  await withLock(dir, async () => {
    if (existsSync(join(dir, 'Makefile'))) return;
    log(what);
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const root = await unpack(tmp);
    await rename(root, dir);
    await rm(tmp, { recursive: true, force: true });
  });
}
