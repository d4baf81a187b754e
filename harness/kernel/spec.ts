/** Where a kernel comes from and how it is varied. Shared by scenarios, the CLI and the builder. */
export type KernelSource =
  | { kind: 'debian'; version: string } // linux-source-<version> from Debian, e.g. "6.12"
  | { kind: 'git'; url: string; ref: string } // a git repository (local path or URL the machine can reach) + ref
  | { kind: 'path'; path: string }; // a local kernel tree, used as is

export type Arch = 'x86_64' | 'arm64';

export interface KernelSpec {
  /** Variant name used in cell ids and reports: "old", "stock", "new", or a user's own. */
  name: string;
  source: KernelSource;
  /** Patch-set directories: names under kernel-patches/ or absolute paths; applied in order. */
  patches: string[];
  /** Extra config fragment files (absolute or relative to the repo), merged after the built-in ones. */
  fragments: string[];
}

/** A kernel source made ready on disk (harness/kernel/source.ts, debian.ts). */
export interface ResolvedSource {
  /** Identity for cache keys: changes whenever the tree's content may change. */
  id: string;
  /** The pristine tree (never modified for debian/git sources). */
  dir: string;
  /** True when the tree is the user's own and must not be patched or copied. */
  external: boolean;
  /** Human label, e.g. "debian linux-source-6.12 6.12.117-1~deb12u1". */
  label: string;
  /** For debian: sources, what was downloaded (recorded in the kernel's metadata.json). */
  provenance?: SourceProvenance;
}

export interface SourceProvenance {
  /** Debian package: linux-source-X.Y (binary) or linux (source package). */
  package: string;
  /** Debian version, e.g. 7.2.13-1. */
  version: string;
  /** Upstream kernel release, e.g. 7.2.13. */
  upstream: string;
  /** The file downloaded (.deb or .orig tarball) and its SHA256 from apt's signed index. */
  file: string;
  sha256: string;
  /** The suite(s) that carry that version. */
  suite: string;
}
