import t from 'tap';
import { connect, type Socket } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinkRelay, type Plugger } from '../../harness/link/relay.ts';
import { encode, HEADER_SIZE, MessageReader, MsgType, VLINK_MAGIC, type FunctionDescription, type Message, type OutMessage } from '../../harness/link/wire.ts';

// Orchestration logic only: two scripted sockets stand in for the QEMU devices. The real devices
// are exercised by the e2e link tests.
class FakeDevice {
  readonly received: Message[] = [];
  private reader = new MessageReader();
  private seq = 0;
  constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => this.received.push(...this.reader.push(chunk).map((m) => m.message)));
  }
  static async open(path: string): Promise<FakeDevice> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
    return new FakeDevice(socket);
  }
  send(message: OutMessage): void {
    this.socket.write(encode(message, this.seq++));
  }
  async waitFor(type: string, count = 1): Promise<Message[]> {
    for (let i = 0; i < 200; i++) {
      const found = this.received.filter((m) => m.type === type);
      if (found.length >= count) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${type}`);
  }
}

const description: FunctionDescription = {
  vendorId: 0x1957, deviceId: 0x0809, revision: 0, progif: 0, subclass: 0, classCode: 5, subsysVendorId: 0, subsysId: 0, intxPin: 0, msiVectors: 16,
  bars: Array.from({ length: 6 }, () => ({ epRamOffset: 0n, size: 0n, flags: 0 })),
};

t.test('START plugs, MSIs are forwarded and counted per vector, STOP unplugs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(0, dir, join(dir, 'wire.ndjson'));
  const calls: string[] = [];
  const plugger: Plugger = {
    plug: async (d) => void calls.push(`plug ${d.vendorId.toString(16)}:${d.deviceId.toString(16)} msi=${d.msiVectors}`),
    unplug: async () => void calls.push('unplug'),
  };
  relay.plugger = plugger;
  await relay.listen();
  t.teardown(() => relay.close());
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'HELLO', role: 1, linkId: 0 });
  await ep.waitFor('LINK_STATE');

  ep.send({ type: 'RAISE_IRQ', irqType: 2, number: 3 });
  ep.send({ type: 'START', ...description });
  await relay.waitLinkState(true, 2000);
  t.same(calls, ['plug 1957:809 msi=16']);
  const mark = relay.mark();
  for (const n of [3, 3, 4]) ep.send({ type: 'RAISE_IRQ', irqType: 2, number: n });
  const raises = await rc.waitFor('RAISE_IRQ', 3);
  t.same(raises.map((m) => (m as { number: number }).number), [3, 3, 4], 'raises reach the RC in order');
  rc.send({ type: 'IRQ_RESULT', irqType: 2, number: 3, result: 0 });
  rc.send({ type: 'IRQ_RESULT', irqType: 2, number: 3, result: 0 });
  rc.send({ type: 'IRQ_RESULT', irqType: 2, number: 4, result: 1 });
  rc.send({ type: 'HOST_CONFIG', msiEnabledVectors: 16, command: 6, msiAddress: 0xfee00000n, msiData: 0 });
  await ep.waitFor('HOST_CONFIG');
  // The EP's answer completes the host's config write: it goes back to the RC.
  ep.send({ type: 'HOST_CONFIG_ACK', msiEnabledVectors: 16, command: 6, msiAddress: 0xfee00000n, msiData: 0 });
  const [ack] = await rc.waitFor('HOST_CONFIG_ACK');
  t.same(ack, { type: 'HOST_CONFIG_ACK', msiEnabledVectors: 16, command: 6, msiAddress: 0xfee00000n, msiData: 0 }, 'HOST_CONFIG_ACK reaches the RC');
  t.same([...relay.msiCounts(mark)], [[2, 2]], 'only delivered MSIs count, by vector index (number - 1)');
  t.same(relay.msiDeliveries(mark).map((d) => d.result), ['delivered', 'delivered', 'msi-disabled']);
  t.same(relay.msiDeliveries().map((d) => d.result)[0], 'not-plugged', 'a raise before link up is recorded as not plugged');
  t.equal(relay.msiLatenciesMs.length, 2);

  ep.send({ type: 'STOP' });
  await relay.waitLinkState(false, 2000);
  t.same(calls, ['plug 1957:809 msi=16', 'unplug']);
  await relay.close();
  const trace = (await readFile(join(dir, 'wire.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.ok(trace.some((e) => e.type === 'MSI' && e.vector === 2 && e.result === 'delivered'), 'the NDJSON trace names each MSI');
  t.ok(trace.every((e) => typeof e.t === 'number' && e.link === 0));
});

t.test('oversized and out-of-range messages are clean protocol errors: logged, dropped, the link goes on', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(1, dir, join(dir, 'wire.ndjson'));
  const plugged: FunctionDescription[] = [];
  relay.plugger = { plug: async (d) => void plugged.push(structuredClone(d)), unplug: async () => undefined };
  await relay.listen();
  t.teardown(() => relay.close());
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'START', ...description });
  await relay.waitLinkState(true, 2000);

  // A SET_BAR for BAR 4096 (the relay used to store it into bars[4096]) and a 64 KiB message.
  const setBar = encode({ type: 'SET_BAR', bar: 0, entry: { epRamOffset: 0x1000n, size: 0x1000n, flags: 1 } }, 50);
  setBar.writeUInt32LE(4096, HEADER_SIZE);
  const huge = Buffer.alloc(HEADER_SIZE + 65536);
  huge.writeUInt32LE(VLINK_MAGIC, 0);
  huge.writeUInt16LE(1, 4);
  huge.writeUInt16LE(MsgType.RAISE_IRQ, 6);
  huge.writeUInt32LE(65536, 8);
  ep.socket.write(Buffer.concat([setBar, huge]));
  ep.send({ type: 'RAISE_IRQ', irqType: 2, number: 1 });
  await rc.waitFor('RAISE_IRQ');
  const errors = relay.events().filter((e) => e.type === 'PROTOCOL_ERROR');
  t.same(
    errors.map((e) => e.error),
    ['SET_BAR for BAR4096, outside 0..5', 'payload of 65536 bytes exceeds 1024'],
  );
  t.notOk(rc.received.some((m) => m.type === 'SET_BAR'), 'the bad SET_BAR is not forwarded');
  t.notOk(ep.socket.destroyed, 'the EP stays connected, as the C side keeps its connection');

  ep.send({ type: 'STOP' });
  await relay.waitLinkState(false, 2000);
  ep.send({ type: 'START', ...description });
  await relay.waitLinkState(true, 2000);
  t.equal(plugged.at(-1)!.bars.length, 6, 'the description still has exactly six BARs');
});

t.test('DOORBELL from the RC function reaches the EP, is traced and counted', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(0, dir, join(dir, 'wire.ndjson'));
  relay.plugger = { plug: async () => undefined, unplug: async () => undefined };
  await relay.listen();
  t.teardown(() => relay.close());
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'HELLO', role: 1, linkId: 0 });
  await ep.waitFor('LINK_STATE');
  rc.send({ type: 'DOORBELL', bar: 2, size: 4, offset: 0n, value: 1n });
  rc.send({ type: 'DOORBELL', bar: 2, size: 4, offset: 0n, value: 1n });
  const got = await ep.waitFor('DOORBELL', 2);
  t.same(got[0], { type: 'DOORBELL', bar: 2, size: 4, offset: 0n, value: 1n }, 'forwarded unchanged');
  t.equal(relay.doorbellWrites, 2);
  t.equal(relay.events().filter((e) => e.type === 'DOORBELL' && e.from === 'rc').length, 2, 'in the trace, as sent by the RC');
  ep.socket.destroy();
  rc.socket.destroy();
});

t.test('FABRIC_WRITE from the RC reaches the EP in order, is counted per link and summarised, not traced per write', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tracePath = join(dir, 'wire.ndjson');
  const relay = new LinkRelay(1, dir, tracePath);
  relay.plugger = { plug: async () => undefined, unplug: async () => undefined };
  await relay.listen();
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'HELLO', role: 1, linkId: 1 });
  await ep.waitFor('LINK_STATE');
  const count = 500;
  for (let i = 0; i < count; i++) rc.send({ type: 'FABRIC_WRITE', bar: 2, size: i % 2 ? 4 : 8, address: 0x10000000n + BigInt(i * 8), value: BigInt(i) });
  // A doorbell after them must arrive after them: one ordered stream per link.
  rc.send({ type: 'DOORBELL', bar: 2, size: 4, offset: 0n, value: 1n });
  await ep.waitFor('DOORBELL');
  const got = ep.received.filter((m) => m.type === 'FABRIC_WRITE' || m.type === 'DOORBELL');
  t.equal(got.length, count + 1);
  t.same(got.slice(0, count).map((m) => (m as { value: bigint }).value), Array.from({ length: count }, (_, i) => BigInt(i)), 'in the order the host made them');
  t.equal(got.at(-1)!.type, 'DOORBELL', 'the doorbell comes last');
  t.same(relay.fabric, { writes: count, bytes: (count / 2) * 8 + (count / 2) * 4 });
  t.equal(relay.events().filter((e) => e.type === 'FABRIC_WRITE').length, 0, 'no trace record per write');
  ep.socket.destroy();
  rc.socket.destroy();
  await relay.close();
  const trace = (await readFile(tracePath, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  const summaries = trace.filter((e) => e.type === 'FABRIC');
  t.ok(summaries.length >= 1, 'a FABRIC summary in the trace');
  t.match(summaries.at(-1), { link: 1, from: 'relay', writes: count, bytes: 3000, final: true }, 'the closing summary has the totals');
});

t.test('FABRIC_READ goes to the EP in order with the writes, its reply back to the RC; counted, summarised, not traced', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const tracePath = join(dir, 'wire.ndjson');
  const relay = new LinkRelay(2, dir, tracePath);
  relay.plugger = { plug: async () => undefined, unplug: async () => undefined };
  await relay.listen();
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'HELLO', role: 1, linkId: 2 });
  await ep.waitFor('LINK_STATE');
  rc.send({ type: 'FABRIC_WRITE', bar: 2, size: 4, address: 0x10000000n, value: 0xabn });
  rc.send({ type: 'FABRIC_READ', bar: 2, size: 4, address: 0x10000000n, tag: 1 });
  const [read] = await ep.waitFor('FABRIC_READ');
  t.same(read, { type: 'FABRIC_READ', bar: 2, size: 4, address: 0x10000000n, tag: 1 }, 'forwarded unchanged');
  const order = ep.received.filter((m) => m.type.startsWith('FABRIC')).map((m) => m.type);
  t.same(order, ['FABRIC_WRITE', 'FABRIC_READ'], 'the read does not pass the write before it');
  ep.send({ type: 'FABRIC_READ_REPLY', tag: 1, status: 0, value: 0xabn });
  const [reply] = await rc.waitFor('FABRIC_READ_REPLY');
  t.same(reply, { type: 'FABRIC_READ_REPLY', tag: 1, status: 0, value: 0xabn }, 'the completion reaches the RC');
  // Tag 2 never answered (the RC times out), so tag 3 follows it; the EP refuses 3.
  rc.send({ type: 'FABRIC_READ', bar: 2, size: 8, address: 0x10000008n, tag: 2 });
  rc.send({ type: 'FABRIC_READ', bar: 2, size: 8, address: 0x10000008n, tag: 3 });
  await ep.waitFor('FABRIC_READ', 3);
  ep.send({ type: 'FABRIC_READ_REPLY', tag: 2, status: 0, value: 0n });
  ep.send({ type: 'FABRIC_READ_REPLY', tag: 3, status: 1, value: 0n });
  await rc.waitFor('FABRIC_READ_REPLY', 3);
  t.match(relay.fabricReads, { reads: 3, bytes: 20, failed: 1, timedOut: 1, late: 1, answered: 2 });
  t.equal(relay.events().filter((e) => e.type.startsWith('FABRIC_READ')).length, 0, 'no trace record per read');
  ep.socket.destroy();
  rc.socket.destroy();
  await relay.close();
  const trace = (await readFile(tracePath, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.match(trace.filter((e) => e.type === 'FABRIC').at(-1), { link: 2, writes: 1, reads: 3, readBytes: 20, readsFailed: 1, readsTimedOut: 1, readsLate: 1, final: true }, 'the closing summary has the read counts');
});

t.test('a dropped FABRIC_READ (fault) never reaches the EP and counts as timed out when the next read comes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(0, dir, join(dir, 'wire.ndjson'));
  await relay.listen();
  t.teardown(() => relay.close());
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  t.teardown(() => { ep.socket.destroy(); rc.socket.destroy(); });
  relay.dropFabricReads = 1;
  rc.send({ type: 'FABRIC_READ', bar: 2, size: 4, address: 0x1000n, tag: 1 });
  rc.send({ type: 'FABRIC_READ', bar: 2, size: 4, address: 0x1000n, tag: 2 });
  const [read] = await ep.waitFor('FABRIC_READ');
  t.equal((read as { tag: number }).tag, 2, 'only the second read reaches the EP');
  t.equal(ep.received.filter((m) => m.type === 'FABRIC_READ').length, 1);
  t.match(relay.fabricReads, { reads: 2, timedOut: 1 });
  t.ok(relay.events().some((e) => e.type === 'FAULT' && e.msgType === 'FABRIC_READ' && e.tag === 1), 'the drop is a FAULT event in the trace');
});

t.test('FABRIC_READ with no EP connected is completed by the relay at once (no-ep), not left to time out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(0, dir, join(dir, 'wire.ndjson'));
  await relay.listen();
  t.teardown(() => relay.close());
  const rc = await FakeDevice.open(relay.socketPath.rc);
  t.teardown(() => rc.socket.destroy());
  rc.send({ type: 'FABRIC_READ', bar: 0, size: 1, address: 0x20000000n, tag: 9 });
  const [reply] = await rc.waitFor('FABRIC_READ_REPLY');
  t.same(reply, { type: 'FABRIC_READ_REPLY', tag: 9, status: 3, value: 0n });
  t.match(relay.fabricReads, { reads: 1, failed: 1, timedOut: 0 });
});

t.test('an EP memory write to the host MSI address is an MSI on the wire (path write), counted per vector', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(0, dir, join(dir, 'wire.ndjson'));
  relay.plugger = { plug: async () => undefined, unplug: async () => undefined };
  await relay.listen();
  t.teardown(() => relay.close());
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'HELLO', role: 1, linkId: 0 });
  ep.send({ type: 'START', ...description });
  await ep.waitFor('LINK_STATE', 2);
  rc.send({ type: 'HOST_CONFIG', msiEnabledVectors: 16, command: 6, msiAddress: 0xfee00000n, msiData: 0x4020 });
  await ep.waitFor('HOST_CONFIG');
  ep.send({ type: 'MEM_WRITE', address: 0xfee00000n, size: 4, value: 0x4023n });
  ep.send({ type: 'MEM_WRITE', address: 0xfee00000n, size: 4, value: 0x4023n });
  ep.send({ type: 'MEM_WRITE', address: 0x1000n, size: 4, value: 0x4020n });
  ep.send({ type: 'RAISE_IRQ', irqType: 2, number: 1 });
  const writes = await rc.waitFor('MEM_WRITE', 3);
  t.equal(writes.length, 3, 'every write is forwarded to the RC function');
  t.same(relay.msiDeliveries().map((d) => [d.vector, d.result, d.path]), [[3, 'delivered', 'write'], [3, 'delivered', 'write']], 'only writes to the MSI address are MSIs');
  t.same([...relay.msiCounts()], [[3, 2]]);
  t.ok(relay.events().some((e) => e.type === 'MSI' && e.path === 'write'), 'the trace says which path carried it');
  ep.socket.destroy();
  rc.socket.destroy();
});
