import { chmod, mkdir, open, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { repoRoot, shmRoot } from './paths.ts';
import { onTeardown } from './teardown.ts';
import { HarnessError } from '../errors.ts';

export interface RunDirs {
  id: string;
  /** Kept artifacts (results/<id>). */
  dir: string;
  /** tmpfs scratch for RAM files and sockets, removed when the run ends. */
  shm: string;
}

/** Run data is private: directories 0700, RAM files and sockets 0600 (guest memory may hold keys). */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Creates `path` (and missing parents) and makes it 0700 whatever the umask; an existing directory is tightened too. */
export async function makePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  // mkdir's mode is filtered by the umask; chmod is not.
  await chmod(path, PRIVATE_DIR_MODE);
}

/**
 * Creates (or keeps) a file at `path` with mode 0600 whatever the umask. Used for guest RAM files:
 * QEMU opens an existing mem-path file as it is, but would create a missing one 0644.
 */
export async function makePrivateFile(path: string): Promise<void> {
  const handle = await open(path, 'a', PRIVATE_FILE_MODE);
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
  } finally {
    await handle.close();
  }
}

/** Makes an existing socket or file 0600 (UNIX sockets are created through the umask). */
export async function makePrivate(path: string): Promise<void> {
  await chmod(path, PRIVATE_FILE_MODE);
}

/** Creates a run's results directory and its tmpfs scratch directory (cleaned up at teardown), both 0700. */
export async function makeRunDirs(what: string, resultsDir?: string): Promise<RunDirs> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const id = `${stamp}-${what}-${randomBytes(2).toString('hex')}`;
  const dir = resultsDir ? resolve(resultsDir) : join(repoRoot, 'results', id);
  // Sockets live under the scratch dir and a UNIX socket path holds at most 107 bytes: keep its name short.
  const shm = join(shmRoot(), `ntbh-${stamp}-${what.slice(0, 16)}-${id.slice(-4)}`);
  await makePrivateDir(dir);
  await makePrivateDir(shm);
  onTeardown(`scratch ${shm}`, () => rm(shm, { recursive: true, force: true }));
  return { id, dir, shm };
}

/** Longest UNIX socket path the kernel accepts (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

/** A socket path, or a clear error naming it when it cannot be bound (instead of a bare ENOENT later). */
export function checkedSocketPath(path: string): string {
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH) return path;
  throw new HarnessError(`socket path is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH}-byte limit of UNIX sockets: ${path}`, {
    code: 'SOCKET_PATH_TOO_LONG',
    kind: 'input',
    phase: 'boot',
    excerpt: 'Shorten the cell id (kernel variant names), or point NTBH_SHM at a tmpfs directory with a shorter path.',
  });
}
