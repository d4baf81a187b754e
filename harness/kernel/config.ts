import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { repoRoot } from '../util/paths.ts';
import type { Arch } from './spec.ts';

export interface Fragment {
  path: string;
  content: string;
}

/** Built-in fragments for an arch: guest basics, the code under test, then arch specifics. */
export function builtinFragments(arch: Arch): string[] {
  return ['common.config', 'ntb-epf.config', `${arch}.config`].map((name) => join(repoRoot, 'kernel-configs', name));
}

export async function loadFragments(paths: string[]): Promise<Fragment[]> {
  return Promise.all(
    paths.map(async (path) => {
      const full = isAbsolute(path) ? path : join(repoRoot, path);
      return { path: full, content: await readFile(full, 'utf8') };
    }),
  );
}

/** "CONFIG_X=y" / "# CONFIG_X is not set" lines → map of symbol to value ("n" for not set). */
export function parseConfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) values.set(set[1]!, set[2]!);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) values.set(unset[1]!, 'n');
  }
  return values;
}

/** Requested symbols that did not end up with the requested value (a missing dependency, a typo). */
export function configMismatches(fragments: Fragment[], merged: string): string[] {
  const actual = parseConfig(merged);
  const problems: string[] = [];
  for (const fragment of fragments) {
    for (const [symbol, wanted] of parseConfig(fragment.content)) {
      const got = actual.get(symbol) ?? 'n';
      if (got !== wanted) problems.push(`${symbol}=${wanted} requested in ${fragment.path.split('/').pop()}, got ${got}`);
    }
  }
  return problems;
}
