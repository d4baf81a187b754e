/**
 * guest-stop: stop one guest's vCPUs (QMP `stop`) for some seconds in the middle of a host→EP
 * transfer over ntb_netdev, then resume it (`cont`). Nothing may hang: the guest answers again, the
 * interrupted transfer completes intact (TCP and ntb_transport pick up where they were), both
 * carriers stay or come back on, and fresh traffic flows both ways.
 */
import { z } from 'zod';
import { HarnessError } from '../../errors.ts';
import type { Rig } from '../rig.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { NTB_ADDR, netdevState, waitCarrier } from './netdev.ts';
import { listen, transferOnce } from './netdev-transfer.ts';
import { sleep, type Out } from './util.ts';

const schema = stepSchema(
  'guest-stop',
  {
    guest: z.enum(['ep', 'host']),
    seconds: z.number().positive().max(600).default(10).describe('how long the guest stays stopped'),
    size: z.number().int().min(4096).max(256 << 20).default(1 << 20).describe('bytes of the checking transfer afterwards, each way'),
    port: z.number().int().min(1024).max(65535).default(5204),
  },
  'stop one guest (QMP stop) during a host→EP ntb_netdev transfer, resume it; the transfer must finish intact and traffic flow both ways',
);
export type GuestStopStep = StepOf<typeof schema>;

const BG = '/tmp/ntbh-bg';

async function guestStop(rig: Rig, step: GuestStopStep, out: Out): Promise<void> {
  const pause = rig.ctx.pause;
  if (!pause) throw new HarnessError('this cell cannot stop a guest (no QMP)', { code: 'PAUSE_UNSUPPORTED', kind: 'input', phase: 'step' });
  const state = netdevState(rig);
  const count = 128; // 8 MiB of random data: long enough to be cut, short enough to finish.
  const sum = (await rig.host.exec(`dd if=/dev/urandom of=${BG} bs=65536 count=${count} 2>/dev/null && sha256sum ${BG}`, { timeoutMs: rig.ms(120_000) })).stdout.split(/\s/)[0];
  const listener = await listen(rig.ep, step.port, 3600);
  const sender = Number((await rig.host.exec(`setsid sh -c 'nc ${NTB_ADDR.ep} ${step.port} < ${BG}' </dev/null >/dev/null 2>&1 & echo $!`)).stdout.trim());
  let moving = false;
  for (let i = 0; i < 60 && !moving; i++) {
    moving = Number((await rig.ep.exec('stat -c %s /tmp/ntbh-rx 2>/dev/null || echo 0')).stdout.trim()) > 0;
    if (!moving) await sleep(500);
  }
  out.add('traffic_during', moving);

  await pause(step.guest, true);
  try {
    await sleep(step.seconds * 1000);
  } finally {
    await pause(step.guest, false);
  }
  const alive = await rig.guest(step.guest).exec('true', { timeoutMs: rig.ms(60_000) }).then((r) => r.exitCode === 0, () => false);
  out.add('resumed', alive, { on: step.guest });

  // The interrupted transfer must now finish by itself, intact.
  let done = false;
  for (let i = 0; i < 240 && !done; i++) {
    done = (await rig.ep.exec(`kill -0 ${listener} 2>/dev/null && pidof nc >/dev/null`)).exitCode !== 0;
    if (!done) await sleep(1000);
  }
  const got = (await rig.ep.exec('sha256sum /tmp/ntbh-rx 2>/dev/null; stat -c %s /tmp/ntbh-rx 2>/dev/null')).stdout.trim().split(/\s+/);
  out.add('transfer_survived', done && got[0] === sum && Number(got[2]) === count * 65536, {
    on: 'ep',
    detail: `${got[2] ?? 0} of ${count * 65536} bytes, sha256 ${got[0] === sum ? 'matches' : 'differs'}${done ? '' : ', still running after 240 s'}`,
  });
  await rig.host.exec(`kill -- -${sender} 2>/dev/null; rm -f ${BG}; true`);
  await rig.ep.exec(`kill -- -${listener} 2>/dev/null; rm -f /tmp/ntbh-rx; true`);

  for (const side of ['ep', 'host'] as const) out.add('carrier', await waitCarrier(rig.guest(side), state.iface[side], rig.ms(60_000)), { on: side, label: side });
  for (const dir of ['host-to-ep', 'ep-to-host'] as const) await transferOnce(rig, { size: step.size, port: step.port }, dir, out);
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    traffic_during: { spec: 'true', doc: 'the background transfer was moving when the guest was stopped' },
    resumed: { spec: 'true', doc: 'the stopped guest answers again after `cont`' },
    transfer_survived: { spec: 'true', doc: 'the transfer cut by the stop finished by itself, every byte intact' },
    carrier: { spec: 'true', doc: 'carrier on on both sides afterwards', note: 'per side' },
    match: { spec: 'true', doc: 'a fresh transfer each way arrived intact' },
    kbit_s: { spec: 'value > 0', doc: 'its throughput, kbit/s' },
    qps: { spec: 'value > 0', doc: "mask of the receiver's QPs that carried it" },
    vectors: { spec: 'bits(B)', doc: 'doorbell vectors the receiver got (B = qps)' },
    vector_mask: { spec: 'bit(i)', doc: 'db_vector_mask(i) for each vector seen' },
    wire: { spec: 'bits(B) + 2', doc: 'relay-delivered host vectors (EP→host)' },
  },
  run: guestStop,
  budget: (s) => 900 + s.seconds,
});
