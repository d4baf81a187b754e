// Fault injection in the relay (harness/link/faults.ts): the next N MSIs on one vector are dropped,
// delayed or duplicated, other vectors pass untouched, and every applied fault is in the trace.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultPlan } from '../../harness/link/faults.ts';
import { LinkRelay } from '../../harness/link/relay.ts';
import { encode, MessageReader, type FunctionDescription, type Message, type OutMessage } from '../../harness/link/wire.ts';

// Two scripted sockets stand in for the QEMU devices (as in relay.test.ts).
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
  raises(): number[] {
    return this.received.filter((m) => m.type === 'RAISE_IRQ').map((m) => (m as { number: number }).number);
  }
}

const description: FunctionDescription = {
  vendorId: 0x1957, deviceId: 0x0809, revision: 0, progif: 0, subclass: 0, classCode: 5, subsysVendorId: 0, subsysId: 0, intxPin: 0, msiVectors: 16,
  bars: Array.from({ length: 6 }, () => ({ epRamOffset: 0n, size: 0n, flags: 0 })),
};

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('FaultPlan: rules are per vector, used up in order, disarm forgets the rest', async (t) => {
  const plan = new FaultPlan();
  plan.arm({ vector: 2, action: 'drop', count: 2 });
  plan.arm({ vector: 2, action: 'duplicate', count: 1 });
  t.equal(plan.take(3), undefined, 'another vector passes');
  t.same([plan.take(2)?.action, plan.take(2)?.action, plan.take(2)?.action, plan.take(2)], ['drop', 'drop', 'duplicate', undefined]);
  t.same(plan.applied, { drop: 2, delay: 0, duplicate: 1 });
  plan.arm({ vector: 4, action: 'delay', count: 5, delayMs: 10 });
  t.equal(plan.pending(), 5);
  plan.disarm();
  t.equal(plan.pending(), 0);
});

t.test('the relay drops, duplicates and delays the next N MSIs of a vector and traces each fault', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(0, dir, join(dir, 'wire.ndjson'));
  relay.plugger = { plug: async () => undefined, unplug: async () => undefined };
  await relay.listen();
  t.teardown(() => relay.close());
  const ep = await FakeDevice.open(relay.socketPath.ep);
  const rc = await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'START', ...description });
  await relay.waitLinkState(true, 2000);

  relay.faults.arm({ vector: 2, action: 'drop', count: 2 });
  relay.faults.arm({ vector: 3, action: 'duplicate', count: 1, delayMs: 100 });
  relay.faults.arm({ vector: 4, action: 'delay', count: 1, delayMs: 150 });
  const mark = relay.mark();
  for (const n of [3, 3, 3, 4, 4, 5, 2]) ep.send({ type: 'RAISE_IRQ', irqType: 2, number: n });
  await settle(50);
  t.same(rc.raises(), [3, 4, 4, 2], 'MSI 3 (vector 2): two dropped, the third passes; MSI 4 once, its copy and MSI 5 held back');
  await settle(250);
  t.same(rc.raises(), [3, 4, 4, 2, 4, 5], 'the copy comes after its gap, the delayed MSI after its delay');
  for (const n of rc.raises()) rc.send({ type: 'IRQ_RESULT', irqType: 2, number: n, result: 0 });
  await settle(60);
  t.same([...relay.msiCounts(mark)].sort(), [[1, 1], [2, 1], [3, 3], [4, 1]], 'delivered per vector: duplicates count twice, drops not at all');
  t.equal(relay.msiDeliveries(mark).filter((d) => d.result === 'dropped').length, 2, 'each drop is a delivery outcome');
  t.equal(relay.faults.pending(), 0);

  await relay.close();
  const trace = (await readFile(join(dir, 'wire.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.same(
    trace.filter((e) => e.type === 'FAULT').map((e) => `${e.action}:${e.vector}`),
    ['drop:2', 'drop:2', 'duplicate:3', 'delay:4'],
    'every applied fault is in wire.ndjson',
  );
});

t.test('closing the relay cancels a held MSI (no timer outlives the link)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'relay-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const relay = new LinkRelay(1, dir, join(dir, 'wire.ndjson'));
  relay.plugger = { plug: async () => undefined, unplug: async () => undefined };
  await relay.listen();
  const ep = await FakeDevice.open(relay.socketPath.ep);
  await FakeDevice.open(relay.socketPath.rc);
  ep.send({ type: 'START', ...description });
  await relay.waitLinkState(true, 2000);
  relay.faults.arm({ vector: 2, action: 'delay', count: 1, delayMs: 60_000 });
  ep.send({ type: 'RAISE_IRQ', irqType: 2, number: 3 });
  await settle(50);
  await relay.close();
  t.equal(relay.faults.pending(), 0);
});
