/** netdev-up: ntb_transport (num_qps queue pairs) and ntb_netdev on both sides, addressed, carrier up. */
import { z } from 'zod';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { addressIface, findIface, loadNetdev, NTB_ADDR, readQpStats, remember, waitCarrier } from './netdev.ts';
import type { Rig } from '../rig.ts';
import type { Out } from './util.ts';

const schema = stepSchema(
  'netdev-up',
  {
    num_qps: z.number().int().min(1).max(16).default(1).describe("ntb_transport's max_num_clients: queue pairs set up on each side"),
  },
  'load ntb_transport and ntb_netdev on both sides, address the ntb interfaces (192.168.77.1 EP, .2 host), wait for carrier',
);
export type NetdevUpStep = StepOf<typeof schema>;

async function netdevUp(rig: Rig, step: NetdevUpStep, out: Out): Promise<void> {
  // The host first: ntb_transport's link work polls the peer's scratchpads until both sides agree.
  for (const side of ['host', 'ep'] as const) await loadNetdev(rig, side, step.num_qps);
  const iface = { ep: '', host: '' };
  for (const side of ['ep', 'host'] as const) {
    const name = await findIface(rig.guest(side), rig.ms(20_000));
    out.add('iface', name !== undefined, { on: side, label: side, detail: name ?? 'no interface bound to ntb_netdev' });
    if (name) {
      iface[side] = name;
      await addressIface(rig.guest(side), name, NTB_ADDR[side]);
    }
  }
  if (!iface.ep || !iface.host) return;
  remember(rig, { iface, numQps: step.num_qps });
  for (const side of ['ep', 'host'] as const) {
    const up = await waitCarrier(rig.guest(side), iface[side], rig.ms(60_000));
    out.add('carrier', up, { on: side, label: side, detail: `${iface[side]} carrier ${up ? 'on' : 'off'}` });
  }
  for (const side of ['ep', 'host'] as const) {
    const qps = await readQpStats(rig.guest(side));
    out.add('qp_count', qps.size, { on: side, label: side });
  }
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    iface: { spec: 'true', doc: 'ntb_netdev created an Ethernet interface', note: 'per side' },
    carrier: { spec: 'true', doc: "the interface's carrier came on (ntb_transport's QP link is up)", note: 'per side' },
    qp_count: { spec: 'value >= 1', doc: 'queue pairs ntb_transport set up (qpN directories in its debugfs); a scenario expects its num_qps', note: 'per side' },
  },
  run: netdevUp,
  budget: () => 300,
});
