/**
 * netdev-transfer: a bulk TCP transfer over the ntb interfaces (busybox nc), checked end to end with
 * sha256, timed in the sender, and observed per queue pair: which QPs carried it (ntb_transport's
 * debugfs counters), which doorbell vectors the receiver got (kprobe on ntb_db_event), which host
 * vectors the relay delivered, and what db_vector_mask() answered for each vector.
 */
import { z } from 'zod';
import { expandCounts } from '../../ntb/interrupts.ts';
import { clearTrace, parseDbEventTrace } from '../../ntb/kprobe.ts';
import type { GuestExec } from '../../guest/types.ts';
import { run } from '../../ntb/shell.ts';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';
import { activeQps, enableVectorMaskProbe, NTB_ADDR, netdevState, parseVectorMasks, readQpStats, readTrace } from './netdev.ts';
import { directions, sides, type Direction } from './observe.ts';
import type { Rig } from '../rig.ts';
import type { Side } from '../../results/model.ts';
import { setBits, sleep, type Out } from './util.ts';

const schema = stepSchema(
  'netdev-transfer',
  {
    direction: direction.default('both'),
    size: z.number().int().min(4096).max(256 << 20).default(4 << 20).describe('bytes sent each way'),
    port: z.number().int().min(1024).max(65535).default(5201),
  },
  'send `size` random bytes over TCP each way (busybox nc), compare sha256, time it, observe QPs and doorbell vectors',
);
export type NetdevTransferStep = StepOf<typeof schema>;

const TX = '/tmp/ntbh-tx';
const RX = '/tmp/ntbh-rx';

/** Per rig and side: whether the db_vector_mask probes are defined (undefined: not tried yet). */
const maskProbes = new WeakMap<Rig, Partial<Record<Side, boolean>>>();

async function vectorMaskProbe(rig: Rig, side: Side): Promise<boolean> {
  const known = maskProbes.get(rig) ?? {};
  maskProbes.set(rig, known);
  if (known[side] === undefined) known[side] = rig.observe[side].kprobe && (await enableVectorMaskProbe(rig.guest(side), side));
  return known[side]!;
}

/** Starts the listener detached, in its own session (the sleep keeps nc's stdin open: on EOF it would shut its side). */
export async function listen(rx: GuestExec, port: number, seconds: number): Promise<number> {
  const pid = await run(
    rx,
    `rm -f ${RX}; setsid sh -c 'sleep ${seconds} | nc -l -p ${port} > ${RX}' </dev/null >/dev/null 2>&1 & echo $!`,
  );
  for (let i = 0; i < 50; i++) {
    if ((await rx.exec(`netstat -ltn 2>/dev/null | grep -q ':${port} '`)).exitCode === 0) break;
    await sleep(200);
  }
  return Number(pid.trim());
}

export async function transferOnce(rig: Rig, step: Pick<NetdevTransferStep, 'size' | 'port'>, dir: Direction, out: Out): Promise<void> {
  const { sender, receiver } = sides(dir);
  const tx = rig.guest(sender);
  const rx = rig.guest(receiver);
  const count = Math.ceil(step.size / 65536);
  const bytes = count * 65536;
  const sum = (await run(tx, `dd if=/dev/urandom of=${TX} bs=65536 count=${count} 2>/dev/null && sha256sum ${TX}`, { timeoutMs: rig.ms(120_000) })).split(/\s/)[0];

  const sendLimit = Math.ceil(rig.ms(600_000) / 1000);
  const listener = await listen(rx, step.port, sendLimit + 60);
  const probeMasks = await vectorMaskProbe(rig, receiver);
  if (rig.observe[receiver].kprobe) await clearTrace(rx);
  const qpBefore = await readQpStats(rx);
  const wireMark = receiver === 'host' ? rig.link.mark() : undefined;

  const sent = await tx.exec(
    `t0=$(cut -d' ' -f1 /proc/uptime); timeout ${sendLimit} nc ${NTB_ADDR[receiver]} ${step.port} < ${TX}; rc=$?; t1=$(cut -d' ' -f1 /proc/uptime); echo "$rc $t0 $t1"`,
    { timeoutMs: rig.ms(660_000) },
  );
  const [rc, t0, t1] = sent.stdout.trim().split(/\s+/).map(Number);
  // The listener exits when the sender's stream ends; give it a moment, then reap the session.
  for (let i = 0; i < 30 && (await rx.exec(`kill -0 ${listener} 2>/dev/null && pidof nc >/dev/null`)).exitCode === 0; i++) await sleep(500);
  await rx.exec(`kill -- -${listener} 2>/dev/null; true`);
  const got = (await rx.exec(`sha256sum ${RX} 2>/dev/null; stat -c %s ${RX} 2>/dev/null`)).stdout.trim().split(/\s+/);
  const match = rc === 0 && got[0] === sum && Number(got[2]) === bytes;
  out.add('match', match, { on: receiver, label: dir, params: { size: bytes }, detail: `sent ${bytes} bytes sha256 ${sum?.slice(0, 16)}…, received ${got[2] ?? 0} bytes sha256 ${(got[0] ?? '').slice(0, 16)}…, nc exit ${rc}` });
  const seconds = (t1 ?? 0) - (t0 ?? 0);
  if (match && seconds > 0) {
    // Integer kbit/s: expressions compare integers.
    const kbit = Math.round((bytes * 8) / seconds / 1000);
    out.add('kbit_s', kbit, { on: sender, label: dir, params: { size: bytes }, detail: `${bytes} bytes in ${seconds.toFixed(2)} s (guest clock)` });
  } else {
    out.unavailable('kbit_s', match ? 'transfer took under the clock resolution' : 'the transfer did not complete intact', { on: sender, label: dir });
  }

  // Per queue pair: which QPs carried the data, which vectors their doorbells arrived on.
  const qps = activeQps(qpBefore, await readQpStats(rx), 'rx_pkts');
  out.add('qps', qps, { on: receiver, label: dir });
  const params = { B: qps };
  if (rig.observe[receiver].kprobe) {
    const trace = await readTrace(rx);
    const events = parseDbEventTrace(trace);
    const vectors = [...new Set(events)].sort((a, b) => a - b);
    out.add('vectors', vectors, { on: receiver, label: dir, params, detail: `${events.length} ntb_db_event calls` });
    const masks = parseVectorMasks(trace);
    for (const v of vectors) {
      const seen = masks.get(v) ?? [];
      const value = probeMasks ? (seen.length === 0 ? null : seen.length === 1 ? seen[0]! : seen) : null;
      const detail = probeMasks ? undefined : 'no db_vector_mask op on this side: ntb_db_vector_mask() falls back to db_valid_mask';
      out.add('vector_mask', value, { on: receiver, label: `${dir} vector ${v}`, params: { ...params, i: v }, detail });
    }
  } else {
    out.unavailable('vectors', 'no kprobe on ntb_db_event on the receiver', { on: receiver, label: dir });
  }
  if (wireMark) {
    const wire = [...new Set(expandCounts(rig.link.msiCounts(wireMark)))].filter((v) => v !== 0).sort((a, b) => a - b);
    out.add('wire', wire, { on: receiver, label: dir, params, detail: `QPs ${setBits(qps).join(',') || 'none'}` });
  }
  await rig.guest(sender).exec(`rm -f ${TX}`);
  await rx.exec(`rm -f ${RX}`);
}

async function netdevTransfer(rig: Rig, step: NetdevTransferStep, out: Out): Promise<void> {
  netdevState(rig);
  for (const dir of directions(step.direction)) await transferOnce(rig, step, dir, out);
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    match: { spec: 'true', doc: 'every byte arrived: sizes and sha256 agree, nc exited 0' },
    kbit_s: { spec: 'value > 0', doc: 'throughput in kbit/s, timed by the sender from connect to the end of the stream (guest clock)' },
    qps: { spec: 'value > 0', doc: "mask of the receiver's queue pairs whose rx_pkts rose" },
    vectors: { spec: 'bits(B)', doc: 'distinct vectors ntb_db_event got on the receiver (kprobe); QP q rings bit q', note: 'B = qps' },
    vector_mask: { spec: 'bit(i)', doc: 'what db_vector_mask(i) answered ntb_transport for each vector i seen (kprobe on the driver op)' },
    wire: { spec: 'bits(B) + 2', doc: 'host vector indices the relay delivered during the transfer, link vector 0 left out; EP→host only', note: 'EP→host' },
  },
  run: netdevTransfer,
  budget: (s) => (s.direction === 'both' ? 2 : 1) * 900,
  docs: { lead: 'per direction' },
});
