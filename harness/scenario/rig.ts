/**
 * Per-cell state shared by the steps: both guests, the configured function, probed capabilities,
 * derived parameters, the host function's address and MSI IRQs, and the NTB client on each side.
 */
import { HarnessError } from '../errors.ts';
import { decideObserved, type Facts } from '../ntb/capabilities.ts';
import type { GuestExec } from '../guest/types.ts';
import type { LinkWitness } from '../link/types.ts';
import { cellTimeoutScale, scaleMs } from '../util/timeouts.ts';
import { enableToolDebug } from '../ntb/dyndbg.ts';
import { useClient, type NtbClient } from '../ntb/modules.ts';
import { NtbTool } from '../ntb/ntb-tool.ts';
import type { PciFunction } from '../ntb/pci.ts';
import type { CellContext } from './context.ts';
import type { Scenario } from './schema.ts';
import { scopedGuest } from './step-scope.ts';
import type { EpfFunction } from './schema-parts.ts';
import type { Side } from '../results/model.ts';

export class Rig {
  readonly ep: GuestExec;
  readonly host: GuestExec;
  readonly link: LinkWitness;
  /** topology: bridge: the EP guest that joins the two hosts (the steps' "ep" side is then host2). */
  readonly bridgeEp?: GuestExec;
  readonly fn: EpfFunction;
  readonly scale: number;
  caps: Record<string, boolean> = {};
  /** What the setup probes found per side, kept to decide observed capabilities once ntb_tool is up. */
  capFacts: Partial<Record<Side, Facts>> = {};
  /** Nh, Ne, class_code and the scenario's params. */
  params: Record<string, number>;
  epc?: string;
  hostFunction?: PciFunction;
  msiIrqs: number[] = [];
  /** Per side, the host function and its MSI IRQs where that side is a host (both sides of a bridge). */
  functions: Partial<Record<Side, { fn: PciFunction; msiIrqs: number[] }>> = {};
  /** /dev/pci-endpoint-test.N once pci_endpoint_test bound (pci-epf-test scenarios). */
  testDevice?: string;
  /** Which observation channels work on each side (set up once per cell). */
  observe: Record<Side, { dyndbg: boolean; kprobe: boolean }> = { ep: { dyndbg: false, kprobe: false }, host: { dyndbg: false, kprobe: false } };
  private clients: Partial<Record<Side, NtbClient>> = {};
  private observed = new Set<Side>();
  private tools: Partial<Record<Side, NtbTool>> = {};

  constructor(
    readonly ctx: CellContext,
    readonly scenario: Scenario,
    readonly cellId: string,
  ) {
    // Each exec carries the calling step's AbortSignal (step-scope.ts).
    this.ep = scopedGuest(ctx.ep);
    this.host = scopedGuest(ctx.host);
    if (ctx.bridge) this.bridgeEp = scopedGuest(ctx.bridge.ep);
    this.link = ctx.link;
    this.fn = scenario.function;
    this.scale = cellTimeoutScale(ctx.timeoutScale, scenario.topology.timeout_scale);
    this.params = { ...scenario.params };
  }

  guest(side: Side): GuestExec {
    return side === 'ep' ? this.ep : this.host;
  }

  /**
   * The link whose MSIs deliver doorbells to `side`, when the relay can witness them: the host's link
   * in a pair (vntb's EP takes doorbells through its BAR, not from the wire); in a bridge, each host's own.
   */
  wireTo(side: Side): LinkWitness | undefined {
    if (this.ctx.bridge) return this.ctx.bridge.links[side];
    return side === 'host' ? this.link : undefined;
  }

  /** Whether `side` is a host with ntb_hw_epf (the host of a pair; both sides of a bridge). */
  isHost(side: Side): boolean {
    return side === 'host' || this.functions[side] !== undefined;
  }

  /** The MSI IRQs of `side`'s host function, index = vector (empty where the side is no host). */
  irqsOf(side: Side): number[] {
    return this.functions[side]?.msiIrqs ?? (side === 'host' ? this.msiIrqs : []);
  }

  /** Every link of the cell (one in a pair, two in a bridge). */
  links(): LinkWitness[] {
    return this.ctx.bridge ? [this.ctx.bridge.links.host, this.ctx.bridge.links.ep] : [this.link];
  }

  /** Every guest of the cell: the two NTB sides, and a bridge's EP between them. */
  guests(): GuestExec[] {
    return this.bridgeEp ? [this.bridgeEp, this.host, this.ep] : [this.ep, this.host];
  }

  /**
   * A check label as a reader should see it: in a bridge the steps' "ep" side is host2, so their
   * directions (ep-to-host, host-to-ep) are named after the hosts.
   */
  relabel(label: string | undefined): string | undefined {
    if (!label || !this.bridgeEp) return label;
    const ep = this.sideName('ep');
    return label.replace(/\bep-to-host\b/g, `${ep}-to-host`).replace(/\bhost-to-ep\b/g, `host-to-${ep}`);
  }

  /** What the results call a side: its guest's name (host2 for the bridge's second host). */
  sideName(side: Side): string {
    return this.guest(side).name;
  }

  /** A timeout scaled for emulation. */
  ms(base: number): number {
    return scaleMs(base, this.scale);
  }

  log(message: string, level: 'debug' | 'info' | 'warn' = 'debug'): void {
    this.ctx.emit({ kind: 'log', level, message, cell: this.cellId });
  }

  /** Makes `client` the NTB client on `side` (unloading ntb_tool etc.); forgets the tool wrapper. */
  async useClient(side: Side, client: NtbClient, params: Record<string, string | number | boolean> = {}): Promise<void> {
    await useClient(this.guest(side), client, params, this.ms(60_000));
    this.clients[side] = client;
    if (client !== 'ntb_tool') delete this.tools[side];
  }

  /** ntb_tool on `side`, loaded if needed, with its debug lines on and the link enabled from this side. */
  async tool(side: Side): Promise<NtbTool> {
    const cached = this.tools[side];
    if (cached && this.clients[side] === 'ntb_tool') return cached;
    const guest = this.guest(side);
    await useClient(guest, 'ntb_tool', {}, this.ms(60_000));
    this.clients[side] = 'ntb_tool';
    if (this.observe[side].dyndbg && !(await enableToolDebug(guest))) this.log(`${side}: could not enable ntb_tool dynamic debug`, 'warn');
    const tool = await NtbTool.open(guest, this.ms(30_000));
    await tool.enableLink();
    this.tools[side] = tool;
    await this.observeCapabilities(side, tool);
    return tool;
  }

  /** Decides `side`'s observed capabilities (docs/doorbells.md) from ntb_tool, once per cell. */
  private async observeCapabilities(side: Side, tool: NtbTool): Promise<void> {
    const facts = this.capFacts[side];
    if (!facts || this.observed.has(side)) return;
    const params = { ...this.params, N: this.vectorsOn(side) ?? -1 };
    const result = await decideObserved(this.scenario.capabilities, side, facts, params, () => tool.dbValidMask());
    this.observed.add(side);
    if (!result) return;
    Object.assign(this.caps, result.values);
    this.ctx.emit({ kind: 'capabilities', cell: this.cellId, guest: this.guest(side).name, values: result.values, unknown: result.unknown, release: result.release });
  }

  /** Both tools with the link up on both sides, or a HarnessError: the precondition of every ntb_tool step. */
  async linkedTools(): Promise<Record<Side, NtbTool>> {
    const ep = await this.tool('ep');
    const host = await this.tool('host');
    // Loaded in turn (the order the link comes up in is part of what runs), watched side by side.
    const up = await Promise.all([ep.waitPeerLink(this.ms(20_000)), host.waitPeerLink(this.ms(20_000))]);
    for (const [n, [side, tool]] of ([['ep', ep], ['host', host]] as const).entries()) {
      if (!up[n]) {
        throw new HarnessError(`the NTB link is not up on the ${side} side (peer0/link stays N)`, { code: 'NTB_LINK_DOWN', kind: 'infra', phase: 'step', guest: tool.guest.name });
      }
    }
    return { ep, host };
  }

  /** After the function left and came back (link-cycle), ntb_tool's directories are new. */
  forgetTools(): void {
    this.tools = {};
  }

  /** The function's parameter N for a side: Nh on the host, Ne on the EP. */
  vectorsOn(side: Side): number | undefined {
    return side === 'host' ? this.params.Nh : this.params.Ne;
  }
}
