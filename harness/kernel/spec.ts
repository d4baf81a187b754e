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
