import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { repoRoot, shmRoot } from './paths.ts';
import { onTeardown } from './teardown.ts';

export interface RunDirs {
  id: string;
  /** Kept artifacts (results/<id>). */
  dir: string;
  /** tmpfs scratch for RAM files and sockets, removed when the run ends. */
  shm: string;
}

/** Creates a run's results directory and its tmpfs scratch directory (cleaned up at teardown). */
export async function makeRunDirs(what: string, resultsDir?: string): Promise<RunDirs> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const id = `${stamp}-${what}-${randomBytes(2).toString('hex')}`;
  const dir = resultsDir ? resolve(resultsDir) : join(repoRoot, 'results', id);
  const shm = join(shmRoot(), `ntbh-${id}`);
  await mkdir(dir, { recursive: true });
  await mkdir(shm, { recursive: true });
  onTeardown(`scratch ${shm}`, () => rm(shm, { recursive: true, force: true }));
  return { id, dir, shm };
}
