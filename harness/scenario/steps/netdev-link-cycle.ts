/**
 * netdev-link-cycle: take the link down in the middle of a host→EP transfer and bring it back. The
 * host's ntb_hw_epf device goes away with the function and comes back as a new one, so ntb_netdev
 * makes a new interface there; it is addressed again and must carry ping and an intact transfer.
 */
import { z } from 'zod';
import { modprobe, rmmod } from '../../ntb/modules.ts';
import type { Rig } from '../rig.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import type { LinkCycleStep } from './link-cycle.ts';
import { linkCycle } from './link.ts';
import { addressIface, findIface, NTB_ADDR, netdevState, waitCarrier } from './netdev.ts';
import { listen, transferOnce } from './netdev-transfer.ts';
import { sleep, type Out } from './util.ts';

const schema = stepSchema(
  'netdev-link-cycle',
  {
    size: z.number().int().min(4096).max(256 << 20).default(1 << 20).describe('bytes of the checking transfer after the link is back, each way'),
    port: z.number().int().min(1024).max(65535).default(5202),
  },
  'cut the link (EPC stop) during a host→EP transfer, restore it, re-address the new host interface, then ping and transfer both ways',
);
export type NetdevLinkCycleStep = StepOf<typeof schema>;

const BG = '/tmp/ntbh-bg';

async function netdevLinkCycle(rig: Rig, step: NetdevLinkCycleStep, out: Out): Promise<void> {
  const state = netdevState(rig);
  // Background traffic that outlasts the cut: 64 MiB host→EP (a few MB/s under TCG).
  await rig.host.exec(`dd if=/dev/zero of=${BG} bs=65536 count=1024 2>/dev/null`, { timeoutMs: rig.ms(60_000) });
  const listener = await listen(rig.ep, step.port, 3600);
  const sender = Number((await rig.host.exec(`setsid sh -c 'nc ${NTB_ADDR.ep} ${step.port} < ${BG}' </dev/null >/dev/null 2>&1 & echo $!`)).stdout.trim());
  let moving = false;
  for (let i = 0; i < 60 && !moving; i++) {
    moving = Number((await rig.ep.exec('stat -c %s /tmp/ntbh-rx 2>/dev/null || echo 0')).stdout.trim()) > 0;
    if (!moving) await sleep(500);
  }
  out.add('traffic_during', moving, { detail: moving ? 'bytes were arriving on the EP when the link went down' : 'no byte arrived before the cut' });

  await linkCycle(rig, { type: 'link-cycle', id: step.id, times: 1 } as LinkCycleStep, out);

  // The interrupted transfer cannot finish: end both sessions so nothing outlives the step.
  await rig.host.exec(`kill -- -${sender} 2>/dev/null; rm -f ${BG}; true`);
  await rig.ep.exec(`kill -- -${listener} 2>/dev/null; rm -f /tmp/ntbh-rx; true`);

  // Released ntb_transport creates a client's device only when the client registers (ntb_netdev's
  // module init), for the transports that exist then: a hot-plugged NTB device gets no interface
  // until ntb_netdev is loaded again (docs/ntb-transport.md). Observe that, then do what an operator does.
  const auto = await findIface(rig.host, rig.ms(20_000));
  out.add('netdev_without_reload', auto !== undefined, { on: 'host', detail: auto ? `${auto} appeared by itself` : 'no interface for the new NTB device until ntb_netdev is reloaded' });
  if (!auto) {
    // ntb_transport too: it never removes a device's debugfs directory, so the re-plugged device (same
    // PCI name) gets none and its QP counters are unreadable until the module is loaded afresh.
    for (const mod of ['ntb_netdev', 'ntb_transport']) await rmmod(rig.host, mod, rig.ms(60_000));
    await modprobe(rig.host, 'ntb_transport', { max_num_clients: state.numQps }, rig.ms(60_000));
    await modprobe(rig.host, 'ntb_netdev', {}, rig.ms(60_000));
  }
  const iface = auto ?? (await findIface(rig.host, rig.ms(60_000)));
  out.add('iface', iface !== undefined, { on: 'host', detail: iface ?? 'no ntb_netdev interface after the link came back and ntb_netdev was reloaded' });
  if (!iface) return;
  state.iface.host = iface;
  await addressIface(rig.host, iface, NTB_ADDR.host);
  for (const side of ['ep', 'host'] as const) out.add('carrier', await waitCarrier(rig.guest(side), state.iface[side], rig.ms(90_000)), { on: side, label: side, detail: state.iface[side] });
  const ping = await rig.host.exec(`ping -c 3 -w ${Math.ceil(rig.ms(15_000) / 1000)} ${NTB_ADDR.ep}`, { timeoutMs: rig.ms(30_000) });
  out.add('ping', ping.exitCode === 0, { on: 'host', detail: ping.stdout.trim().split('\n').slice(-2).join(' | ') });
  for (const dir of ['host-to-ep', 'ep-to-host'] as const) await transferOnce(rig, { size: step.size, port: step.port }, dir, out);
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    traffic_during: { spec: 'true', doc: 'the background transfer was moving when the link went down' },
    host_gone: { spec: 'true', doc: 'the function left the host' },
    wire_down: { spec: 'true', doc: 'the relay saw the link go down' },
    host_back: { spec: 'true', doc: 'the function came back on the host' },
    driver_bound: { spec: 'true', doc: 'ntb_hw_epf bound it again' },
    wire_up: { spec: 'true', doc: 'the relay saw the link come back' },
    netdev_without_reload: {
      spec: 'false',
      doc: 'an interface appeared for the re-plugged host NTB device without reloading ntb_netdev (released ntb_transport makes client devices only when a client registers: 6.12, 7.2)',
    },
    iface: { spec: 'true', doc: 'ntb_netdev made an interface for the new host device (after reloading it if needed)' },
    carrier: { spec: 'true', doc: 'carrier back on both sides', note: 'per side' },
    ping: { spec: 'true', doc: 'host→EP ping after the link returned' },
    match: { spec: 'true', doc: 'a transfer after the link returned arrived intact (per direction)' },
    kbit_s: { spec: 'value > 0', doc: 'its throughput, kbit/s' },
    qps: { spec: 'value > 0', doc: "mask of the receiver's QPs that carried it" },
    vectors: { spec: 'bits(B)', doc: 'doorbell vectors the receiver got (B = qps)' },
    vector_mask: { spec: 'bit(i)', doc: 'db_vector_mask(i) for each vector seen' },
    wire: { spec: 'bits(B) + 2', doc: 'relay-delivered host vectors (EP→host)' },
  },
  run: netdevLinkCycle,
  budget: () => 1200,
});
