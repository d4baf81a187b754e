import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { HarnessError } from '../errors.ts';
import { repoRoot } from '../util/paths.ts';
import { sha256 } from '../util/hash.ts';

export interface PatchFile {
  path: string;
  sha256: string;
  /** Files the patch touches (paths relative to the tree, from its +++/--- lines). */
  files: string[];
  content: string;
}

/**
 * A patch set is a directory of *.patch files applied in name order. A subdirectory named after the
 * kernel's major.minor (e.g. "6.1") replaces the top-level patches for that kernel line.
 */
export async function loadPatchSet(nameOrPath: string, kernelSeries: string): Promise<PatchFile[]> {
  const dir = isAbsolute(nameOrPath) ? nameOrPath : join(repoRoot, 'kernel-patches', nameOrPath);
  if (!existsSync(dir)) {
    throw new HarnessError(`patch set "${nameOrPath}" not found (looked in ${dir})`, {
      code: 'PATCH_SET_MISSING',
      kind: 'input',
      phase: 'kernel-build',
    });
  }
  const seriesDir = join(dir, kernelSeries);
  const from = existsSync(seriesDir) ? seriesDir : dir;
  const names = (await readdir(from)).filter((name) => name.endsWith('.patch')).sort();
  return Promise.all(
    names.map(async (name) => {
      const path = join(from, name);
      const content = await readFile(path, 'utf8');
      return { path, sha256: sha256(content), files: touchedFiles(content), content };
    }),
  );
}

export function touchedFiles(patch: string): string[] {
  const files = new Set<string>();
  for (const line of patch.split('\n')) {
    const match = /^(?:\+\+\+|---) (?:[ab]\/)?(\S+)/.exec(line);
    if (match && match[1] !== '/dev/null') files.add(match[1]!);
  }
  return [...files].sort();
}
