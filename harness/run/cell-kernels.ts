/** What results.json records about a cell's kernels, from the kernel cache's metadata. */
import type { KernelArtifact } from '../kernel/build.ts';
import type { KernelSpec } from '../kernel/spec.ts';
import type { CellKernel } from '../results/model.ts';

export function cellKernel(spec: KernelSpec, kernel: KernelArtifact): CellKernel {
  // Debian sources also record what was downloaded (metadata written before that lacks it).
  const source = kernel.metadata.source;
  return {
    release: kernel.release,
    source: source.spec,
    sourceId: source.id,
    ...(source.package ? { package: source.package } : {}),
    ...(source.version ? { version: source.version } : {}),
    ...(source.file ? { file: source.file } : {}),
    ...(source.sha256 ? { sha256: source.sha256 } : {}),
    name: spec.name,
    arch: kernel.arch,
    patches: [...spec.patches],
    fragments: [...spec.fragments],
    key: kernel.key,
  };
}
