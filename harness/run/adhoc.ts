/**
 * `ntbh run <scenario> --ep X --host Y`: a scenario's steps on kernels chosen on the command line. Each
 * side is a variant name (the scenario's or a built-in) or a kernel source (debian:7.2,
 * git:/src/linux@v7.2, path:/src/linux); a source becomes a `kernels:` entry of the scenario under a
 * readable name, and the matrix becomes the single cell ep × host, so everything downstream (builds,
 * cell ids, reports) works as for a YAML-declared variant.
 */
import { basename } from 'node:path';
import { HarnessError } from '../errors.ts';
import { describeSource, parseKernelSource } from '../kernel/source.ts';
import type { KernelSource } from '../kernel/spec.ts';
import { BUILTIN_KERNELS, toKernelSource, type KernelVariant } from '../scenario/kernels.ts';
import type { Scenario } from '../scenario/schema.ts';
import { sha256 } from '../util/hash.ts';

export interface AdHocSelection {
  ep?: string;
  host?: string;
}

const SOURCE_PREFIX = /^(debian|git|path):/;

/** True when the text names a kernel source rather than a variant. */
export function isSourceText(text: string): boolean {
  return SOURCE_PREFIX.test(text);
}

/**
 * Variant names become cell ids: lower-case letters, digits, ".", "-" and single "_" separators. Kept
 * short: a cell id is part of the link's unix socket paths under /dev/shm (108 bytes at most).
 */
export function sanitizeVariantName(text: string, max = 24): string {
  let name = text
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '_')
    .replace(/^[^a-z0-9]+|_+$/g, '');
  if (!name) name = 'kernel';
  if (name.length > max) name = `${name.slice(0, max - 9).replace(/[_.-]+$/, '')}_${sha256(text).slice(0, 8)}`;
  return name;
}

/**
 * A short readable name for a source: debian_7.2, git_v7.2, git_0123456789ab (a commit), path_linux.
 * The repository is not named (the ref says what matters; two repositories with the same ref in one
 * cell get a hash suffix, see adHocScenario).
 */
export function variantNameForSource(source: KernelSource): string {
  if (source.kind === 'debian') return sanitizeVariantName(`debian_${source.version}`);
  if (source.kind === 'git') return sanitizeVariantName(`git_${/^[0-9a-f]{40}$/.test(source.ref) ? source.ref.slice(0, 12) : source.ref}`);
  return sanitizeVariantName(`path_${basename(source.path)}`);
}

function toVariant(source: KernelSource): KernelVariant {
  const declared: KernelVariant['source'] =
    source.kind === 'debian' ? `debian:${source.version}` : source.kind === 'git' ? { git: source.url, ref: source.ref } : { path: source.path };
  return { source: declared, patches: [], fragments: [] };
}

function sameSource(variant: KernelVariant, source: KernelSource): boolean {
  return variant.patches.length === 0 && variant.fragments.length === 0 && describeSource(toKernelSource(variant.source)) === describeSource(source);
}

/**
 * The scenario reduced to the single cell (ep × host); the side not given is `stock`. Sources are added
 * to `kernels:` (a name already taken by something else gets a hash suffix).
 */
export function adHocScenario(scenario: Scenario, selection: AdHocSelection): Scenario {
  const kernels: Record<string, KernelVariant> = { ...scenario.kernels };
  const pick = (side: 'ep' | 'host', text: string | undefined): string => {
    if (text === undefined || text === '') return 'stock';
    if (!isSourceText(text)) {
      if (Object.hasOwn(kernels, text) || Object.hasOwn(BUILTIN_KERNELS, text)) return text;
      throw new HarnessError(`--${side} ${text}: no such kernel variant`, {
        code: 'BAD_VARIANT',
        kind: 'input',
        phase: 'scenario',
        excerpt: `Give a variant (${[...new Set([...Object.keys(BUILTIN_KERNELS), ...Object.keys(scenario.kernels)])].join(', ')}) or a source: debian:<version>, git:<repo>@<ref>, path:<tree>.`,
      });
    }
    const source = parseKernelSource(text);
    let name = variantNameForSource(source);
    const taken = (n: string) => (Object.hasOwn(kernels, n) && !sameSource(kernels[n]!, source)) || (!Object.hasOwn(kernels, n) && Object.hasOwn(BUILTIN_KERNELS, n));
    if (taken(name)) name = sanitizeVariantName(`${name}_${sha256(describeSource(source)).slice(0, 8)}`);
    kernels[name] = toVariant(source);
    return name;
  };
  const ep = pick('ep', selection.ep);
  const host = pick('host', selection.host);
  return { ...scenario, kernels, matrix: { ep: [ep], host: [host], include: [], exclude: [] } };
}
