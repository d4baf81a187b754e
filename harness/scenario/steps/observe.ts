/**
 * One doorbell ring and everything that can be observed about it: the sender's write, the receiver's db
 * (polled until it settles: vntb polls host→EP doorbells every 5 ms, and a TCG guest is ~13x slower),
 * the vector(s) passed to ntb_db_event (dynamic debug and/or kprobe), the host's /proc/interrupts delta
 * and the relay's wire trace. Rings of one slot within a poll tick coalesce, so callers ring, wait,
 * check and clear before the next ring.
 */
import { doorbellEventsSince, kmsgMark, type DoorbellEvent } from '../../ntb/dyndbg.ts';
import { expandCounts, readInterrupts, vectorDeltas } from '../../ntb/interrupts.ts';
import { clearTrace, readDbEventVectors } from '../../ntb/kprobe.ts';
import type { NtbTool } from '../../ntb/ntb-tool.ts';
import type { Rig } from '../rig.ts';
import type { Side } from '../types.ts';

export type Direction = 'host-to-ep' | 'ep-to-host';

export function sides(direction: Direction): { sender: Side; receiver: Side } {
  return direction === 'host-to-ep' ? { sender: 'host', receiver: 'ep' } : { sender: 'ep', receiver: 'host' };
}

export function directions(direction: Direction | 'both'): Direction[] {
  return direction === 'both' ? ['host-to-ep', 'ep-to-host'] : [direction];
}

export interface RingObservation {
  ringOk: boolean;
  ringError?: string;
  /** Receiver's db before the ring and after it settled. */
  baseline: number;
  db: number;
  changed: boolean;
  /** undefined when the channel is unavailable on the receiver. */
  events?: DoorbellEvent[];
  kprobeVectors?: number[];
  /** Host vector indices whose IRQ count rose (host receiver only). */
  msiVectors?: number[];
  /** Host vector indices the relay delivered (EP→host only). */
  wireVectors?: number[];
}

export interface RingOptions {
  /** Expect the receiver's db to change (false: watch the whole quiet period, e.g. for `s 0`). */
  expectChange?: boolean;
  /** Reads of an unchanged db before the value counts as settled (more for multi-bit rings). */
  settlePolls?: number;
}

export async function ringAndObserve(rig: Rig, tools: Record<Side, NtbTool>, direction: Direction, bits: number, options: RingOptions = {}): Promise<RingObservation> {
  const { sender, receiver } = sides(direction);
  const rx = tools[receiver];
  const rxGuest = rig.guest(receiver);
  const { dyndbg, kprobe } = rig.observe[receiver];
  const expectChange = options.expectChange ?? true;

  const baseline = await rx.db();
  const token = dyndbg ? await kmsgMark(rxGuest) : undefined;
  if (kprobe) await clearTrace(rxGuest);
  const irqBefore = receiver === 'host' ? await readInterrupts(rig.host) : undefined;
  const wireMark = receiver === 'host' ? rig.link.mark() : undefined;

  const ring = await tools[sender].ringPeer(bits);
  // A refused ring delivers nothing: a short look is enough to confirm it.
  const waitMs = ring.ok ? rig.ms(expectChange ? 3_000 : 1_000) : rig.ms(300);
  const settled = await rx.waitDb(baseline, waitMs, options.settlePolls ?? 3, expectChange && ring.ok);

  const observation: RingObservation = { ringOk: ring.ok, ringError: ring.error, baseline, db: settled.value, changed: settled.changed };
  if (token) observation.events = await doorbellEventsSince(rxGuest, token, settled.changed ? 1 : 0, rig.ms(1_000));
  if (kprobe) observation.kprobeVectors = await readDbEventVectors(rxGuest);
  if (irqBefore) observation.msiVectors = expandCounts(vectorDeltas(irqBefore, await readInterrupts(rig.host), rig.msiIrqs));
  if (wireMark) observation.wireVectors = expandCounts(rig.link.msiCounts(wireMark));
  return observation;
}

/** Clears everything on the receiver and returns what db reads afterwards (the next ring's baseline). */
export async function resetDb(rx: NtbTool): Promise<number> {
  await rx.clearDb(0xffffffff);
  return rx.db();
}
