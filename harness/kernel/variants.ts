import type { KernelSpec } from './spec.ts';

/** The built-in variants (kernel-patches/README.md): Debian 6.12 as shipped, and our two patch sets on it. */
export const builtinVariants: Record<string, KernelSpec> = {
  stock: { name: 'stock', source: { kind: 'debian', version: '6.12' }, patches: [], fragments: [] },
  old: { name: 'old', source: { kind: 'debian', version: '6.12' }, patches: ['old'], fragments: [] },
  new: { name: 'new', source: { kind: 'debian', version: '6.12' }, patches: ['new'], fragments: [] },
  'stock-6.1': { name: 'stock-6.1', source: { kind: 'debian', version: '6.1' }, patches: [], fragments: [] },
};
