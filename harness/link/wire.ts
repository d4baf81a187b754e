/**
 * The link's wire format (link/PROTOCOL.md, link/include/vepc-link.h): a 16-byte header then a
 * fixed-layout little-endian payload. Decoding is table-driven so the trace names every field.
 */
export const VLINK_MAGIC = 0x4b4e4c56;
export const VLINK_VERSION = 1;
export const HEADER_SIZE = 16;
/** As VLINK_MAX_PAYLOAD in link/qemu/hw/vepc-wire.h: longer messages are skipped by their length, never buffered. */
export const MAX_PAYLOAD = 1024;
/** BARs of a PCI function (VEPC_NUM_BARS / VF_NUM_BARS on the C side): SET_BAR's `bar` is 0..5. */
export const NUM_BARS = 6;

export const MsgType = {
  HELLO: 1,
  START: 2,
  STOP: 3,
  SET_BAR: 4,
  RAISE_IRQ: 5,
  IRQ_RESULT: 6,
  HOST_CONFIG: 7,
  WINDOW: 8,
  LINK_STATE: 9,
  DOORBELL: 10,
  MEM_WRITE: 11,
  FABRIC_WRITE: 12,
  FABRIC_READ: 13,
  FABRIC_READ_REPLY: 14,
  HOST_CONFIG_ACK: 15,
} as const;
export type MsgTypeName = keyof typeof MsgType;

export const Role = { EP: 1, RC: 2 } as const;
export const IrqType = { INTX: 1, MSI: 2 } as const;
/** FABRIC_READ_REPLY status (enum vlink_fabric_read_status); anything but ok makes the host read all-ones. */
export const FabricReadStatus = { OK: 0, UNSUPPORTED: 1, ERROR: 2, NO_EP: 3 } as const;
export const fabricReadStatusNames = ['ok', 'unsupported', 'error', 'no-ep'];
export const irqResultNames = ['delivered', 'msi-disabled', 'out-of-range', 'no-bus-master', 'masked', 'not-plugged', 'unsupported'];

/**
 * DOORBELL: the EP device found the BAR's memory inside its doorbell region (epRamOffset is the offset there).
 * FABRIC: inside a vepc aperture of the EP machine (epRamOffset is then the EP physical address).
 */
export const BarFlag = { ENABLED: 1, MEM64: 2, PREFETCH: 4, IO: 8, UNBACKED: 16, DOORBELL: 32, FABRIC: 64 } as const;

export interface Header {
  magic: number;
  version: number;
  type: number;
  length: number;
  seq: number;
}

export interface BarEntry {
  epRamOffset: bigint;
  size: bigint;
  flags: number;
}

export interface FunctionDescription {
  vendorId: number;
  deviceId: number;
  revision: number;
  progif: number;
  subclass: number;
  classCode: number;
  subsysVendorId: number;
  subsysId: number;
  intxPin: number;
  msiVectors: number;
  bars: BarEntry[];
}

export type Message =
  | { type: 'HELLO'; role: number; linkId: number }
  | ({ type: 'START' } & FunctionDescription)
  | { type: 'STOP' }
  | { type: 'SET_BAR'; bar: number; entry: BarEntry }
  | { type: 'RAISE_IRQ'; irqType: number; number: number }
  | { type: 'IRQ_RESULT'; irqType: number; number: number; result: number }
  /** msiAddress/msiData: the host's MSI message for vector 0 (0 while MSI is off, or from a v1 sender). */
  | { type: 'HOST_CONFIG'; msiEnabledVectors: number; command: number; msiAddress: bigint; msiData: number }
  | { type: 'WINDOW'; index: number; mapped: number; apertureOffset: bigint; pciAddr: bigint; size: bigint }
  | { type: 'LINK_STATE'; up: number }
  /** The host wrote into a BAR the EP mapped onto its doorbell region (RC → EP). */
  | { type: 'DOORBELL'; bar: number; size: number; offset: bigint; value: bigint }
  /** The EP wrote through an outbound window to a host address outside host RAM (EP → RC). */
  | { type: 'MEM_WRITE'; address: bigint; size: number; value: bigint }
  /** The host wrote into a BAR the EP backed with an aperture of its fabric (RC → EP); address is EP physical. */
  | { type: 'FABRIC_WRITE'; bar: number; size: number; address: bigint; value: bigint }
  /** The host reads from such a BAR (RC → EP, non-posted): the RC's vCPU waits for the reply with this tag. */
  | { type: 'FABRIC_READ'; bar: number; size: number; address: bigint; tag: number }
  /** The completion of a FABRIC_READ (EP → RC); status FabricReadStatus. */
  | { type: 'FABRIC_READ_REPLY'; tag: number; status: number; value: bigint }
  /** The EP applied a HOST_CONFIG (EP → RC): the host's config write completes when the RC sees it. */
  | { type: 'HOST_CONFIG_ACK'; msiEnabledVectors: number; command: number; msiAddress: bigint; msiData: number }
  | { type: 'UNKNOWN'; code: number }
  /** A message the peer should not have sent (too long, an index out of range): reported, never acted on. */
  | { type: 'INVALID'; code: number; reason: string };

/** What can be put on the wire. */
export type OutMessage = Exclude<Message, { type: 'UNKNOWN' | 'INVALID' }>;

const typeNames = new Map<number, MsgTypeName>(Object.entries(MsgType).map(([name, code]) => [code, name as MsgTypeName]));

export function decodeHeader(buf: Buffer): Header {
  return { magic: buf.readUInt32LE(0), version: buf.readUInt16LE(4), type: buf.readUInt16LE(6), length: buf.readUInt32LE(8), seq: buf.readUInt32LE(12) };
}

function readBar(buf: Buffer, at: number): BarEntry {
  return { epRamOffset: buf.readBigUInt64LE(at), size: buf.readBigUInt64LE(at + 8), flags: buf.readUInt32LE(at + 16) };
}

function writeBar(buf: Buffer, at: number, bar: BarEntry): void {
  buf.writeBigUInt64LE(bar.epRamOffset, at);
  buf.writeBigUInt64LE(bar.size, at + 8);
  buf.writeUInt32LE(bar.flags, at + 16);
}

/** Payload sizes the decoder needs at least; longer payloads (a newer minor version) are fine. */
const minimumLength: Record<MsgTypeName, number> = {
  HELLO: 8,
  START: 160,
  STOP: 0,
  SET_BAR: 32,
  RAISE_IRQ: 8,
  IRQ_RESULT: 12,
  HOST_CONFIG: 8,
  WINDOW: 32,
  LINK_STATE: 4,
  DOORBELL: 24,
  MEM_WRITE: 24,
  FABRIC_WRITE: 24,
  FABRIC_READ: 24,
  FABRIC_READ_REPLY: 16,
  HOST_CONFIG_ACK: 8,
};

export function decodePayload(type: number, p: Buffer): Message {
  const name = typeNames.get(type);
  if (!name || p.length < minimumLength[name]) return { type: 'UNKNOWN', code: type };
  switch (name) {
    case 'HELLO':
      return { type: name, role: p.readUInt32LE(0), linkId: p.readUInt32LE(4) };
    case 'START':
      return {
        type: name,
        vendorId: p.readUInt16LE(0),
        deviceId: p.readUInt16LE(2),
        revision: p.readUInt8(4),
        progif: p.readUInt8(5),
        subclass: p.readUInt8(6),
        classCode: p.readUInt8(7),
        subsysVendorId: p.readUInt16LE(8),
        subsysId: p.readUInt16LE(10),
        intxPin: p.readUInt8(12),
        msiVectors: p.readUInt8(13),
        bars: Array.from({ length: 6 }, (_, i) => readBar(p, 16 + i * 24)),
      };
    case 'STOP':
      return { type: name };
    case 'SET_BAR': {
      const bar = p.readUInt32LE(0);
      // The relay indexes the function's bars with it; the C side ignores such a SET_BAR too.
      if (bar >= NUM_BARS) return { type: 'INVALID', code: type, reason: `SET_BAR for BAR${bar}, outside 0..${NUM_BARS - 1}` };
      return { type: name, bar, entry: readBar(p, 8) };
    }
    case 'RAISE_IRQ':
      return { type: name, irqType: p.readUInt32LE(0), number: p.readUInt32LE(4) };
    case 'IRQ_RESULT':
      return { type: name, irqType: p.readUInt32LE(0), number: p.readUInt32LE(4), result: p.readUInt32LE(8) };
    case 'HOST_CONFIG':
    case 'HOST_CONFIG_ACK': {
      const withMessage = p.length >= 20;
      return {
        type: name,
        msiEnabledVectors: p.readUInt32LE(0),
        command: p.readUInt32LE(4),
        msiAddress: withMessage ? p.readBigUInt64LE(8) : 0n,
        msiData: withMessage ? p.readUInt32LE(16) : 0,
      };
    }
    case 'WINDOW':
      return { type: name, index: p.readUInt32LE(0), mapped: p.readUInt32LE(4), apertureOffset: p.readBigUInt64LE(8), pciAddr: p.readBigUInt64LE(16), size: p.readBigUInt64LE(24) };
    case 'LINK_STATE':
      return { type: name, up: p.readUInt32LE(0) };
    case 'DOORBELL': {
      const bar = p.readUInt32LE(0);
      if (bar >= NUM_BARS) return { type: 'INVALID', code: type, reason: `DOORBELL from BAR${bar}, outside 0..${NUM_BARS - 1}` };
      return { type: name, bar, size: p.readUInt32LE(4), offset: p.readBigUInt64LE(8), value: p.readBigUInt64LE(16) };
    }
    case 'MEM_WRITE':
      return { type: name, address: p.readBigUInt64LE(0), size: p.readUInt32LE(8), value: p.readBigUInt64LE(16) };
    case 'FABRIC_WRITE': {
      const bar = p.readUInt32LE(0);
      const size = p.readUInt32LE(4);
      if (bar >= NUM_BARS) return { type: 'INVALID', code: type, reason: `FABRIC_WRITE from BAR${bar}, outside 0..${NUM_BARS - 1}` };
      if (![1, 2, 4, 8].includes(size)) return { type: 'INVALID', code: type, reason: `FABRIC_WRITE of ${size} bytes (1, 2, 4 or 8)` };
      return { type: name, bar, size, address: p.readBigUInt64LE(8), value: p.readBigUInt64LE(16) };
    }
    case 'FABRIC_READ': {
      const bar = p.readUInt32LE(0);
      const size = p.readUInt32LE(4);
      if (bar >= NUM_BARS) return { type: 'INVALID', code: type, reason: `FABRIC_READ from BAR${bar}, outside 0..${NUM_BARS - 1}` };
      if (![1, 2, 4, 8].includes(size)) return { type: 'INVALID', code: type, reason: `FABRIC_READ of ${size} bytes (1, 2, 4 or 8)` };
      return { type: name, bar, size, address: p.readBigUInt64LE(8), tag: p.readUInt32LE(16) };
    }
    case 'FABRIC_READ_REPLY':
      return { type: name, tag: p.readUInt32LE(0), status: p.readUInt32LE(4), value: p.readBigUInt64LE(8) };
  }
}

export function encode(message: OutMessage, seq: number): Buffer {
  let payload: Buffer;
  switch (message.type) {
    case 'HELLO':
      payload = Buffer.alloc(8);
      payload.writeUInt32LE(message.role, 0);
      payload.writeUInt32LE(message.linkId, 4);
      break;
    case 'START':
      payload = Buffer.alloc(160);
      payload.writeUInt16LE(message.vendorId, 0);
      payload.writeUInt16LE(message.deviceId, 2);
      payload.writeUInt8(message.revision, 4);
      payload.writeUInt8(message.progif, 5);
      payload.writeUInt8(message.subclass, 6);
      payload.writeUInt8(message.classCode, 7);
      payload.writeUInt16LE(message.subsysVendorId, 8);
      payload.writeUInt16LE(message.subsysId, 10);
      payload.writeUInt8(message.intxPin, 12);
      payload.writeUInt8(message.msiVectors, 13);
      message.bars.forEach((bar, i) => writeBar(payload, 16 + i * 24, bar));
      break;
    case 'STOP':
      payload = Buffer.alloc(0);
      break;
    case 'SET_BAR':
      payload = Buffer.alloc(32);
      payload.writeUInt32LE(message.bar, 0);
      writeBar(payload, 8, message.entry);
      break;
    case 'RAISE_IRQ':
      payload = Buffer.alloc(8);
      payload.writeUInt32LE(message.irqType, 0);
      payload.writeUInt32LE(message.number, 4);
      break;
    case 'IRQ_RESULT':
      payload = Buffer.alloc(16);
      payload.writeUInt32LE(message.irqType, 0);
      payload.writeUInt32LE(message.number, 4);
      payload.writeUInt32LE(message.result, 8);
      break;
    case 'HOST_CONFIG':
    case 'HOST_CONFIG_ACK':
      payload = Buffer.alloc(24);
      payload.writeUInt32LE(message.msiEnabledVectors, 0);
      payload.writeUInt32LE(message.command, 4);
      payload.writeBigUInt64LE(message.msiAddress, 8);
      payload.writeUInt32LE(message.msiData, 16);
      break;
    case 'WINDOW':
      payload = Buffer.alloc(32);
      payload.writeUInt32LE(message.index, 0);
      payload.writeUInt32LE(message.mapped, 4);
      payload.writeBigUInt64LE(message.apertureOffset, 8);
      payload.writeBigUInt64LE(message.pciAddr, 16);
      payload.writeBigUInt64LE(message.size, 24);
      break;
    case 'LINK_STATE':
      payload = Buffer.alloc(8);
      payload.writeUInt32LE(message.up, 0);
      break;
    case 'MEM_WRITE':
      payload = Buffer.alloc(24);
      payload.writeBigUInt64LE(message.address, 0);
      payload.writeUInt32LE(message.size, 8);
      payload.writeBigUInt64LE(message.value, 16);
      break;
    case 'FABRIC_WRITE':
      payload = Buffer.alloc(24);
      payload.writeUInt32LE(message.bar, 0);
      payload.writeUInt32LE(message.size, 4);
      payload.writeBigUInt64LE(message.address, 8);
      payload.writeBigUInt64LE(message.value, 16);
      break;
    case 'FABRIC_READ':
      payload = Buffer.alloc(24);
      payload.writeUInt32LE(message.bar, 0);
      payload.writeUInt32LE(message.size, 4);
      payload.writeBigUInt64LE(message.address, 8);
      payload.writeUInt32LE(message.tag >>> 0, 16);
      break;
    case 'FABRIC_READ_REPLY':
      payload = Buffer.alloc(16);
      payload.writeUInt32LE(message.tag >>> 0, 0);
      payload.writeUInt32LE(message.status, 4);
      payload.writeBigUInt64LE(message.value, 8);
      break;
    case 'DOORBELL':
      payload = Buffer.alloc(24);
      payload.writeUInt32LE(message.bar, 0);
      payload.writeUInt32LE(message.size, 4);
      payload.writeBigUInt64LE(message.offset, 8);
      payload.writeBigUInt64LE(message.value, 16);
      break;
  }
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(VLINK_MAGIC, 0);
  header.writeUInt16LE(VLINK_VERSION, 4);
  header.writeUInt16LE(MsgType[message.type], 6);
  header.writeUInt32LE(payload.length, 8);
  header.writeUInt32LE(seq >>> 0, 12);
  return Buffer.concat([header, payload]);
}

/**
 * Reassembles messages from a byte stream delivered in arbitrary chunks. A bad header throws (the
 * stream cannot be resynchronised); a payload over MAX_PAYLOAD comes out as INVALID and its bytes are
 * skipped as they arrive, so a peer cannot make the reader hold more than one legal message.
 */
export class MessageReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes of an oversized payload still to be dropped. */
  private skipping = 0;

  push(chunk: Buffer): { header: Header; message: Message }[] {
    if (this.skipping > 0) {
      const dropped = Math.min(this.skipping, chunk.length);
      this.skipping -= dropped;
      chunk = chunk.subarray(dropped);
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: { header: Header; message: Message }[] = [];
    while (this.buffer.length >= HEADER_SIZE) {
      const header = decodeHeader(this.buffer);
      if (header.magic !== VLINK_MAGIC || header.version !== VLINK_VERSION) {
        throw new Error(`bad link message header (magic ${header.magic.toString(16)}, version ${header.version})`);
      }
      if (header.length > MAX_PAYLOAD) {
        out.push({ header, message: { type: 'INVALID', code: header.type, reason: `payload of ${header.length} bytes exceeds ${MAX_PAYLOAD}` } });
        const available = this.buffer.length - HEADER_SIZE;
        const dropped = Math.min(available, header.length);
        this.skipping = header.length - dropped;
        this.buffer = this.buffer.subarray(HEADER_SIZE + dropped);
        continue;
      }
      if (this.buffer.length < HEADER_SIZE + header.length) break;
      const payload = this.buffer.subarray(HEADER_SIZE, HEADER_SIZE + header.length);
      out.push({ header, message: decodePayload(header.type, payload) });
      this.buffer = this.buffer.subarray(HEADER_SIZE + header.length);
    }
    return out;
  }
}

/** JSON-friendly view of a message for the NDJSON trace (bigints as hex strings). */
export function traceFields(message: Message): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) {
    if (key === 'type') continue;
    out[key] = jsonValue(value);
  }
  return out;
}

function jsonValue(value: unknown): unknown {
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (Array.isArray(value)) return value.map(jsonValue);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonValue(v)]));
  return value;
}
