/**
 * pci-epf-test / pci_endpoint_test steps: BARs, MSI per vector (with the relay and /proc/interrupts as
 * two independent witnesses that must agree), and read/write/copy at several sizes.
 */
import { HarnessError } from '../../errors.ts';
import { expandCounts, readInterrupts, singleOrList, vectorDeltas } from '../../ntb/interrupts.ts';
import { presentBars } from '../../ntb/pci.ts';
import { pcitest } from '../../ntb/pcitest.ts';
import type { Rig } from '../rig.ts';
import type { PcitestBarStep } from './pcitest-bar.ts';
import type { PcitestMsiStep } from './pcitest-msi.ts';
import type { PcitestRwStep } from './pcitest-rw.ts';
import type { Out } from './util.ts';


function device(rig: Rig): string {
  if (!rig.testDevice) throw new HarnessError('no /dev/pci-endpoint-test.* on the host (pci_endpoint_test did not bind)', { code: 'NO_TEST_DEVICE', kind: 'infra', phase: 'step', guest: rig.host.name });
  return rig.testDevice;
}

function firstLine(text: string): string | undefined {
  return text.split('\n').find((line) => line.trim())?.trim();
}

function sameCounts(a: Map<number, number>, b: Map<number, number>): boolean {
  return a.size === b.size && [...a].every(([vector, count]) => b.get(vector) === count);
}

function describeCounts(counts: Map<number, number>): string {
  return `{${[...counts].map(([v, c]) => `${v}: ${c}`).join(', ')}}`;
}

export async function pcitestBar(rig: Rig, step: PcitestBarStep, out: Out): Promise<void> {
  const dev = device(rig);
  const bars = step.bars === 'all' ? await presentBars(rig.host, rig.hostFunction!.bdf) : step.bars;
  for (const n of bars) {
    const run = await pcitest(rig.host, dev, `-b ${n}`, rig.ms(60_000));
    const result = run.results.find((r) => r.test === `BAR${n}`);
    out.add('ok', result?.ok ?? false, { on: 'host', label: `BAR${n}`, params: { n }, detail: result?.ok ? undefined : firstLine(run.output) });
  }
}

export async function pcitestMsi(rig: Rig, step: PcitestMsiStep, out: Out): Promise<void> {
  const dev = device(rig);
  await pcitest(rig.host, dev, '-i 1', rig.ms(30_000)); // MSI mode (pci_endpoint_test's default, made explicit)
  const count = rig.msiIrqs.length || (rig.fn.type === 'pci-epf-test' ? rig.fn.msi_interrupts : 0);
  const vectors = step.vectors === 'all' ? Array.from({ length: count }, (_, i) => i + 1) : step.vectors;
  for (const n of vectors) {
    const label = `MSI${n}`;
    const before = await readInterrupts(rig.host);
    const mark = rig.link.mark();
    const run = await pcitest(rig.host, dev, `-m ${n}`, rig.ms(60_000));
    const result = run.results.find((r) => r.test === `MSI${n}`);
    const wire = rig.link.msiCounts(mark);
    const irq = vectorDeltas(before, await readInterrupts(rig.host), rig.msiIrqs);
    const params = { n };
    out.add('ok', result?.ok ?? false, { on: 'host', label, params, detail: result?.ok ? undefined : firstLine(run.output) });
    out.add('wire', singleOrList(expandCounts(wire)), { on: 'host', label, params });
    out.add('irq', singleOrList(expandCounts(irq)), { on: 'host', label, params });
    out.add('witness_agree', sameCounts(wire, irq), { on: 'host', label, params, detail: `relay ${describeCounts(wire)}, /proc/interrupts ${describeCounts(irq)}` });
  }
}

const FLAGS = { read: '-r', write: '-w', copy: '-c' } as const;

export async function pcitestRw(rig: Rig, step: PcitestRwStep, out: Out): Promise<void> {
  const dev = device(rig);
  const before = await readInterrupts(rig.host);
  const mark = rig.link.mark();
  for (const size of step.sizes) {
    for (const op of step.ops) {
      const run = await pcitest(rig.host, dev, `${FLAGS[op]} -s ${size}`, rig.ms(120_000));
      const result = run.results.find((r) => r.test === op.toUpperCase());
      out.add('ok', result?.ok ?? false, { on: 'host', label: `${op} ${size}`, params: { size }, detail: result?.ok ? undefined : firstLine(run.output) });
    }
  }
  // Each transfer completes with an MSI: both witnesses must have counted the same ones.
  const wire = rig.link.msiCounts(mark);
  const irq = vectorDeltas(before, await readInterrupts(rig.host), rig.msiIrqs);
  out.add('witness_agree', sameCounts(wire, irq), { on: 'host', detail: `relay ${describeCounts(wire)}, /proc/interrupts ${describeCounts(irq)}` });
}
