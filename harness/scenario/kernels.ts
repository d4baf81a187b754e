/**
 * Kernel variants a scenario can name without declaring them, and the mapping of a scenario's variant
 * to the builder's KernelSpec.
 *   old   — both drivers pre-series (kernel-patches/old takes Debian's host-side backport back out)
 *   stock — Debian's linux-source-6.12 as shipped: host-side backport minus db_vector_count/mask, vntb old
 *   new   — the whole series on both sides (kernel-patches/new)
 */
import { HarnessError } from '../errors.ts';
import type { KernelSource, KernelSpec } from '../kernel/spec.ts';

export interface KernelVariant {
  source: string | { git: string; ref: string } | { path: string };
  patches: string[];
  fragments: string[];
}

export const BUILTIN_KERNELS: Readonly<Record<string, KernelVariant>> = {
  old: { source: 'debian:6.12', patches: ['old'], fragments: [] },
  stock: { source: 'debian:6.12', patches: [], fragments: [] },
  new: { source: 'debian:6.12', patches: ['new'], fragments: [] },
};

export function toKernelSource(source: KernelVariant['source']): KernelSource {
  if (typeof source === 'string') return { kind: 'debian', version: source.replace(/^debian:/, '') };
  if ('git' in source) return { kind: 'git', url: source.git, ref: source.ref };
  return { kind: 'path', path: source.path };
}

/** The KernelSpec for a variant name: the scenario's own definition wins over the built-in one. */
export function resolveKernel(scenario: { kernels: Record<string, KernelVariant> }, name: string): KernelSpec {
  const variant = scenario.kernels[name] ?? BUILTIN_KERNELS[name];
  if (!variant) {
    throw new HarnessError(`unknown kernel variant '${name}'`, { code: 'SCENARIO_INVALID', kind: 'input', phase: 'scenario' });
  }
  return { name, source: toKernelSource(variant.source), patches: [...variant.patches], fragments: [...variant.fragments] };
}
