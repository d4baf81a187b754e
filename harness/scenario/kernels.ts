/**
 * Maps a scenario's kernel variant names to the builder's KernelSpec. Names the scenario does not
 * declare fall back to the harness's built-in variants (harness/kernel/variants.ts):
 *   old   — both drivers pre-series        stock — Debian 6.12 as shipped (host backport, vntb old)
 *   new   — the whole series on both sides
 */
import { HarnessError } from '../errors.ts';
import type { KernelSource, KernelSpec } from '../kernel/spec.ts';
import { builtinVariants } from '../kernel/variants.ts';

/** A variant as a scenario declares it (the schema's shape). */
export interface KernelVariant {
  source: string | { git: string; ref: string } | { path: string };
  patches: string[];
  fragments: string[];
}

export const BUILTIN_KERNELS: Readonly<Record<string, KernelSpec>> = builtinVariants;

export function toKernelSource(source: KernelVariant['source']): KernelSource {
  if (typeof source === 'string') return { kind: 'debian', version: source.replace(/^debian:/, '') };
  if ('git' in source) return { kind: 'git', url: source.git, ref: source.ref };
  return { kind: 'path', path: source.path };
}

/** The KernelSpec for a variant name: the scenario's own definition wins over the built-in one. */
export function resolveKernel(scenario: { kernels: Record<string, KernelVariant> }, name: string): KernelSpec {
  const declared = Object.hasOwn(scenario.kernels, name) ? scenario.kernels[name] : undefined;
  if (declared) return { name, source: toKernelSource(declared.source), patches: [...declared.patches], fragments: [...declared.fragments] };
  const builtin = Object.hasOwn(BUILTIN_KERNELS, name) ? BUILTIN_KERNELS[name] : undefined;
  if (!builtin) throw new HarnessError(`unknown kernel variant '${name}'`, { code: 'SCENARIO_INVALID', kind: 'input', phase: 'scenario' });
  return { ...builtin, source: { ...builtin.source }, patches: [...builtin.patches], fragments: [...builtin.fragments] };
}
