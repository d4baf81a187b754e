import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file lives in harness/util/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Heavy artifacts (sources, kernels, images, QEMU) live here, outside the repo. */
export function cacheRoot(): string {
  if (process.env.NTBH_CACHE) return resolve(process.env.NTBH_CACHE);
  const xdg = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(xdg, 'ntbh');
}

export function cachePath(...parts: string[]): string {
  return join(cacheRoot(), ...parts);
}

/** Scratch space for one run's shared RAM files and sockets: tmpfs, removed at teardown. */
export function shmRoot(): string {
  return process.env.NTBH_SHM ?? '/dev/shm';
}
