/** What results.json records about a cell's kernels, from the kernel cache's metadata. */
import type { KernelArtifact, KernelMetadata } from '../kernel/build.ts';
import type { KernelSpec } from '../kernel/spec.ts';
import type { CellKernel } from '../scenario/types.ts';

/** Debian sources also name the package, its version and the download's sha256 (metadata written since then). */
type SourceMetadata = KernelMetadata['source'] & { package?: string; version?: string; sha256?: string };

export function cellKernel(spec: KernelSpec, kernel: KernelArtifact): CellKernel {
  const source: SourceMetadata = kernel.metadata.source;
  return {
    release: kernel.release,
    source: source.spec,
    sourceId: source.id,
    ...(source.package ? { package: source.package } : {}),
    ...(source.version ? { version: source.version } : {}),
    ...(source.sha256 ? { sha256: source.sha256 } : {}),
    name: spec.name,
    arch: kernel.arch,
    patches: [...spec.patches],
    fragments: [...spec.fragments],
    key: kernel.key,
  };
}
