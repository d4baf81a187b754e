/**
 * ntb_transport + ntb_netdev on both guests (docs/ntb-transport.md): loading them with a queue-pair
 * count, finding the Ethernet interface ntb_netdev created, addressing it, per-QP counters from
 * ntb_transport's debugfs, and the doorbell vectors ntb_transport's traffic arrives on.
 */
import { HarnessError } from '../../errors.ts';
import type { GuestExec } from '../../guest/types.ts';
import { modprobe, rmmod } from '../../ntb/modules.ts';
import { run, sq } from '../../ntb/shell.ts';
import type { Rig } from '../rig.ts';
import type { Side } from '../../results/model.ts';
import { sleep } from './util.ts';

/** Addresses on the NTB link; a /24 of their own, apart from QEMU's user network (10.0.2.0/24). */
export const NTB_ADDR: Record<Side, string> = { ep: '192.168.77.1', host: '192.168.77.2' };

/** The other NTB clients hold the device too: ntb_transport can only bind once they are gone. */
const OTHER_CLIENTS = ['ntb_tool', 'ntb_perf', 'ntb_pingpong'];

/** The interface whose device is bound to ntb_netdev (ntb_netdev names it eth%d). */
const FIND_IFACE = `for d in /sys/class/net/*; do case "$(readlink "$d/device/driver" 2>/dev/null)" in *ntb_netdev) echo "\${d##*/}";; esac; done`;

export interface NetdevState {
  iface: Record<Side, string>;
  numQps: number;
}

const states = new WeakMap<Rig, NetdevState>();

export function netdevState(rig: Rig): NetdevState {
  const state = states.get(rig);
  if (!state) {
    throw new HarnessError('no ntb_netdev interface in this cell: list a netdev-up step before netdev-ping/netdev-transfer', {
      code: 'NETDEV_NOT_UP',
      kind: 'input',
      phase: 'step',
    });
  }
  return state;
}

/** Unloads the other clients and loads ntb_transport (max_num_clients = QP count) and ntb_netdev. */
export async function loadNetdev(rig: Rig, side: Side, numQps: number): Promise<void> {
  const guest = rig.guest(side);
  for (const client of [...OTHER_CLIENTS, 'ntb_netdev', 'ntb_transport']) await rmmod(guest, client, rig.ms(60_000));
  // ntb_tool's wrappers are gone with the module; a later ntb_tool step reloads it.
  rig.forgetTools();
  await modprobe(guest, 'ntb_transport', { max_num_clients: numQps }, rig.ms(60_000));
  await modprobe(guest, 'ntb_netdev', {}, rig.ms(60_000));
}

export async function findIface(guest: GuestExec, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const name = (await run(guest, FIND_IFACE)).trim().split('\n')[0];
    if (name) return name;
    if (Date.now() > deadline) return undefined;
    await sleep(500);
  }
}

export async function addressIface(guest: GuestExec, iface: string, address: string): Promise<void> {
  await run(guest, `ip addr flush dev ${sq(iface)} && ip addr add ${address}/24 dev ${sq(iface)} && ip link set ${sq(iface)} up`);
}

/** Carrier follows ntb_transport's QP link (both sides' transports handshook through the spads). */
export async function waitCarrier(guest: GuestExec, iface: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const carrier = (await guest.exec(`cat /sys/class/net/${sq(iface)}/carrier`)).stdout.trim();
    if (carrier === '1') return true;
    if (Date.now() > deadline) return false;
    await sleep(1000);
  }
}

export function remember(rig: Rig, state: NetdevState): void {
  states.set(rig, state);
}

export interface QpStats {
  rx_pkts: number;
  tx_pkts: number;
  rx_bytes: number;
  tx_bytes: number;
}

/** Per-QP counters from debugfs: ntb_transport/<device>/qp<N>/stats ("rx_pkts - \t123"). */
export async function readQpStats(guest: GuestExec): Promise<Map<number, QpStats>> {
  const text = await run(guest, 'for f in /sys/kernel/debug/ntb_transport/*/qp*/stats; do [ -e "$f" ] || continue; echo "== $f"; cat "$f"; done');
  return parseQpStats(text);
}

export function parseQpStats(text: string): Map<number, QpStats> {
  const out = new Map<number, QpStats>();
  let current: QpStats | undefined;
  for (const line of text.split('\n')) {
    const head = /^== .*\/qp(\d+)\/stats$/.exec(line.trim());
    if (head) {
      current = { rx_pkts: 0, tx_pkts: 0, rx_bytes: 0, tx_bytes: 0 };
      out.set(Number(head[1]), current);
      continue;
    }
    const m = /^(rx_pkts|tx_pkts|rx_bytes|tx_bytes)\s*-\s*(\d+)/.exec(line.trim());
    if (m && current) current[m[1] as keyof QpStats] = Number(m[2]);
  }
  return out;
}

/** Mask of the QPs whose `field` grew between two readings. */
export function activeQps(before: Map<number, QpStats>, after: Map<number, QpStats>, field: keyof QpStats): number {
  let mask = 0;
  for (const [qp, stats] of after) if (stats[field] > (before.get(qp)?.[field] ?? 0)) mask |= 1 << qp;
  return mask;
}

/** The driver op that answers ntb_db_vector_mask() on each side (absent where the release lacks it). */
const VECTOR_MASK_OP: Record<Side, string> = { ep: 'vntb_epf_db_vector_mask', host: 'ntb_epf_db_vector_mask' };
const TRACING = 't=/sys/kernel/tracing; [ -e $t/kprobe_events ] || t=/sys/kernel/debug/tracing';

/**
 * Entry and return probes on the side's db_vector_mask op, so each answer ntb_transport's doorbell
 * callback gets can be paired with the vector it asked about. False when the op does not exist.
 */
export async function enableVectorMaskProbe(guest: GuestExec, side: Side): Promise<boolean> {
  const fn = VECTOR_MASK_OP[side];
  const script = [
    TRACING,
    `grep -q 'ntbh/vmask ' $t/kprobe_events 2>/dev/null || echo 'p:ntbh/vmask ${fn} vec=$arg2:s32' >> $t/kprobe_events || exit 1`,
    `grep -q 'ntbh/vmask_ret ' $t/kprobe_events 2>/dev/null || echo 'r:ntbh/vmask_ret ${fn} mask=$retval:u64' >> $t/kprobe_events || exit 1`,
    'echo 1 > $t/events/ntbh/vmask/enable && echo 1 > $t/events/ntbh/vmask_ret/enable || exit 1',
  ].join('\n');
  return (await guest.exec(script)).exitCode === 0;
}

/** Trace lines of the two probes, paired in order per task: vector → the mask it got. */
export function parseVectorMasks(text: string): Map<number, number[]> {
  const pending = new Map<string, number>();
  const out = new Map<number, number[]>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const task = line.trim().split(/\s+/)[0] ?? '';
    const entry = /\bvmask: .*\bvec=(-?\d+)/.exec(line);
    if (entry) {
      pending.set(task, Number(entry[1]));
      continue;
    }
    const ret = /\bvmask_ret: .*\bmask=(\d+)/.exec(line);
    if (ret && pending.has(task)) {
      const vec = pending.get(task)!;
      pending.delete(task);
      const masks = out.get(vec) ?? [];
      if (!masks.includes(Number(ret[1]))) masks.push(Number(ret[1]));
      out.set(vec, masks);
    }
  }
  return out;
}

export async function readTrace(guest: GuestExec): Promise<string> {
  return run(guest, `${TRACING}; cat $t/trace`);
}
