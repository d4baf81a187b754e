import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { repoRoot } from '../util/paths.ts';
import type { Arch } from './spec.ts';

export interface Fragment {
  path: string;
  content: string;
}

/**
 * Built-in fragments for an arch: guest basics, the code under test, then arch specifics; then, for a
 * kernel series ("7.3"), the same names from every kernel-configs/since-X.Y/ with X.Y <= series, oldest
 * first, for symbols a release renamed or added (kernel-configs/README.md).
 */
export function builtinFragments(arch: Arch, series?: string): string[] {
  const names = ['common.config', 'ntb-epf.config', `${arch}.config`];
  const root = join(repoRoot, 'kernel-configs');
  const base = names.map((name) => join(root, name));
  const wanted = /^(\d+)\.(\d+)$/.exec(series ?? '');
  if (!wanted) return base;
  const key = (major: string, minor: string) => Number(major) * 1000 + Number(minor);
  const since = readdirSync(root)
    .map((dir) => ({ dir, m: /^since-(\d+)\.(\d+)$/.exec(dir) }))
    .filter((d) => d.m && key(d.m[1]!, d.m[2]!) <= key(wanted[1]!, wanted[2]!))
    .sort((a, b) => key(a.m![1]!, a.m![2]!) - key(b.m![1]!, b.m![2]!));
  return [...base, ...since.flatMap(({ dir }) => names.map((name) => join(root, dir, name)).filter((path) => existsSync(path)))];
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

/** "common.config", or "since-7.3/common.config" for a release-specific one. */
function fragmentName(path: string): string {
  const [dir, file] = path.split('/').slice(-2);
  return dir?.startsWith('since-') ? `${dir}/${file}` : file!;
}

/**
 * Requested symbols that did not end up with the requested value (a missing dependency, a typo, a
 * symbol renamed or gone). As in merge_config.sh, a later fragment's request for a symbol replaces an
 * earlier one: a since-X.Y fragment can withdraw a name its release dropped ("# CONFIG_X is not set").
 */
export function configMismatches(fragments: Fragment[], merged: string): string[] {
  const actual = parseConfig(merged);
  const requested = new Map<string, { wanted: string; from: string }>();
  for (const fragment of fragments) {
    for (const [symbol, wanted] of parseConfig(fragment.content)) {
      requested.delete(symbol); // keep first-request order for the others, move this one to its last request
      requested.set(symbol, { wanted, from: fragmentName(fragment.path) });
    }
  }
  const problems: string[] = [];
  for (const [symbol, { wanted, from }] of requested) {
    const got = actual.get(symbol) ?? 'n';
    if (got !== wanted) problems.push(`${symbol}=${wanted} requested in ${from}, got ${got}`);
  }
  return problems;
}
