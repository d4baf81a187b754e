import type { FaultPlan } from './faults.ts';

/** What the relay (harness/link/relay.ts) tells the rest of the harness about one link. */
export interface WireEvent {
  /** Milliseconds since the relay started (monotonic). */
  t: number;
  link: number;
  /** Who sent it: the EP device, the RC device, or the relay itself. */
  from: 'ep' | 'rc' | 'relay';
  type: string;
  [field: string]: unknown;
}

export interface MsiDelivery {
  /** MSI number on the wire (1-based, as pci_epc_raise_irq() counts). */
  number: number;
  /** Host vector index = number - 1. */
  vector: number;
  /** "delivered", "msi-disabled", "out-of-range", "no-bus-master", "masked", "not-plugged". */
  result: string;
  /** How it crossed the link: a RAISE_IRQ message, or the EP's memory write to the MSI address. */
  path?: 'message' | 'write';
}

export interface LinkWitness {
  readonly linkId: number;
  /** Delivered MSIs per host vector index since the relay started (or since the last mark). */
  msiCounts(since?: WireMark): Map<number, number>;
  /** Every RAISE_IRQ outcome since `since`. */
  msiDeliveries(since?: WireMark): MsiDelivery[];
  /** A point in the trace to measure deltas from. */
  mark(): WireMark;
  /** Events since a mark, for reports. */
  events(since?: WireMark): WireEvent[];
  /** True while the RC function is plugged (link up). */
  readonly linkUp: boolean;
  /** MSI fault injection (faults.ts); absent on a witness that cannot inject. */
  readonly faults?: FaultPlan;
}

export interface WireMark {
  readonly index: number;
}
