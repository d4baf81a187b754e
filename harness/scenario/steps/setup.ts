/**
 * The implicit first step of every cell: load the drivers, probe capabilities in both guests, configure
 * the function on the EP (all attributes before linking it to the controller), start it, and wait for
 * the host to see and bind it. Sets the cell's parameters (Nh, Ne, class_code).
 */
import { probeCapabilities } from '../../ntb/capabilities.ts';
import { probeCapabilitiesFromBuild } from '../../ntb/build-facts.ts';
import { setupEpfTest, setupVntb } from '../../ntb/configfs.ts';
import { enableDbEventProbe } from '../../ntb/kprobe.ts';
import { modprobe } from '../../ntb/modules.ts';
import { msiIrqs, presentBars, waitFunction } from '../../ntb/pci.ts';
import { findTestDevice } from '../../ntb/pcitest.ts';
import type { Rig } from '../rig.ts';
import type { Out } from './util.ts';

export function hostDriver(rig: Rig): string {
  return rig.fn.type === 'pci-epf-vntb' ? 'ntb_hw_epf' : 'pci-endpoint-test';
}

/** The 24-bit class the scenario configures; undefined when it leaves the function's default. */
export function classCode(rig: Rig): number | undefined {
  const fn = rig.fn;
  if (fn.baseclass_code === undefined) return undefined;
  return (fn.baseclass_code << 16) | ((fn.subclass_code ?? 0) << 8) | ('progif_code' in fn ? fn.progif_code : 0);
}

async function probeBoth(rig: Rig): Promise<void> {
  // The two guests are separate machines: probe them at the same time, then record in a fixed order.
  const sides = ['ep', 'host'] as const;
  // Symbols, config and module strings come from the kernel's build when it is at hand (milliseconds on the
  // outer machine instead of seconds of awk and grep in a TCG guest); the guest answers what only it knows.
  const probe = async (side: 'ep' | 'host') => {
    const kernel = rig.ctx.kernels?.[side];
    const fromBuild = kernel ? await probeCapabilitiesFromBuild(kernel, rig.guest(side), side, rig.scenario.capabilities, rig.ms(60_000)) : undefined;
    return fromBuild ?? probeCapabilities(rig.guest(side), side, rig.scenario.capabilities, rig.ms(60_000));
  };
  const results = await Promise.all(sides.map(probe));
  const kprobes = await Promise.all(
    sides.map((side, n) => (results[n]!.values[`${side}.kprobe_events`] ? enableDbEventProbe(rig.guest(side)) : Promise.resolve(undefined))),
  );
  sides.forEach((side, n) => {
    const result = results[n]!;
    const guest = rig.guest(side);
    Object.assign(rig.caps, result.values);
    rig.capFacts[side] = result.facts;
    rig.ctx.emit({ kind: 'capabilities', cell: rig.cellId, guest: guest.name, values: result.values, unknown: result.unknown, release: result.release });
    rig.observe[side].dyndbg = result.values[`${side}.dyndbg`] === true;
    const probe = kprobes[n];
    if (probe) {
      rig.observe[side].kprobe = probe.ok;
      if (!probe.ok) rig.log(`${side}: kprobe on ntb_db_event refused: ${probe.error}`, 'warn');
    }
  });
}

/** Times a part of the setup as a `phase` event, so slow boots and slow probes show in events.ndjson. */
async function phase<T>(rig: Rig, name: string, body: () => Promise<T>): Promise<T> {
  const started = Date.now();
  rig.ctx.emit({ kind: 'phase', cell: rig.cellId, phase: name, status: 'start' });
  try {
    const result = await body();
    rig.ctx.emit({ kind: 'phase', cell: rig.cellId, phase: name, status: 'end', durationMs: Date.now() - started });
    return result;
  } catch (error) {
    rig.ctx.emit({ kind: 'phase', cell: rig.cellId, phase: name, status: 'error', durationMs: Date.now() - started, message: (error as Error)?.message });
    throw error;
  }
}

export async function setupCell(rig: Rig, out: Out): Promise<void> {
  const vntb = rig.fn.type === 'pci-epf-vntb';
  // Modules first: their symbols must be in /proc/kallsyms for the probes.
  await phase(rig, 'modules', async () => {
    await Promise.all([modprobe(rig.ep, vntb ? 'pci-epf-vntb' : 'pci-epf-test', {}, rig.ms(60_000)), modprobe(rig.host, hostDriver(rig), {}, rig.ms(60_000))]);
  });
  await phase(rig, 'probe', () => probeBoth(rig));

  const setup = await phase(rig, 'function-setup', () => (rig.fn.type === 'pci-epf-vntb' ? setupVntb(rig.ep, rig.fn) : setupEpfTest(rig.ep, rig.fn)));
  rig.epc = setup.epc;
  const problems = [...setup.refused, ...(setup.absent.length ? [`not in this kernel (driver defaults used): ${setup.absent.join(', ')}`] : [])];
  out.add('configured', setup.refused.length === 0 && setup.started, { detail: problems.join('; ') || undefined });

  rig.params.Ne = rig.fn.type === 'pci-epf-vntb' ? rig.fn.db_count : rig.fn.msi_interrupts;
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
