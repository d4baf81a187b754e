/**
 * The seed corpus for wire_fuzz: valid messages as the relay encodes them (harness/link/wire.ts), a
 * stream of all of them, an oversized and an unknown message, and the headers the device refuses.
 * Each seed is wire_fuzz's input format: byte 0 = n, n chunk sizes (each + 1), then the stream.
 *
 *   npx tsx link/qemu/fuzz/seeds.ts DIR     # writes DIR/<name>.bin
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode, HEADER_SIZE, MAX_PAYLOAD, VLINK_MAGIC, VLINK_VERSION, type OutMessage } from '../../../harness/link/wire.ts';

const bar = (size: bigint, flags: number) => ({ epRamOffset: 0x100000n, size, flags });

const messages: OutMessage[] = [
  { type: 'HELLO', role: 1, linkId: 0 },
  {
    type: 'START',
    vendorId: 0x1957,
    deviceId: 0x0809,
    revision: 0,
    progif: 0,
    subclass: 0x80,
    classCode: 0x05,
    subsysVendorId: 0,
    subsysId: 0,
    intxPin: 0,
    msiVectors: 16,
    bars: [bar(0x1000n, 1), bar(0n, 0), bar(0x400000n, 7), bar(0n, 0), bar(0x100000n, 1), bar(0n, 0)],
  },
  { type: 'STOP' },
  { type: 'SET_BAR', bar: 2, entry: bar(0x400000n, 7) },
  { type: 'RAISE_IRQ', irqType: 2, number: 3 },
  { type: 'IRQ_RESULT', irqType: 2, number: 3, result: 0 },
  { type: 'HOST_CONFIG', msiEnabledVectors: 16, command: 0x406, msiAddress: 0xfee00000n, msiData: 0x4020 },
  { type: 'WINDOW', index: 0, mapped: 1, apertureOffset: 0n, pciAddr: 0x12340000n, size: 0x10000n },
  { type: 'LINK_STATE', up: 1 },
  { type: 'DOORBELL', bar: 2, size: 4, offset: 0n, value: 1n },
  { type: 'MEM_WRITE', address: 0xfee00000n, size: 4, value: 0x4023n },
  { type: 'FABRIC_WRITE', bar: 2, size: 8, address: 0x8000104000n, value: 0x1122334455667788n },
  { type: 'FABRIC_READ', bar: 2, size: 4, address: 0x8000104000n, tag: 1 },
  { type: 'FABRIC_READ_REPLY', tag: 1, status: 0, value: 0x55667788n },
  { type: 'HOST_CONFIG_ACK', msiEnabledVectors: 16, command: 0x406, msiAddress: 0xfee00000n, msiData: 0x4020 },
];

function header(type: number, length: number, magic = VLINK_MAGIC, version = VLINK_VERSION): Buffer {
  const h = Buffer.alloc(HEADER_SIZE);
  h.writeUInt32LE(magic, 0);
  h.writeUInt16LE(version, 4);
  h.writeUInt16LE(type, 6);
  h.writeUInt32LE(length, 8);
  return h;
}

/** wire_fuzz input: chunk sizes (1..256 each, cycled; none = one write) then the stream. */
function seed(stream: Buffer, chunks: number[] = []): Buffer {
  return Buffer.concat([Buffer.from([chunks.length, ...chunks.map((c) => c - 1)]), stream]);
}

export function wireSeeds(): Map<string, Buffer> {
  const seeds = new Map<string, Buffer>();
  const encoded = messages.map((m, i) => encode(m, i));
  messages.forEach((m, i) => seeds.set(m.type.toLowerCase(), seed(encoded[i]!)));
  const all = Buffer.concat(encoded);
  seeds.set('all', seed(all));
  seeds.set('all-bytewise', seed(all, [1]));
  seeds.set('all-torn', seed(all, [3, 17, 1, 160, 5]));
  const oversized = Buffer.concat([header(2, MAX_PAYLOAD + 1), Buffer.alloc(MAX_PAYLOAD + 1, 0xee), encoded[4]!]);
  seeds.set('oversized-then-irq', seed(oversized, [200, 9]));
  // Far over the limit: a reader that trusted the length would overrun its buffer at once.
  seeds.set('oversized-big', seed(Buffer.concat([header(2, 3000), Buffer.alloc(3000, 0xdd), encoded[2]!])));
  seeds.set('unknown-type', seed(Buffer.concat([header(99, 12), Buffer.alloc(12, 1), encoded[8]!])));
  seeds.set('bad-magic', seed(Buffer.concat([encoded[0]!, header(1, 8, 0x12345678)])));
  seeds.set('bad-version', seed(Buffer.concat([encoded[0]!, header(1, 8, VLINK_MAGIC, VLINK_VERSION + 1)])));
  return seeds;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: npx tsx link/qemu/fuzz/seeds.ts DIR\n');
    process.exit(2);
  }
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of wireSeeds()) writeFileSync(join(dir, `${name}.bin`), data);
}
