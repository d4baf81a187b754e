/** link-up, db-valid-mask and link-cycle. */
import { setStarted } from '../../ntb/configfs.ts';
import { msiIrqs, waitFunction } from '../../ntb/pci.ts';
import { findTestDevice } from '../../ntb/pcitest.ts';
import { waitFor } from '../../ntb/shell.ts';
import type { Rig } from '../rig.ts';
import type { LinkCycleStep } from './link-cycle.ts';
import { hostDriver } from './setup.ts';
import type { Out } from './util.ts';

export async function linkUp(rig: Rig, _step: unknown, out: Out): Promise<void> {
  // Loaded in turn (the order the link comes up in is part of what runs), watched side by side.
  const tools = { ep: await rig.tool('ep'), host: await rig.tool('host') };
  const up = await Promise.all([tools.ep.waitPeerLink(rig.ms(20_000)), tools.host.waitPeerLink(rig.ms(20_000))]);
  out.add('link', up[0], { on: 'ep', label: 'ep' });
  out.add('link', up[1], { on: 'host', label: 'host' });
  out.add('wire_link', rig.link.linkUp);
}

export async function dbValidMask(rig: Rig, _step: unknown, out: Out): Promise<void> {
  const tools = { ep: await rig.tool('ep'), host: await rig.tool('host') };
  // Two guests, two reads: side by side.
  const masks = await Promise.all([tools.ep.dbValidMask(), tools.host.dbValidMask()]);
  out.add('db_valid_mask', masks[0], { on: 'ep', label: 'ep' });
  out.add('db_valid_mask', masks[1], { on: 'host', label: 'host' });
}

export async function linkCycle(rig: Rig, step: LinkCycleStep, out: Out): Promise<void> {
  const ids = { vendor: rig.fn.vendorid, device: rig.fn.deviceid };
  const epc = rig.epc!;
  for (let n = 1; n <= step.times; n++) {
    const label = `cycle ${n}`;
    const stop = await setStarted(rig.ep, epc, false);
    const gone = stop.ok ? await waitFunction(rig.host, { ...ids, present: false }, rig.ms(30_000)) : { ok: false };
    out.add('host_gone', gone.ok, { label, detail: stop.ok ? undefined : `echo 0 > start: ${stop.error}` });
    out.add('wire_down', await waitFor(() => !rig.link.linkUp, rig.ms(10_000)), { label });

    const start = await setStarted(rig.ep, epc, true);
    const back = start.ok ? await waitFunction(rig.host, { ...ids, present: true }, rig.ms(30_000)) : { ok: false, functions: [] };
    out.add('host_back', back.ok, { label, detail: start.ok ? undefined : `echo 1 > start: ${start.error}` });
    const bound = back.ok ? await waitFunction(rig.host, { ...ids, present: true, driver: hostDriver(rig) }, rig.ms(30_000)) : { ok: false, functions: [] };
    out.add('driver_bound', bound.ok, { label });
    out.add('wire_up', await waitFor(() => rig.link.linkUp, rig.ms(10_000)), { label });

    // The function came back as a new device: new IRQs, new ntb_tool directories.
    const fn = bound.functions[0] ?? back.functions[0];
    if (fn) {
      rig.hostFunction = fn;
      rig.msiIrqs = await msiIrqs(rig.host, fn.bdf);
      if (rig.fn.type === 'pci-epf-test' && bound.ok) rig.testDevice = await findTestDevice(rig.host, rig.ms(10_000));
    }
    rig.forgetTools();
  }
}
