import t from 'tap';
import { encode, MessageReader, decodeHeader, VLINK_MAGIC, HEADER_SIZE } from '../../harness/link/wire.ts';

t.test('every message type survives encode → chunked reassembly → decode', async (t) => {
  const bars = Array.from({ length: 6 }, (_, n) => ({ epRamOffset: BigInt(n) * 0x10000n, size: n === 0 ? 0x1000n : 0n, flags: n === 0 ? 1 : 0 }));
  const messages = [
    { type: 'HELLO', role: 1, linkId: 3 },
    { type: 'START', vendorId: 0x1957, deviceId: 0x0809, revision: 1, progif: 0, subclass: 0, classCode: 5, subsysVendorId: 0, subsysId: 0, intxPin: 1, msiVectors: 16, bars },
    { type: 'STOP' },
    { type: 'SET_BAR', bar: 4, entry: { epRamOffset: 0x1234000n, size: 0x100000n, flags: 7 } },
    { type: 'RAISE_IRQ', irqType: 2, number: 5 },
    { type: 'IRQ_RESULT', irqType: 2, number: 5, result: 0 },
    { type: 'HOST_CONFIG', msiEnabledVectors: 16, command: 6 },
    { type: 'WINDOW', index: 2, mapped: 1, apertureOffset: 0x2000n, pciAddr: 0x7ff00000n, size: 0x100000n },
    { type: 'LINK_STATE', up: 1 },
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
