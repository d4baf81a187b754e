/**
 * One doorbell ring and everything that can be observed about it: the sender's write, the receiver's db
 * (polled until it settles: vntb polls host→EP doorbells every 5 ms, and a TCG guest is ~13x slower),
 * the vector(s) passed to ntb_db_event (dynamic debug and/or kprobe), the host's /proc/interrupts delta
 * and the relay's wire trace. Rings of one slot within a poll tick coalesce, so callers ring, wait,
 * check and clear before the next ring.
 */
import { markScript, newMarkToken, parseDoorbellEvents, sinceScript, type DoorbellEvent } from '../../ntb/dyndbg.ts';
import { expandCounts, parseInterrupts, vectorDeltas, type IrqLine } from '../../ntb/interrupts.ts';
import { clearTraceScript, parseDbEventTrace, readTraceScript } from '../../ntb/kprobe.ts';
import { parseWaitDb, type NtbTool } from '../../ntb/ntb-tool.ts';
import { hex, parseKernelInt, run, sq } from '../../ntb/shell.ts';
import type { Rig } from '../rig.ts';
import type { Measurement, Side } from '../../results/model.ts';
import { Out } from './util.ts';

export type Direction = 'host-to-ep' | 'ep-to-host';

export function sides(direction: Direction): { sender: Side; receiver: Side } {
  return direction === 'host-to-ep' ? { sender: 'host', receiver: 'ep' } : { sender: 'ep', receiver: 'host' };
}

export function directions(direction: Direction | 'both'): Direction[] {
  return direction === 'both' ? ['host-to-ep', 'ep-to-host'] : [direction];
}

/**
 * Whether eachDirection may run both directions at once: then each guest runs two commands at the same
 * time (its ring for one direction, its watch for the other). Each command has an SSH connection of its
 * own (guest/ssh.ts, MAX_CONNECTIONS): the guests' dropbear (bookworm's 2022.83) races between channels
 * of one connection (upstream mkj/dropbear#321), which refused execs or killed the connection when two
 * commands shared it.
 */
export const DIRECTIONS_SIDE_BY_SIDE = true;

/**
 * Runs `body` for each direction, side by side unless options.inTurn (default: !DIRECTIONS_SIDE_BY_SIDE).
 * host→EP and EP→host are independent paths (other sender, receiver, vectors and relay counters), so a
 * step that checks both need not wait for one to end before the other starts. Each direction keeps its own order; its measurements go into `out` as they
 * come (a step that is stopped half-way keeps them) and are put back in direction order at the end.
 * Every direction runs to its end even when another fails; the first failure is then rethrown.
 */
export async function eachDirection(out: Out, list: Direction[], body: (direction: Direction, out: Out) => Promise<void>, options: { inTurn?: boolean } = {}): Promise<void> {
  if (options.inTurn ?? !DIRECTIONS_SIDE_BY_SIDE) {
    for (const direction of list) await body(direction, out);
    return;
  }
  const start = out.list.length;
  const owner = new Map<Measurement, number>();
  const outs = list.map(
    (_, n) =>
      new (class extends Out {
        override add(...args: Parameters<Out['add']>): void {
          super.add(...args);
          owner.set(this.list[this.list.length - 1]!, n);
        }
        override unavailable(...args: Parameters<Out['unavailable']>): void {
          super.unavailable(...args);
          owner.set(this.list[this.list.length - 1]!, n);
        }
      })(out.list),
  );
  const settled = await Promise.allSettled(list.map((direction, n) => body(direction, outs[n]!)));
  const added = out.list.splice(start);
  const rank = (m: Measurement) => owner.get(m) ?? list.length;
  // Array.prototype.sort is stable: within a direction the order stays as recorded.
  out.list.push(...added.sort((a, b) => rank(a) - rank(b)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A host whose doorbell handler calls pci_irq_vector() (a mutex) in hard-irq context (docs/doorbells.md
 * H5; capability host.epf_irq_ctx false) reports it as "sleeping function called from invalid context"
 * and, when the MSI happens to land while a task is between prepare-to-wait and schedule(), also as a
 * once-per-boot "do not call blocking ops when !TASK_RUNNING" WARNING. Whether that second report shows
 * depends on how busy the host is when MSIs arrive, so rings to such a host keep the earlier timing: one
 * thing at a time, the ring before the watch (the first run with both at once saw the WARNING in sweep).
 */
export function hostSleepsInIrq(rig: Rig): boolean {
  return rig.caps['host.epf_irq_ctx'] === false;
}

/** Whether a ring toward `receiver` may go out while the receiver already watches (see hostSleepsInIrq). */
export function mayRingWhileWatching(rig: Rig, receiver: Side): boolean {
  return !(rig.isHost(receiver) && hostSleepsInIrq(rig));
}

/** Both results once both have settled (neither is left running behind a failure), or the first failure. */
export async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

/**
 * The "nothing arrives" window after a ring that must deliver nothing (`s 0`), sized from what would
 * carry a delivery: vntb's EP reads the doorbell slots from a delayed work every 5 ms (6.x; from 7.1 an
 * MSI doorbell interrupts at once), and an EP→host doorbell is an MSI the EP raises from peer_db_set or a
 * work item it queues there, which the wire carries in ~0.3 ms. 40 poll periods (200 ms before the
 * cell's timeout scale) cover the poll with a wide margin for TCG, and the watch also makes QUIET_MIN_POLLS
 * reads of db, so a guest that got no CPU during the window cannot pass it unwatched.
 */
export const VNTB_POLL_MS = 5;
export const QUIET_POLL_PERIODS = 40;
export const QUIET_MIN_POLLS = 5;

export function quietWindowMs(rig: Rig): number {
  return rig.ms(VNTB_POLL_MS * QUIET_POLL_PERIODS);
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
  /**
   * Ring and start watching at the same time (one round trip's wait instead of two): the receiver is
   * armed already, so its wait loop only has to be running by the time db moves. Only for rings that
   * are expected to change db; a "nothing arrives" window must start after the ring, so those stay in turn.
   */
  concurrent?: boolean;
}

/**
 * The receiver's side of a ring, prepared in one round trip: optional clears first (the previous ring's
 * bit, then everything), then the baseline db, a kernel-log marker, an empty kprobe trace and the host's
 * interrupt counts. Batching matters: a sweep rings ~30 bits, and each SSH round trip to a TCG guest
 * costs ~0.1 s, so one script per phase instead of one command per read is most of a sweep's time.
 */
export interface Armed {
  receiver: Side;
  baseline: number;
  token?: string;
  irqBefore?: Map<number, IrqLine>;
  /** db read right after `clear` (before the full reset), when a clear was asked for. */
  afterClear?: number;
}

export interface ArmOptions {
  /** Bits to clear first; their db reading is returned as afterClear. */
  clear?: number;
  /** Clear every bit before taking the baseline (default true). */
  reset?: boolean;
  /** Skip the marker/trace/interrupt snapshot (a last clean-up with no ring after it). */
  observe?: boolean;
}

const SECTION = '@@ntbh:';

/** Splits a batched script's stdout at `@@ntbh:<name>` lines. */
export function parseSections(text: string): Map<string, string> {
  const sections = new Map<string, string>();
  let name: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (name !== undefined) sections.set(name, lines.join('\n'));
  };
  for (const line of text.split('\n')) {
    if (line.startsWith(SECTION)) {
      flush();
      name = line.slice(SECTION.length).trim();
      lines = [];
    } else if (name !== undefined) lines.push(line);
  }
  flush();
  return sections;
}

function section(name: string): string {
  return `echo ${sq(SECTION + name)}`;
}

function sectionText(sections: Map<string, string>, name: string, guest: string): string {
  const text = sections.get(name);
  if (text === undefined) throw new Error(`${guest}: batched read lost its "${name}" section`);
  return text;
}

/** The arming script and how to read its output; `prefix` keeps its sections apart in a combined script. */
function armPlan(rig: Rig, tools: Record<Side, NtbTool>, direction: Direction, options: ArmOptions, prefix = '') {
  const { receiver } = sides(direction);
  const rx = tools[receiver];
  const { dyndbg, kprobe } = rig.observe[receiver];
  const observe = options.observe ?? true;
  const db = sq(rx.path('db'));
  const token = observe && dyndbg ? newMarkToken() : undefined;
  const script = ['set -e'];
  if (options.clear !== undefined) script.push(`echo ${sq(`c ${hex(options.clear)}`)} > ${db}`, section(`${prefix}after-clear`), `cat ${db}`);
  if (options.reset ?? true) script.push(`echo 'c 0xffffffff' > ${db}`);
  script.push(section(`${prefix}baseline`), `cat ${db}`);
  if (token) script.push(markScript(token));
  if (observe && kprobe) script.push(clearTraceScript);
  if (observe && rig.isHost(receiver)) script.push(section(`${prefix}irq`), 'cat /proc/interrupts');
  const name = rig.guest(receiver).name;
  const read = (sections: Map<string, string>): Armed => {
    const armed: Armed = { receiver, baseline: parseKernelInt(sectionText(sections, `${prefix}baseline`, name)), token };
    if (options.clear !== undefined) armed.afterClear = parseKernelInt(sectionText(sections, `${prefix}after-clear`, name));
    if (observe && rig.isHost(receiver)) armed.irqBefore = parseInterrupts(sectionText(sections, `${prefix}irq`, name));
    return armed;
  };
  return { script: script.join('\n'), read };
}

export async function armReceiver(rig: Rig, tools: Record<Side, NtbTool>, direction: Direction, options: ArmOptions = {}): Promise<Armed> {
  const plan = armPlan(rig, tools, direction, options);
  return plan.read(parseSections(await run(rig.guest(sides(direction).receiver), plan.script)));
}

export async function ringAndObserve(
  rig: Rig,
  tools: Record<Side, NtbTool>,
  direction: Direction,
  bits: number,
  options: RingOptions & { armed?: Armed; next?: ArmOptions } = {},
): Promise<RingObservation & { next?: Armed }> {
  const { sender, receiver } = sides(direction);
  const rx = tools[receiver];
  const rxGuest = rig.guest(receiver);
  const { dyndbg, kprobe } = rig.observe[receiver];
  const expectChange = options.expectChange ?? true;
  const armed = options.armed ?? (await armReceiver(rig, tools, direction, { reset: false }));
  // The link that carries MSIs to the receiver (a bridge has one per host; vntb's EP has none).
  const wire = rig.wireTo(receiver);
  const wireMark = wire?.mark();
  const concurrent = (options.concurrent ?? false) && expectChange;
  const settlePolls = options.settlePolls ?? 3;
  const eventWaitMs = rig.ms(1_000);
  const next = options.next ? armPlan(rig, tools, direction, options.next, 'next-') : undefined;

  // One round trip: wait for db to settle, then (dev_dbg lines trail the db update) wait for the
  // doorbell line when db moved, then read the log, the trace and the interrupt counts.
  const observeScript = (waitMs: number, wantChange: boolean) => {
    const script = [section('db'), rx.waitDbScript(armed.baseline, waitMs, settlePolls, wantChange, expectChange ? 1 : QUIET_MIN_POLLS)];
    if (armed.token) {
      const tries = Math.max(1, Math.ceil(eventWaitMs / 20));
      const count = `${sinceScript(armed.token)} | grep -c 'doorbell vec' || true`;
      script.push(`if [ "$changed" = 1 ]; then k=0; while [ $k -lt ${tries} ] && [ "$(${count})" -lt 1 ]; do sleep 0.02; k=$((k+1)); done; fi`);
      script.push(section('kmsg'), sinceScript(armed.token));
    }
    if (kprobe) script.push(section('trace'), readTraceScript);
    if (armed.irqBefore) script.push(section('irq'), 'cat /proc/interrupts');
    // The receiver's next arming (this ring's clean-up first) rides in the same round trip.
    if (next) script.push(next.script);
    return run(rxGuest, script.join('\n'), { timeoutMs: waitMs * 3 + eventWaitMs * 3 + 30_000 });
  };

  let ring: { ok: boolean; error?: string };
  let text: string;
  if (concurrent) {
    // The window also covers the sender's round trip, so db still gets its full 3 s after the ring.
    [ring, text] = await bothSettled(tools[sender].ringPeer(bits), observeScript(rig.ms(4_000), true));
  } else {
    ring = await tools[sender].ringPeer(bits);
    // A refused ring delivers nothing: a short look is enough to confirm it.
    text = await observeScript(ring.ok ? (expectChange ? rig.ms(3_000) : quietWindowMs(rig)) : rig.ms(300), expectChange && ring.ok);
  }
  const sections = parseSections(text);
  const settled = parseWaitDb(sectionText(sections, 'db', rxGuest.name).split('\n').filter(Boolean).pop() ?? '');

  const observation: RingObservation = { ringOk: ring.ok, ringError: ring.error, baseline: armed.baseline, db: settled.value, changed: settled.changed };
  if (armed.token && dyndbg) observation.events = parseDoorbellEvents(sectionText(sections, 'kmsg', rxGuest.name));
  if (kprobe) observation.kprobeVectors = parseDbEventTrace(sectionText(sections, 'trace', rxGuest.name));
  if (armed.irqBefore) observation.msiVectors = expandCounts(vectorDeltas(armed.irqBefore, parseInterrupts(sectionText(sections, 'irq', rxGuest.name)), rig.irqsOf(receiver)));
  if (wire && wireMark) observation.wireVectors = expandCounts(wire.msiCounts(wireMark));
  return next ? { ...observation, next: next.read(sections) } : observation;
}

/** Clears everything on the receiver and returns what db reads afterwards (the next ring's baseline). */
export async function resetDb(rx: NtbTool): Promise<number> {
  const out = await run(rx.guest, `echo 'c 0xffffffff' > ${sq(rx.path('db'))} && cat ${sq(rx.path('db'))}`);
  return parseKernelInt(out);
}
