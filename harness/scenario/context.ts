/**
 * What the runner hands the executor for one cell: both guests, the link's witness, the event sink and
 * the console monitor's splats. The runner boots the pair through the link; the executor drives it.
 */
import type { HarnessEvent } from '../events.ts';
import type { GuestExec } from '../guest/types.ts';
import type { LinkWitness } from '../link/types.ts';
import type { Splat } from './splats.ts';
import type { BuiltKernel } from '../ntb/build-facts.ts';
import type { Side } from '../results/model.ts';

export type { Splat } from './splats.ts';

export interface CellContext {
  /** The NTB peer the steps call "ep": the EP guest, or in a bridge the second host (host2). */
  ep: GuestExec;
  host: GuestExec;
  /** The link whose MSIs reach `host`. */
  link: LinkWitness;
  /**
   * topology: bridge. `host` and `ep` (host2) are the two hosts pci-epf-ntb joins; the EP guest between
   * them, its controllers (primary towards host, secondary towards host2) and the link into each host.
   */
  bridge?: { ep: GuestExec; epcNames: readonly [string, string]; links: Record<Side, LinkWitness> };
  emit(event: HarnessEvent): void;
  /** An opaque point in both guests' console streams. */
  consoleMark(): unknown;
  /**
   * Splats seen on either console since `mark`. Called after the step's "ntbh: end step <id>" kmsg
   * marker was written: the implementation should wait (bounded) until that marker has reached the
   * console of each live guest, so a splat still in flight is not missed.
   */
  splatsSince(mark: unknown, stepId: string): Promise<Splat[]>;
  /** Why the splats since `mark` may be incomplete (e.g. a console never showed the end marker); empty if complete. */
  splatGaps?(mark: unknown, stepId: string): string[];
  /** Multiplies every guest-side timeout (TCG guests run ~13x slower than hardware). */
  timeoutScale: number;
  /** Stops (true) or resumes (false) a guest's vCPUs through QMP (fault steps); absent where unsupported. */
  pause?(side: 'ep' | 'host', paused: boolean): Promise<void>;
  /** Each side's kernel build, for facts read on the outer machine (capabilities); absent in fakes. */
  kernels?: Partial<Record<Side, BuiltKernel>>;
  /** Set when a guest is gone (QEMU exited, fatal panic): the executor stops at once with this reason. */
  aborted?(): string | undefined;
}
