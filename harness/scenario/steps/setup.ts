/**
 * The implicit first step of every cell: load the drivers, probe capabilities in both guests, configure
 * the function on the EP (all attributes before linking it to the controller), start it, and wait for
 * the host to see and bind it. Sets the cell's parameters (Nh, Ne, class_code).
 */
import { setupEpfTest, setupVntb } from '../../ntb/configfs.ts';
import { modprobe } from '../../ntb/modules.ts';
import { msiIrqs, presentBars, waitFunction } from '../../ntb/pci.ts';
import { findTestDevice } from '../../ntb/pcitest.ts';
import type { Rig } from '../rig.ts';
import { setupBridge } from './setup-bridge.ts';
import { classCode, phase, probeBoth } from './setup-common.ts';
import type { Out } from './util.ts';

export function hostDriver(rig: Rig): string {
  return rig.fn.type === 'pci-epf-test' ? 'pci-endpoint-test' : 'ntb_hw_epf';
}

export async function setupCell(rig: Rig, out: Out): Promise<void> {
  const epf = rig.fn;
  if (epf.type === 'pci-epf-ntb') return setupBridge(rig, out);
  const vntb = epf.type === 'pci-epf-vntb';
  // Modules first: their symbols must be in /proc/kallsyms for the probes.
  await phase(rig, 'modules', async () => {
    await Promise.all([modprobe(rig.ep, vntb ? 'pci-epf-vntb' : 'pci-epf-test', {}, rig.ms(60_000)), modprobe(rig.host, hostDriver(rig), {}, rig.ms(60_000))]);
  });
  await phase(rig, 'probe', () => probeBoth(rig));

  const setup = await phase(rig, 'function-setup', () => (epf.type === 'pci-epf-vntb' ? setupVntb(rig.ep, epf) : setupEpfTest(rig.ep, epf)));
  rig.epc = setup.epc;
  const problems = [...setup.refused, ...(setup.absent.length ? [`not in this kernel (driver defaults used): ${setup.absent.join(', ')}`] : [])];
  out.add('configured', setup.refused.length === 0 && setup.started, { detail: problems.join('; ') || undefined });

  rig.params.Ne = epf.type === 'pci-epf-vntb' ? epf.db_count : epf.msi_interrupts;
  const configuredClass = classCode(rig);
  if (configuredClass !== undefined) rig.params.class_code = configuredClass;
  const ids = { vendor: rig.fn.vendorid, device: rig.fn.deviceid };
  const seen = await phase(rig, 'host-bind', () => waitFunction(rig.host, { ...ids, present: true }, rig.ms(30_000)));
  out.add('function_visible', seen.ok);
  const fn = seen.functions[0];
  if (!fn) return;
  if (configuredClass !== undefined) out.add('class_code', fn.class);

  const bound = await waitFunction(rig.host, { ...ids, present: true, driver: hostDriver(rig) }, rig.ms(30_000));
  const boundFn = bound.functions.find((f) => f.driver === hostDriver(rig));
  out.add('driver_bound', bound.ok, { detail: bound.ok ? undefined : `driver: ${bound.functions[0]?.driver ?? 'none'}` });
  rig.hostFunction = boundFn ?? fn;
  if (rig.fn.type === 'pci-epf-vntb') {
    // 6.12's vntb has no *_bar attributes and takes the next free BARs: unless the EPC marks BARs
    // 64-bit it lands on 0/1/2, not the 0/2/4 that ntb_hw_epf's 1957:0809 map expects.
    const wanted = [rig.fn.ctrl_bar, rig.fn.db_bar, rig.fn.mw1_bar].filter((b): b is number => b !== undefined);
    if (wanted.length > 0) {
      const present = await presentBars(rig.host, rig.hostFunction.bdf);
      out.add('bar_map', wanted.every((b) => present.includes(b)), { detail: `host sees BARs [${present.join(', ')}], the function's map wants [${wanted.join(', ')}]` });
    }
  }
  rig.msiIrqs = await msiIrqs(rig.host, rig.hostFunction.bdf);
  rig.params.Nh = rig.msiIrqs.length;
  out.add('msi_vectors', rig.msiIrqs.length, { detail: `host function ${rig.hostFunction.bdf}` });
  if (!vntb && bound.ok) rig.testDevice = await findTestDevice(rig.host, rig.ms(10_000));
}
