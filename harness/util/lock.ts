import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A directory lock shared between harness processes (two CI jobs on one cache). A lock whose owner
 * pid is gone is taken over.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, onWait?: (owner: string) => void): Promise<T> {
  const lockDir = `${path}.lock`;
  let warned = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = (await readFile(join(lockDir, 'pid'), 'utf8').catch(() => '')).trim();
      if (owner && !isAlive(Number(owner))) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!warned && onWait) onWait(owner || '?');
      warned = true;
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
