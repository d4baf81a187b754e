/** Results of a run, shared by the executor, the reporters and results.json. */

/** KernelCI-like vocabulary plus the xfail pair. */
export type Status = 'PASS' | 'FAIL' | 'XFAIL' | 'XPASS' | 'ERROR' | 'SKIP';
export const STATUSES: readonly Status[] = ['PASS', 'FAIL', 'XFAIL', 'XPASS', 'ERROR', 'SKIP'];

/** A measured value as it appears in results.json. */
export type Value = number | boolean | string | null | Value[] | { [key: string]: Value };

export type Side = 'ep' | 'host';

/** One observation a step made; the expectation engine turns it into a CheckResult. */
export interface Measurement {
  /** Check name, e.g. "db", "vector", "msi_index"; the key used in `expect: {<step>.<check>: …}`. */
  check: string;
  /** The guest whose observation this is (the receiver, for doorbells). */
  on?: Side;
  /** Parameters of this observation, usable in expressions: i, B, k, w, n, size, ... */
  params?: Record<string, number>;
  /** Short label that makes the check id unique within the step, e.g. "host-to-ep bit 3". */
  label?: string;
  value: Value;
  /** Why the value could not be observed: the check becomes SKIP. */
  unavailable?: string;
  /** An infrastructure problem while observing: the check becomes ERROR. */
  error?: string;
  /** Context for a reader (the kernel's error text, the raw line), appended to the check's message. */
  detail?: string;
}

export interface CheckResult {
  /** Unique within the step: `check` or `check[label]`. */
  id: string;
  check: string;
  status: Status;
  on?: Side;
  params?: Record<string, number>;
  value: Value;
  /** What the spec says (value, or the predicate's text). */
  expected?: Value;
  /** The known (old-kernel) value when an xfail applied. */
  known?: Value;
  /** The xfail reason, or the failure / skip / error explanation. */
  message?: string;
}

export interface SplatRecord {
  guest: string;
  /** Normalized: equal for the same splat across runs. */
  title: string;
  /** The console line as printed (timestamp removed). */
  rawTitle?: string;
  kind: string;
  excerpt: string;
  /** True when the scenario expected it in this cell (XFAIL evidence). */
  expected: boolean;
}

export interface StepResult {
  id: string;
  type: string;
  status: Status;
  durationMs: number;
  /** Measured values keyed by check id. */
  values: Record<string, Value>;
  checks: CheckResult[];
  splats: SplatRecord[];
  /** /proc/sys/kernel/tainted before and after, per guest, when it changed. */
  taint?: Record<string, { before: number; after: number; flags: string }>;
  message?: string;
}

/** One guest's kernel: what was built (the cache's metadata) and the release the guest booted. */
export interface CellKernel {
  /** `uname -r` in the guest; the build's kernelrelease when the cell never got to ask. */
  release: string;
  /** The source as the scenario gave it: debian:7.2, git:<url>@<ref>, path:<dir>. */
  source: string;
  /** The source's identity: Debian package and version, the commit, the tree's state (+dirty:<hash>). */
  sourceId: string;
  /** Debian sources: the package, its version, the file downloaded and its sha256 (from apt's signed index). */
  package?: string;
  version?: string;
  file?: string;
  sha256?: string;
  /** Variant name, e.g. stock, new, r7.2. */
  name: string;
  arch: string;
  /** The variant's patch sets and config fragments. */
  patches: string[];
  fragments: string[];
  /** The kernel cache key: the hash of every build input (the artifact is kernels/<arch>-<name>-<key prefix>). */
  key: string;
}

/** Per guest: ep and host, and host2 in a bridge (which boots the host's kernel). */
export type CellKernels = Partial<Record<Side | 'host2', CellKernel>>;

export interface CellResult {
  id: string;
  ep: string;
  host: string;
  /** The kernels the cell booted (a side is missing when its kernel could not be built). */
  kernels?: CellKernels;
  /**
   * Guests of the cell and, where a side's guest is not named like the side, who it is: in a bridge
   * (three guests: ep, host, host2) the NTB sides are the two hosts and side "ep" is host2.
   */
  guests?: string[];
  sides?: Partial<Record<Side, string>>;
  status: Status;
  durationMs: number;
  capabilities: Record<string, boolean>;
  /** Derived parameters of the cell: Nh, Ne, ... */
  params: Record<string, number>;
  steps: StepResult[];
  /** Where the cell's time went, in order: infrastructure phases (boot, modules, probe, ...), then steps. */
  phases?: CellPhase[];
  message?: string;
}

export interface CellPhase {
  /** boot, boot-ready, boot-ssh, modules, probe, function-setup, step:<id>, teardown, ... */
  name: string;
  ms: number;
  /** Set when the phase belongs to one guest (per-guest boot times). */
  guest?: string;
}

export interface InteropGroup {
  /** The direction of the rings compared: the receiver is the side that observed them. */
  direction: 'host-to-ep' | 'ep-to-host';
  receiver: Side;
  /** Variant name of the receiver's kernel. */
  variant: string;
  /** The step whose rings were compared (a scenario may ring in several steps). */
  step?: string;
  status: Status;
  /** Sender variants compared. */
  senders: string[];
  message?: string;
}

export interface InteropResult {
  status: Status;
  groups: InteropGroup[];
}

export interface RunResult {
  scenario: string;
  file?: string;
  status: Status;
  strict: boolean;
  exitCode: number;
  startedAt: string;
  durationMs: number;
  totals: Record<Status, number>;
  interop: InteropResult;
  cells: CellResult[];
  message?: string;
}
