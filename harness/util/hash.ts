import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Stable hash of a list of labelled parts; the labels keep ("ab","c") apart from ("a","bc"). */
export function hashParts(parts: Record<string, string | Buffer>): string {
  const h = createHash('sha256');
  for (const key of Object.keys(parts).sort()) {
    const value = parts[key]!;
    h.update(`${key}\0${Buffer.byteLength(value)}\0`);
    h.update(value);
  }
  return h.digest('hex');
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function hashFile(path: string): Promise<string> {
  return sha256(await readFile(path));
}

/** Hash of every regular file under `dir` (path + content), ignoring build output. */
export async function hashTree(dir: string, ignore: RegExp = /(\.o|\.ko|\.cmd|\.mod|\.mod\.c|\.symvers|\.order)$/): Promise<string> {
  const parts: Record<string, Buffer> = {};
  async function walk(current: string): Promise<void> {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && !ignore.test(entry.name)) parts[relative(dir, full)] = await readFile(full);
    }
  }
  if ((await stat(dir).catch(() => null))?.isDirectory()) await walk(dir);
  return hashParts(parts);
}

export function short(hash: string): string {
  return hash.slice(0, 16);
}
