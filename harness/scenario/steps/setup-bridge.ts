/**
 * The implicit first step in a bridge cell (topology: bridge, function pci-epf-ntb): drivers in all three
 * guests, capabilities of the two hosts, pci-epf-ntb configured on the EP across both controllers and
 * started, then on each host the function seen, ntb_hw_epf bound and its MSI vectors counted. Nh and Ne
 * are the vectors of `host` and `host2`; the same checks as a pair's setup, labelled by host.
 */
import { HarnessError } from '../../errors.ts';
import { setupEpfNtb } from '../../ntb/epf-ntb.ts';
import { modprobe } from '../../ntb/modules.ts';
import { msiIrqs, waitFunction } from '../../ntb/pci.ts';
import type { Rig } from '../rig.ts';
import type { Side } from '../../results/model.ts';
import { classCode, phase, probeBoth } from './setup-common.ts';
import type { Out } from './util.ts';

const HOST_DRIVER = 'ntb_hw_epf';

export async function setupBridge(rig: Rig, out: Out): Promise<void> {
  const bridge = rig.ctx.bridge;
  const ep = rig.bridgeEp;
  const fn = rig.fn;
  if (!bridge || !ep || fn.type !== 'pci-epf-ntb') {
    throw new HarnessError('a pci-epf-ntb cell was started without its bridge (three guests, two links)', { code: 'BAD_TOPOLOGY', kind: 'infra', phase: 'setup' });
  }
  await phase(rig, 'modules', () =>
    Promise.all([modprobe(ep, 'pci-epf-ntb', {}, rig.ms(60_000)), modprobe(rig.host, HOST_DRIVER, {}, rig.ms(60_000)), modprobe(rig.ep, HOST_DRIVER, {}, rig.ms(60_000))]),
  );
  await phase(rig, 'probe', () => probeBoth(rig));

  const setup = await phase(rig, 'function-setup', () => setupEpfNtb(ep, fn, bridge.epcNames, rig.ms(60_000)));
  rig.epc = bridge.epcNames.join('+');
  const problems = [...setup.refused, ...(setup.absent.length ? [`not in this kernel (driver defaults used): ${setup.absent.join(', ')}`] : [])];
  out.add('configured', setup.refused.length === 0 && setup.started, { detail: problems.join('; ') || undefined });

  const configuredClass = classCode(rig);
  if (configuredClass !== undefined) rig.params.class_code = configuredClass;
  const ids = { vendor: fn.vendorid, device: fn.deviceid };
  // Each host enumerates its own side of the NTB: watch both at once.
  const bind = async (side: Side) => {
    const guest = rig.guest(side);
    const seen = await waitFunction(guest, { ...ids, present: true }, rig.ms(30_000));
    const bound = seen.ok ? await waitFunction(guest, { ...ids, present: true, driver: HOST_DRIVER }, rig.ms(30_000)) : undefined;
    const function_ = bound?.functions.find((f) => f.driver === HOST_DRIVER) ?? seen.functions[0];
    const irqs = function_ ? await msiIrqs(guest, function_.bdf) : [];
    return { side, seen, bound, function_, irqs };
  };
  const hosts = await phase(rig, 'host-bind', () => Promise.all((['host', 'ep'] as const).map(bind)));
  for (const { side, seen, bound, function_, irqs } of hosts) {
    const label = rig.sideName(side);
    out.add('function_visible', seen.ok, { label, on: side });
    if (!function_) continue;
    if (configuredClass !== undefined) out.add('class_code', function_.class, { label, on: side });
    out.add('driver_bound', bound?.ok ?? false, { label, on: side, detail: bound?.ok ? undefined : `driver: ${function_.driver ?? 'none'}` });
    out.add('msi_vectors', irqs.length, { label, on: side, detail: `${label} function ${function_.bdf}` });
    rig.functions[side] = { fn: function_, msiIrqs: irqs };
    if (side === 'host') {
      rig.hostFunction = function_;
      rig.msiIrqs = irqs;
      rig.params.Nh = irqs.length;
    } else {
      rig.params.Ne = irqs.length;
    }
  }
}
