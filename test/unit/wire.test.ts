import t from 'tap';
import { encode, MessageReader, decodeHeader, VLINK_MAGIC, HEADER_SIZE, MAX_PAYLOAD, MsgType, NUM_BARS } from '../../harness/link/wire.ts';

/** A header with any type and length, as a misbehaving peer might send it. */
function rawHeader(type: number, length: number): Buffer {
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(VLINK_MAGIC, 0);
  header.writeUInt16LE(1, 4);
  header.writeUInt16LE(type, 6);
  header.writeUInt32LE(length, 8);
  return header;
}

t.test('every message type survives encode → chunked reassembly → decode', async (t) => {
  const bars = Array.from({ length: 6 }, (_, n) => ({ epRamOffset: BigInt(n) * 0x10000n, size: n === 0 ? 0x1000n : 0n, flags: n === 0 ? 1 : 0 }));
  const messages = [
    { type: 'HELLO', role: 1, linkId: 3 },
    { type: 'START', vendorId: 0x1957, deviceId: 0x0809, revision: 1, progif: 0, subclass: 0, classCode: 5, subsysVendorId: 0, subsysId: 0, intxPin: 1, msiVectors: 16, bars },
    { type: 'STOP' },
    { type: 'SET_BAR', bar: 4, entry: { epRamOffset: 0x1234000n, size: 0x100000n, flags: 7 } },
    { type: 'RAISE_IRQ', irqType: 2, number: 5 },
    { type: 'IRQ_RESULT', irqType: 2, number: 5, result: 0 },
    { type: 'HOST_CONFIG', msiEnabledVectors: 16, command: 6, msiAddress: 0xfee01000n, msiData: 0x4020 },
    { type: 'MEM_WRITE', address: 0xfee01000n, size: 4, value: 0x4025n },
    { type: 'WINDOW', index: 2, mapped: 1, apertureOffset: 0x2000n, pciAddr: 0x7ff00000n, size: 0x100000n },
    { type: 'LINK_STATE', up: 1 },
    { type: 'DOORBELL', bar: 2, size: 4, offset: 0x10n, value: 1n },
    { type: 'FABRIC_WRITE', bar: 2, size: 8, address: 0x8000104000n, value: 0x1122334455667788n },
    { type: 'FABRIC_READ', bar: 4, size: 4, address: 0x8000200010n, tag: 0xfffffffe },
    { type: 'FABRIC_READ_REPLY', tag: 0xfffffffe, status: 0, value: 0xcafef00dn },
    { type: 'HOST_CONFIG_ACK', msiEnabledVectors: 8, command: 0x406, msiAddress: 0xfee00318n, msiData: 0x4021 },
  ] as const;
  const stream = Buffer.concat(messages.map((m, i) => encode(m as never, i)));
  const reader = new MessageReader();
  const decoded = [];
  // Deliver in awkward 7-byte chunks, as a socket may.
  for (let at = 0; at < stream.length; at += 7) decoded.push(...reader.push(stream.subarray(at, at + 7)));
  t.equal(decoded.length, messages.length);
  decoded.forEach((entry, i) => {
    t.same(entry.message, messages[i], `${messages[i]!.type} round-trips`);
    t.equal(entry.header.seq, i);
  });
});

t.test('header layout matches vepc-link.h', async (t) => {
  const buf = encode({ type: 'RAISE_IRQ', irqType: 2, number: 9 }, 42);
  t.equal(buf.length, HEADER_SIZE + 8);
  const header = decodeHeader(buf);
  t.same(header, { magic: VLINK_MAGIC, version: 1, type: 5, length: 8, seq: 42 });
  t.equal(buf.toString('latin1', 0, 4), 'VLNK', 'magic reads "VLNK" in memory');
});

t.test('unknown types are skipped by length, bad magic is refused', async (t) => {
  const unknown = Buffer.alloc(HEADER_SIZE + 3);
  unknown.writeUInt32LE(VLINK_MAGIC, 0);
  unknown.writeUInt16LE(1, 4);
  unknown.writeUInt16LE(99, 6);
  unknown.writeUInt32LE(3, 8);
  const reader = new MessageReader();
  const out = reader.push(Buffer.concat([unknown, encode({ type: 'STOP' }, 1)]));
  t.same(out.map((m) => m.message.type), ['UNKNOWN', 'STOP']);
  const bad = Buffer.from(encode({ type: 'STOP' }, 1));
  bad.writeUInt32LE(0xdeadbeef, 0);
  t.throws(() => new MessageReader().push(bad), /bad link message header/);
});

t.test('the caps are the C side\'s (vepc-wire.h VLINK_MAX_PAYLOAD, six BARs)', async (t) => {
  t.equal(MAX_PAYLOAD, 1024);
  t.equal(NUM_BARS, 6);
});

t.test('an oversized payload is INVALID and skipped by its length, in any chunking; the stream goes on', async (t) => {
  const stream = Buffer.concat([rawHeader(MsgType.START, 2000), Buffer.alloc(2000, 0xab), encode({ type: 'STOP' }, 7)]);
  for (const size of [1, 7, 1500, stream.length]) {
    const reader = new MessageReader();
    const out = [];
    for (let at = 0; at < stream.length; at += size) out.push(...reader.push(stream.subarray(at, at + size)));
    t.same(
      out.map((m) => m.message),
      [{ type: 'INVALID', code: MsgType.START, reason: 'payload of 2000 bytes exceeds 1024' }, { type: 'STOP' }],
      `chunks of ${size}`,
    );
  }
});

t.test('a 4 GiB length is reported at once and its bytes are dropped, not buffered', async (t) => {
  const reader = new MessageReader();
  t.same(reader.push(rawHeader(MsgType.HELLO, 0xffffffff)).map((m) => m.message.type), ['INVALID']);
  const junk = Buffer.alloc(1 << 20, 0x41);
  let out = 0;
  for (let i = 0; i < 64; i++) out += reader.push(junk).length;
  t.equal(out, 0, '64 MiB of payload come and go');
  t.ok((reader as unknown as { buffer: Buffer }).buffer.length === 0, 'nothing held');
});

t.test('SET_BAR with a BAR index outside 0..5 is INVALID, never an index', async (t) => {
  for (const bar of [6, 7, 0xffffffff]) {
    const good = encode({ type: 'SET_BAR', bar: 0, entry: { epRamOffset: 0n, size: 0x1000n, flags: 1 } }, 1);
    good.writeUInt32LE(bar, HEADER_SIZE);
    const [entry] = new MessageReader().push(good);
    t.same(entry!.message, { type: 'INVALID', code: MsgType.SET_BAR, reason: `SET_BAR for BAR${bar}, outside 0..5` });
  }
  const [ok] = new MessageReader().push(encode({ type: 'SET_BAR', bar: 5, entry: { epRamOffset: 0n, size: 0x1000n, flags: 1 } }, 1));
  t.equal(ok!.message.type, 'SET_BAR', 'BAR5 is fine');
});

t.test('DOORBELL layout matches struct vlink_doorbell (24 bytes)', async (t) => {
  const buf = encode({ type: 'DOORBELL', bar: 2, size: 4, offset: 0x40n, value: 0xdeadbeefn }, 0);
  t.equal(buf.readUInt16LE(6), MsgType.DOORBELL);
  t.equal(buf.readUInt32LE(8), 24);
  t.equal(buf.readUInt32LE(HEADER_SIZE), 2, 'bar');
  t.equal(buf.readUInt32LE(HEADER_SIZE + 4), 4, 'size');
  t.equal(buf.readBigUInt64LE(HEADER_SIZE + 8), 0x40n, 'offset');
  t.equal(buf.readBigUInt64LE(HEADER_SIZE + 16), 0xdeadbeefn, 'value');
  const bad = Buffer.from(buf);
  bad.writeUInt32LE(NUM_BARS, HEADER_SIZE);
  const [decoded] = new MessageReader().push(bad);
  t.equal(decoded!.message.type, 'INVALID', 'a BAR outside 0..5 is refused');
});

t.test('FABRIC_WRITE layout matches struct vlink_fabric_write (24 bytes); bad BAR or size is INVALID', async (t) => {
  const buf = encode({ type: 'FABRIC_WRITE', bar: 3, size: 2, address: 0x10004000n, value: 0xbeefn }, 0);
  t.equal(buf.readUInt16LE(6), MsgType.FABRIC_WRITE);
  t.equal(MsgType.FABRIC_WRITE, 12);
  t.equal(buf.readUInt32LE(8), 24);
  t.equal(buf.readUInt32LE(HEADER_SIZE), 3, 'bar');
  t.equal(buf.readUInt32LE(HEADER_SIZE + 4), 2, 'size');
  t.equal(buf.readBigUInt64LE(HEADER_SIZE + 8), 0x10004000n, 'address');
  t.equal(buf.readBigUInt64LE(HEADER_SIZE + 16), 0xbeefn, 'value');
  const badBar = Buffer.from(buf);
  badBar.writeUInt32LE(NUM_BARS, HEADER_SIZE);
  t.equal(new MessageReader().push(badBar)[0]!.message.type, 'INVALID', 'a BAR outside 0..5 is refused');
  for (const size of [0, 3, 16]) {
    const badSize = Buffer.from(buf);
    badSize.writeUInt32LE(size, HEADER_SIZE + 4);
    t.equal(new MessageReader().push(badSize)[0]!.message.type, 'INVALID', `a ${size}-byte access is refused`);
  }
});

t.test('FABRIC_READ matches struct vlink_fabric_read (24 bytes), FABRIC_READ_REPLY vlink_fabric_read_reply (16); bounds checked', async (t) => {
  t.equal(MsgType.FABRIC_READ, 13);
  t.equal(MsgType.FABRIC_READ_REPLY, 14);
  const buf = encode({ type: 'FABRIC_READ', bar: 2, size: 8, address: 0x8000104008n, tag: 7 }, 0);
  t.equal(buf.readUInt16LE(6), MsgType.FABRIC_READ);
  t.equal(buf.readUInt32LE(8), 24);
  t.equal(buf.readUInt32LE(HEADER_SIZE), 2, 'bar');
  t.equal(buf.readUInt32LE(HEADER_SIZE + 4), 8, 'size');
  t.equal(buf.readBigUInt64LE(HEADER_SIZE + 8), 0x8000104008n, 'address');
  t.equal(buf.readUInt32LE(HEADER_SIZE + 16), 7, 'tag');
  t.equal(buf.readUInt32LE(HEADER_SIZE + 20), 0, 'reserved');
  const badBar = Buffer.from(buf);
  badBar.writeUInt32LE(NUM_BARS, HEADER_SIZE);
  t.equal(new MessageReader().push(badBar)[0]!.message.type, 'INVALID', 'a BAR outside 0..5 is refused');
  for (const size of [0, 5, 4096]) {
    const badSize = Buffer.from(buf);
    badSize.writeUInt32LE(size, HEADER_SIZE + 4);
    t.equal(new MessageReader().push(badSize)[0]!.message.type, 'INVALID', `a ${size}-byte read is refused`);
  }
  const reply = encode({ type: 'FABRIC_READ_REPLY', tag: 7, status: 3, value: 0x1122334455667788n }, 1);
  t.equal(reply.readUInt32LE(8), 16);
  t.equal(reply.readUInt32LE(HEADER_SIZE), 7, 'tag');
  t.equal(reply.readUInt32LE(HEADER_SIZE + 4), 3, 'status');
  t.equal(reply.readBigUInt64LE(HEADER_SIZE + 8), 0x1122334455667788n, 'value');
  // A reply cut short cannot be trusted with a tag: unknown, never acted on.
  const short = Buffer.concat([reply.subarray(0, HEADER_SIZE), reply.subarray(HEADER_SIZE, HEADER_SIZE + 8)]);
  short.writeUInt32LE(8, 8);
  t.equal(new MessageReader().push(short)[0]!.message.type, 'UNKNOWN', 'a short reply is not decoded');
});

t.test('HOST_CONFIG from a sender without the MSI message (8 bytes) decodes with address and data 0', async (t) => {
  const payload = Buffer.alloc(8);
  payload.writeUInt32LE(4, 0);
  payload.writeUInt32LE(6, 4);
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt32LE(VLINK_MAGIC, 0);
  header.writeUInt16LE(1, 4);
  header.writeUInt16LE(MsgType.HOST_CONFIG, 6);
  header.writeUInt32LE(8, 8);
  const [decoded] = new MessageReader().push(Buffer.concat([header, payload]));
  t.same(decoded!.message, { type: 'HOST_CONFIG', msiEnabledVectors: 4, command: 6, msiAddress: 0n, msiData: 0 });
  t.equal(encode(decoded!.message as never, 0).readUInt32LE(8), 24, 'passed on with the appended fields');
});
