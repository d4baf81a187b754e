/**
 * netdev-link-cycle: take the link down in the middle of traffic and bring it back. The host's
 * ntb_hw_epf device goes away with the function and comes back as a new one, so ntb_netdev makes a new
 * interface there; it is addressed again and must carry ping and an intact transfer.
 * The traffic is a TCP stream (the receiver answers with ACKs) or a one-way stream the receiver only
 * takes in (pings to an address nobody has, sent to the receiver's MAC): the latter keeps the
 * receiver's ntb_netdev transmit queue idle, which matters for a known upstream race
 * (docs/ntb-transport.md, "The link-cut oops").
 */
import { z } from 'zod';
import { modprobe, rmmod } from '../../ntb/modules.ts';
import type { Rig } from '../rig.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import type { LinkCycleStep } from './link-cycle.ts';
import { linkCycle } from './link.ts';
import { addressIface, findIface, NTB_ADDR, netdevState, waitCarrier } from './netdev.ts';
import { run, sq } from '../../ntb/shell.ts';
import { listen, transferOnce } from './netdev-transfer.ts';
import { sleep, type Out } from './util.ts';

const schema = stepSchema(
  'netdev-link-cycle',
  {
    size: z.number().int().min(4096).max(256 << 20).default(1 << 20).describe('bytes of the checking transfer after the link is back, each way'),
    port: z.number().int().min(1024).max(65535).default(5202),
    from: z.enum(['host', 'ep']).default('host').describe('the side that sends the background traffic during the cut'),
    traffic: z
      .enum(['tcp', 'oneway'])
      .default('tcp')
      .describe("tcp: a 64 MiB TCP stream (the receiver sends ACKs); oneway: pings to an unowned address sent to the receiver's MAC, which it drops without sending anything (IPv6 off on its interface meanwhile)"),
  },
  'cut the link (EPC stop) during traffic, restore it, re-address the new host interface, then ping and transfer both ways',
);
export type NetdevLinkCycleStep = StepOf<typeof schema>;

const BG = '/tmp/ntbh-bg';
/** On the NTB /24 but owned by nobody: frames to it reach the receiver's stack, which drops them silently. */
const NOBODY = '192.168.77.9';

async function ifaceCounter(rig: Rig, side: 'ep' | 'host', iface: string, counter: string): Promise<number> {
  return Number((await rig.guest(side).exec(`cat /sys/class/net/${sq(iface)}/statistics/${counter} 2>/dev/null || echo 0`)).stdout.trim());
}

/** Starts the background traffic in its own session on the sender; returns what to kill afterwards. */
async function startTraffic(rig: Rig, step: NetdevLinkCycleStep, iface: Record<'ep' | 'host', string>): Promise<{ sender?: number; listener?: number }> {
  const to = step.from === 'host' ? 'ep' : 'host';
  const tx = rig.guest(step.from);
  if (step.traffic === 'oneway') {
    // A static ARP entry sends the pings to the receiver's MAC; forwarding is off, so its stack drops
    // them without an answer (no ICMP for a foreign destination address).
    const mac = (await run(rig.guest(to), `cat /sys/class/net/${sq(iface[to])}/address`)).trim();
    await run(tx, `busybox arp -i ${sq(iface[step.from])} -s ${NOBODY} ${mac}`);
    const pid = (await run(tx, `setsid sh -c 'ping -q -s 32000 -i 0.01 -w 3600 ${NOBODY}' </dev/null >/dev/null 2>&1 & echo $!`)).trim();
    return { sender: Number(pid) };
  }
  await run(tx, `dd if=/dev/zero of=${BG} bs=65536 count=1024 2>/dev/null`, { timeoutMs: rig.ms(60_000) });
  const listener = await listen(rig.guest(to), step.port, 3600);
  const pid = (await run(tx, `setsid sh -c 'nc ${NTB_ADDR[to]} ${step.port} < ${BG}' </dev/null >/dev/null 2>&1 & echo $!`)).trim();
  return { sender: Number(pid), listener };
}

async function netdevLinkCycle(rig: Rig, step: NetdevLinkCycleStep, out: Out): Promise<void> {
  const state = netdevState(rig);
  const to = step.from === 'host' ? 'ep' : 'host';
  const rxIface = state.iface[to];
  // IPv6's own chatter (router solicitations, MLD reports) is the only thing a receiver of one-way
  // traffic would send; switch it off on that interface so `receiver_tx` counts what the traffic causes.
  const ipv6 = `/proc/sys/net/ipv6/conf/${rxIface}/disable_ipv6`;
  if (step.traffic === 'oneway') {
    await rig.guest(to).exec(`[ -e ${sq(ipv6)} ] && echo 1 > ${sq(ipv6)}; true`);
    await sleep(1000); // switching it off may send an MLD done: let it be counted before the baseline
  }
  const rxBefore = await ifaceCounter(rig, to, rxIface, 'rx_bytes');
  const txBefore = await ifaceCounter(rig, to, rxIface, 'tx_packets');
  const bg = await startTraffic(rig, step, state.iface);
  let moving = false;
  for (let i = 0; i < 60 && !moving; i++) {
    moving = (await ifaceCounter(rig, to, rxIface, 'rx_bytes')) > rxBefore + 65536;
    if (!moving) await sleep(500);
  }
  out.add('traffic_during', moving, { on: to, detail: moving ? `${step.traffic} traffic was arriving on the ${to} when the link went down` : 'no traffic arrived before the cut' });

  await linkCycle(rig, { type: 'link-cycle', id: step.id, times: 1 } as LinkCycleStep, out);

  // Frames the receiver sent from the traffic's start until the link was back (its carrier is still
  // off then: the host's ntb_netdev has not been reloaded yet). For the EP: its ntb_netdev's tx timer
  // can only be pending at the cut if it had frames queued (docs/ntb-transport.md).
  if (to === 'ep') {
    const sent = (await ifaceCounter(rig, 'ep', rxIface, 'tx_packets')) - txBefore;
    out.add('receiver_tx', sent, { on: 'ep', detail: `${sent} frame(s) sent by the EP's ${rxIface} from the traffic's start until the link was back` });
  }

  // The interrupted traffic cannot finish: end both sessions so nothing outlives the step.
  const tx = rig.guest(step.from);
  if (bg.sender) await tx.exec(`kill -- -${bg.sender} 2>/dev/null; rm -f ${BG}; busybox arp -d ${NOBODY} 2>/dev/null; true`);
  if (bg.listener) await rig.guest(to).exec(`kill -- -${bg.listener} 2>/dev/null; rm -f /tmp/ntbh-rx; true`);
  if (step.traffic === 'oneway') await rig.guest(to).exec(`[ -e ${sq(ipv6)} ] && echo 0 > ${sq(ipv6)}; true`);

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
    traffic_during: { spec: 'true', doc: 'the background traffic was arriving on the receiver when the link went down' },
    receiver_tx: {
      spec: 'value >= 0',
      doc: "frames the EP sent from the traffic's start until the link was back (when the EP receives; 0 expected for traffic: oneway)",
    },
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
