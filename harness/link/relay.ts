import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import { HarnessError } from '../errors.ts';
import { checkedSocketPath, makePrivate } from '../util/rundir.ts';
import { onTeardown } from '../util/teardown.ts';
import { FaultPlan } from './faults.ts';
import type { LinkWitness, MsiDelivery, WireEvent, WireMark } from './types.ts';
import { encode, FabricReadStatus, IrqType, irqResultNames, MessageReader, NUM_BARS, Role, traceFields, type FunctionDescription, type Message, type OutMessage } from './wire.ts';

/** How the relay plugs the RC-side function in and out (QMP on the RC's QEMU; see hotplug.ts). */
export interface Plugger {
  plug(description: FunctionDescription): Promise<void>;
  unplug(): Promise<void>;
}

type Side = 'ep' | 'rc';

/** How often a FABRIC count record goes to the wire trace while host writes cross the fabric. */
export const FABRIC_SUMMARY_MS = 1000;

/**
 * The relay for one link: a UNIX socket per side, every message forwarded, traced to NDJSON and
 * counted. START from the EP hot-plugs the function into the RC; STOP unplugs it. The trace is a
 * witness of doorbell delivery that depends on neither guest.
 */
export class LinkRelay extends EventEmitter implements LinkWitness {
  readonly socketPath: Record<Side, string>;
  private servers: Server[] = [];
  private sockets: Partial<Record<Side, Socket>> = {};
  private seq = 0;
  private trace: WriteStream | null = null;
  private readonly startedAt = performance.now();
  private readonly log: WireEvent[] = [];
  private readonly deliveries: { index: number; delivery: MsiDelivery }[] = [];
  private pendingRaises: { number: number; irqType: number; t: number }[] = [];
  private description: FunctionDescription | null = null;
  /** The host's MSI state as the last HOST_CONFIG said: recognises MSIs written as memory. */
  private hostMsi = { vectors: 0, address: 0n, data: 0, command: 0 };
  private plugged = false;
  private plugging: Promise<void> = Promise.resolve();
  plugger: Plugger | null = null;
  /** Milliseconds from RAISE_IRQ to its IRQ_RESULT, for every MSI (latency figures). */
  readonly msiLatenciesMs: number[] = [];
  /** Host writes into the EP's doorbell region that the relay passed on (embedded doorbell). */
  doorbellWrites = 0;
  /**
   * Host writes into fabric BARs (pci-epf-ntb's doorbell/memory-window BARs) passed on to the EP.
   * Counted, not traced one by one (a transfer is hundreds of thousands): FABRIC summary records
   * go to the trace every FABRIC_SUMMARY_MS while they change, and at close.
   */
  readonly fabric = { writes: 0, bytes: 0 };
  /**
   * Host reads through the fabric (FABRIC_READ, non-posted: the RC's vCPU waits for the reply).
   * Counted like the writes: `failed` = replies with a status other than ok (the host read
   * all-ones), including the relay's own no-ep answers; `timedOut` = reads the EP never answered
   * before the RC sent its next one (one read in flight per function) or the relay closed;
   * `late` = replies for no read in flight; `totalMs`/`maxMs` = relay-side round trips to the EP.
   */
  readonly fabricReads = { reads: 0, bytes: 0, failed: 0, timedOut: 0, late: 0, answered: 0, totalMs: 0, maxMs: 0 };
  private pendingRead: { tag: number; t: number } | null = null;
  /** Fault injection: the next N FABRIC_READs are swallowed (a FAULT event each), so the RC's completion timeout fires. */
  dropFabricReads = 0;
  private fabricTraced = -1;
  private fabricTimer: NodeJS.Timeout | null = null;
  /** START→function-realized times, one per link up. */
  readonly linkUpMs: number[] = [];
  /** MSI faults steps arm (faults.ts); each one applied is a FAULT event in the trace. */
  readonly faults = new FaultPlan();

  constructor(
    readonly linkId: number,
    dir: string,
    private readonly tracePath: string,
  ) {
    super();
    this.socketPath = { ep: checkedSocketPath(`${dir}/link${linkId}-ep.sock`), rc: checkedSocketPath(`${dir}/link${linkId}-rc.sock`) };
  }

  get linkUp(): boolean {
    return this.plugged;
  }

  async listen(): Promise<void> {
    // The trace is run data (docs/run-data.md): 0600 whatever the umask, as the sockets below.
    this.trace = createWriteStream(this.tracePath, { flags: 'a', mode: 0o600 });
    await new Promise<void>((resolve, reject) => this.trace!.once('open', () => resolve()).once('error', reject));
    await makePrivate(this.tracePath);
    for (const side of ['ep', 'rc'] as const) {
      await rm(this.socketPath[side], { force: true });
      const server = createServer((socket) => this.accept(side, socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath[side], resolve);
      });
      // Node binds through the umask: make the socket 0600 like the rest of the run's data.
      await makePrivate(this.socketPath[side]);
      this.servers.push(server);
    }
    onTeardown(`relay link${this.linkId}`, () => this.close());
    this.fabricTimer = setInterval(() => this.fabricSummary(), FABRIC_SUMMARY_MS);
    this.fabricTimer.unref();
  }

  /** A FABRIC record when the counts moved since the last one (close() forces the last). */
  private fabricSummary(final = false): void {
    const r = this.fabricReads;
    if (final && this.pendingRead) {
      r.timedOut++;
      this.pendingRead = null;
    }
    const moved = this.fabric.writes + r.reads + r.late;
    if (moved === 0 || (moved === this.fabricTraced && !final)) return;
    this.fabricTraced = moved;
    const reads = r.reads ? { reads: r.reads, readBytes: r.bytes, readsFailed: r.failed, readsTimedOut: r.timedOut, readsLate: r.late || undefined, readAvgMs: r.answered ? Number((r.totalMs / r.answered).toFixed(3)) : undefined, readMaxMs: Number(r.maxMs.toFixed(3)) } : {};
    this.record('relay', 'FABRIC', { writes: this.fabric.writes, bytes: this.fabric.bytes, ...reads, final: final || undefined });
  }

  async close(): Promise<void> {
    // Detach the trace first: closing sockets still reports DISCONNECTED events.
    if (this.fabricTimer) clearInterval(this.fabricTimer);
    this.fabricTimer = null;
    if (this.trace) this.fabricSummary(true);
    const trace = this.trace;
    this.trace = null;
    this.faults.cancelAll();
    for (const socket of Object.values(this.sockets)) socket?.destroy();
    this.sockets = {};
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    this.servers = [];
    await new Promise<void>((resolve) => (trace ? trace.end(resolve) : resolve()));
    for (const path of Object.values(this.socketPath)) await rm(path, { force: true });
  }

  // --- LinkWitness -------------------------------------------------------------------------

  mark(): WireMark {
    return { index: this.log.length };
  }

  events(since?: WireMark): WireEvent[] {
    return this.log.slice(since?.index ?? 0);
  }

  msiDeliveries(since?: WireMark): MsiDelivery[] {
    const from = since?.index ?? 0;
    return this.deliveries.filter((entry) => entry.index >= from).map((entry) => entry.delivery);
  }

  msiCounts(since?: WireMark): Map<number, number> {
    const counts = new Map<number, number>();
    for (const delivery of this.msiDeliveries(since)) {
      if (delivery.result === 'delivered') counts.set(delivery.vector, (counts.get(delivery.vector) ?? 0) + 1);
    }
    return counts;
  }

  /** Resolves once the link is up (function plugged) or down, as asked. */
  waitLinkState(up: boolean, timeoutMs: number): Promise<void> {
    if (this.plugged === up) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('link-state', onState);
        reject(new HarnessError(`link ${this.linkId} did not go ${up ? 'up' : 'down'} within ${timeoutMs} ms`, { code: 'LINK_TIMEOUT', kind: 'infra', phase: 'link' }));
      }, timeoutMs);
      const onState = (state: boolean) => {
        if (state !== up) return;
        clearTimeout(timer);
        this.off('link-state', onState);
        resolve();
      };
      this.on('link-state', onState);
    });
  }

  // --- connections -------------------------------------------------------------------------

  private accept(side: Side, socket: Socket): void {
    this.sockets[side]?.destroy();
    this.sockets[side] = socket;
    this.record('relay', 'CONNECTED', { side });
    const reader = new MessageReader();
    socket.on('data', (chunk) => {
      let messages;
      try {
        messages = reader.push(chunk);
      } catch (error) {
        this.record('relay', 'PROTOCOL_ERROR', { side, error: (error as Error).message });
        socket.destroy();
        return;
      }
      for (const { header, message } of messages) this.handle(side, message, header.seq);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.sockets[side] === socket) delete this.sockets[side];
      this.record('relay', 'DISCONNECTED', { side });
    });
  }

  private send(side: Side, message: OutMessage): void {
    const socket = this.sockets[side];
    if (!socket) return;
    socket.write(encode(message, this.seq++));
    this.record('relay', message.type, { to: side, ...traceFields(message) });
  }

  private handle(side: Side, message: Message, seq: number): void {
    if (message.type === 'FABRIC_WRITE' && side === 'rc') {
      // Hot path: forwarded in order with everything else on the link, counted, not traced.
      this.fabric.writes++;
      this.fabric.bytes += message.size;
      const socket = this.sockets.ep;
      if (socket) socket.write(encode(message, this.seq++));
      return;
    }
    if (message.type === 'FABRIC_READ' && side === 'rc') return this.fabricRead(message);
    if (message.type === 'FABRIC_READ_REPLY' && side === 'ep') return this.fabricReadReply(message);
    if (message.type === 'INVALID') {
      // Same policy as the devices: log and drop the message, keep the connection.
      this.record('relay', 'PROTOCOL_ERROR', { side, seq, msgType: message.code, error: message.reason });
      return;
    }
    this.record(side, message.type, { seq, ...traceFields(message) });
    if (side === 'ep') this.fromEp(message);
    else this.fromRc(message);
  }

  private fromEp(message: Message): void {
    switch (message.type) {
      case 'HELLO':
        if (message.role !== Role.EP) this.record('relay', 'ROLE_MISMATCH', { expected: 'ep', got: message.role });
        this.send('ep', { type: 'LINK_STATE', up: this.plugged ? 1 : 0 });
        break;
      case 'START': {
        const { type: _type, ...description } = message;
        this.description = description;
        this.serialize(() => this.plug());
        break;
      }
      case 'STOP':
        this.serialize(() => this.unplug());
        break;
      case 'SET_BAR':
        // Keep the description current: the next plug must carry the latest BAR targets.
        if (this.description && message.bar < NUM_BARS) this.description.bars[message.bar] = message.entry;
        if (this.plugged) this.send('rc', message);
        break;
      case 'MEM_WRITE':
        this.memWrite(message.address, message.value);
        if (this.plugged) this.send('rc', message);
        break;
      case 'RAISE_IRQ':
        if (!this.plugged) {
          this.deliver(message.irqType, message.number, 'not-plugged', performance.now());
          break;
        }
        this.forwardRaise(message);
        break;
      case 'HOST_CONFIG_ACK':
        // The host's config write completes when its function sees this (non-posted, PROTOCOL.md).
        this.send('rc', message);
        break;
      default:
        break;
    }
  }

  private fromRc(message: Message): void {
    switch (message.type) {
      case 'HELLO':
        if (message.role !== Role.RC) this.record('relay', 'ROLE_MISMATCH', { expected: 'rc', got: message.role });
        break;
      case 'IRQ_RESULT': {
        const index = this.pendingRaises.findIndex((raise) => raise.number === message.number && raise.irqType === message.irqType);
        const raised = index >= 0 ? this.pendingRaises.splice(index, 1)[0]! : undefined;
        const result = irqResultNames[message.result] ?? `result-${message.result}`;
        this.deliver(message.irqType, message.number, result, raised?.t);
        break;
      }
      case 'HOST_CONFIG':
        this.hostMsi = { vectors: message.msiEnabledVectors, address: message.msiAddress, data: message.msiData, command: message.command };
        this.send('ep', message);
        break;
      case 'DOORBELL':
        // An RC->EP interrupt: the EP device latches it and interrupts its own guest.
        this.doorbellWrites++;
        this.send('ep', message);
        break;
      default:
        break;
    }
  }

  /**
   * A host read through the fabric: forwarded in order like the writes, counted, not traced. With no
   * EP to answer, the relay completes it at once (no-ep) rather than leave the RC's vCPU to time out.
   */
  private fabricRead(message: Extract<Message, { type: 'FABRIC_READ' }>): void {
    const r = this.fabricReads;
    // The RC has one read in flight per function: a new one means the last went unanswered.
    if (this.pendingRead) r.timedOut++;
    r.reads++;
    r.bytes += message.size;
    if (this.dropFabricReads > 0) {
      this.dropFabricReads--;
      this.pendingRead = { tag: message.tag, t: performance.now() };
      this.record('relay', 'FAULT', { action: 'drop', msgType: 'FABRIC_READ', tag: message.tag, address: `0x${message.address.toString(16)}` });
      return;
    }
    const ep = this.sockets.ep;
    if (!ep) {
      this.pendingRead = null;
      r.failed++;
      this.sockets.rc?.write(encode({ type: 'FABRIC_READ_REPLY', tag: message.tag, status: FabricReadStatus.NO_EP, value: 0n }, this.seq++));
      return;
    }
    this.pendingRead = { tag: message.tag, t: performance.now() };
    ep.write(encode(message, this.seq++));
  }

  private fabricReadReply(message: Extract<Message, { type: 'FABRIC_READ_REPLY' }>): void {
    const r = this.fabricReads;
    if (this.pendingRead?.tag === message.tag) {
      const ms = performance.now() - this.pendingRead.t;
      r.totalMs += ms;
      r.maxMs = Math.max(r.maxMs, ms);
      r.answered++;
      this.pendingRead = null;
      if (message.status !== FabricReadStatus.OK) r.failed++;
    } else {
      // The RC gave up on it already (and drops it too); forwarded all the same, in order.
      r.late++;
    }
    this.sockets.rc?.write(encode(message, this.seq++));
  }

  /** Forwards one RAISE_IRQ to the RC, through whatever fault is armed for its vector (faults.ts). */
  private forwardRaise(message: Extract<Message, { type: 'RAISE_IRQ' }>): void {
    const raisedAt = performance.now();
    const forward = () => {
      if (!this.plugged) return this.deliver(message.irqType, message.number, 'not-plugged', raisedAt);
      this.pendingRaises.push({ number: message.number, irqType: message.irqType, t: raisedAt });
      this.send('rc', message);
    };
    const fault = message.irqType === IrqType.MSI ? this.faults.take(message.number - 1) : undefined;
    if (fault) this.record('relay', 'FAULT', { action: fault.action, number: message.number, vector: message.number - 1, delayMs: fault.action === 'delay' ? fault.delayMs : undefined });
    if (fault?.action === 'drop') return this.deliver(message.irqType, message.number, 'dropped', raisedAt);
    if (fault?.action === 'delay') return this.faults.later(fault.delayMs, forward);
    forward();
    // The copy goes after a gap: two MSIs of one vector back to back would coalesce in the guest's
    // interrupt controller (one pending bit per vector) and the duplicate would be invisible.
    if (fault?.action === 'duplicate') this.faults.later(fault.delayMs, forward);
  }

  /**
   * An EP memory write to the host's MSI address is an MSI (path "write"): the vector is in the data's
   * low bits (Multiple Message Enable). Posted, so nothing answers it: the outcome is the relay's
   * reading of the host configuration, which the RC QEMU applies the same way (the write is DMA).
   */
  private memWrite(address: bigint, value: bigint): void {
    const { vectors, address: msiAddress, data, command } = this.hostMsi;
    if (!vectors || address !== msiAddress || msiAddress === 0n) return;
    const low = Number(value & BigInt(vectors - 1));
    if ((Number(value) & ~(vectors - 1)) !== (data & ~(vectors - 1))) return;
    const result = !this.plugged ? 'not-plugged' : command & 4 ? 'delivered' : 'no-bus-master';
    this.deliver(IrqType.MSI, low + 1, result, undefined, 'write');
  }

  private deliver(irqType: number, number: number, result: string, raisedAt?: number, path: 'message' | 'write' = 'message'): void {
    if (irqType !== IrqType.MSI) {
      this.record('relay', 'INTX', { number, result });
      return;
    }
    const latencyMs = raisedAt !== undefined ? performance.now() - raisedAt : undefined;
    if (latencyMs !== undefined && result === 'delivered') this.msiLatenciesMs.push(latencyMs);
    const delivery: MsiDelivery = { number, vector: number - 1, result, path };
    this.deliveries.push({ index: this.log.length, delivery });
    this.record('relay', 'MSI', { number, vector: number - 1, result, path, latencyMs: latencyMs === undefined ? undefined : Number(latencyMs.toFixed(3)) });
  }

  /** Plug/unplug requests run one at a time, in the order the EP sent them. */
  private serialize(task: () => Promise<void>): void {
    this.plugging = this.plugging.then(task).catch((error: Error) => {
      this.record('relay', 'HOTPLUG_ERROR', { error: error.message });
      this.emit('error-event', error);
    });
  }

  private async plug(): Promise<void> {
    if (!this.plugger || !this.description) {
      this.record('relay', 'HOTPLUG_SKIPPED', { reason: this.plugger ? 'no description' : 'no RC guest attached' });
      return;
    }
    if (this.plugged) await this.unplug();
    const started = performance.now();
    await this.plugger.plug(this.description);
    this.plugged = true;
    this.linkUpMs.push(performance.now() - started);
    this.record('relay', 'PLUGGED', { ms: Number((performance.now() - started).toFixed(1)) });
    this.send('ep', { type: 'LINK_STATE', up: 1 });
    this.emit('link-state', true);
  }

  private async unplug(): Promise<void> {
    if (!this.plugged || !this.plugger) return;
    const started = performance.now();
    this.plugged = false;
    await this.plugger.unplug();
    // An unplug answers every MSI still in flight: the function that would deliver it is gone.
    for (const raise of this.pendingRaises.splice(0)) this.deliver(raise.irqType, raise.number, 'not-plugged', raise.t);
    this.record('relay', 'UNPLUGGED', { ms: Number((performance.now() - started).toFixed(1)) });
    this.send('ep', { type: 'LINK_STATE', up: 0 });
    this.emit('link-state', false);
  }

  /** The guest removed the function itself (e.g. powered the slot off). */
  noteUnplugged(reason: string): void {
    if (!this.plugged) return;
    this.plugged = false;
    this.record('relay', 'UNPLUGGED', { reason });
    this.send('ep', { type: 'LINK_STATE', up: 0 });
    this.emit('link-state', false);
  }

  private record(from: WireEvent['from'], type: string, fields: Record<string, unknown>): void {
    const event: WireEvent = { t: Number((performance.now() - this.startedAt).toFixed(3)), link: this.linkId, from, type, ...fields };
    this.log.push(event);
    this.trace?.write(`${JSON.stringify(event)}\n`);
    this.emit('wire', event);
  }
}
