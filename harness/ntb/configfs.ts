/**
 * EP-side function setup through configfs (Documentation/PCI/endpoint/pci-{vntb,test}-howto.rst).
 * Every attribute is written BEFORE the function is linked to the controller: newer kernels refuse
 * vntb writes once the EPC is attached. Writes the kernel refuses are collected, not thrown: a
 * refusal is an observation (the `configured` check), not an infrastructure failure.
 */
import { HarnessError } from '../errors.ts';
import type { GuestExec } from '../guest/types.ts';
import type { EpfTestFunction, VntbFunction } from '../scenario/schema-parts.ts';
import { modprobe } from './modules.ts';
import { hex, run, sq, tryWrite } from './shell.ts';

export const PCI_EP = '/sys/kernel/config/pci_ep';

export interface FunctionSetup {
  epc: string;
  funcDir: string;
  /** "attribute=value" written, in order. */
  written: string[];
  /** Attributes this kernel does not have (e.g. ctrl_bar on 6.12), left to the driver's defaults. */
  absent: string[];
  /** Writes the kernel refused, with its error text. */
  refused: string[];
  started: boolean;
}

/** The EPC to use: the only one, or the first in name order (the link's controller is the only EPC in our EP guest). */
export async function findController(ep: GuestExec): Promise<string> {
  const names = (await run(ep, `ls ${PCI_EP}/controllers/`)).split(/\s+/).filter(Boolean).sort();
  if (names.length === 0) {
    throw new HarnessError('no endpoint controller under /sys/kernel/config/pci_ep/controllers (is the EPC driver loaded?)', {
      code: 'NO_EPC',
      kind: 'infra',
      phase: 'step',
      guest: ep.name,
    });
  }
  return names[0]!;
}

async function writeAll(ep: GuestExec, dir: string, attrs: Array<[string, string | number | undefined]>, setup: FunctionSetup, optional: Set<string>): Promise<void> {
  for (const [name, value] of attrs) {
    if (value === undefined) continue;
    const path = `${dir}/${name}`;
    const text = typeof value === 'number' ? hex(value) : value;
    if ((await ep.exec(`[ -e ${sq(path)} ]`)).exitCode !== 0) {
      if (optional.has(name)) {
        setup.absent.push(name);
        continue;
      }
    }
    const result = await tryWrite(ep, path, text);
    if (result.ok) setup.written.push(`${name}=${text}`);
    else setup.refused.push(`${name}=${text}: ${result.error}`);
  }
}

async function linkAndStart(ep: GuestExec, setup: FunctionSetup): Promise<void> {
  const link = await ep.exec(`cd ${PCI_EP} && ln -s ${sq(setup.funcDir.replace(`${PCI_EP}/`, ''))} ${sq(`controllers/${setup.epc}/`)}`);
  if (link.exitCode !== 0) {
    setup.refused.push(`link to controllers/${setup.epc}: ${link.stderr.trim() || `exit ${link.exitCode}`}`);
    return;
  }
  const start = await tryWrite(ep, `${PCI_EP}/controllers/${setup.epc}/start`, '1');
  if (start.ok) setup.started = true;
  else setup.refused.push(`start=1: ${start.error}`);
}

async function createFunction(ep: GuestExec, driver: string, module: string): Promise<{ epc: string; funcDir: string }> {
  await modprobe(ep, module);
  const epc = await findController(ep);
  const funcDir = `${PCI_EP}/functions/${driver}/func1`;
  await run(ep, `mkdir -p ${sq(funcDir)}`);
  return { epc, funcDir };
}

/** The configuration-header attributes every endpoint function has. */
function headerAttributes(fn: VntbFunction | EpfTestFunction): [string, string | number | undefined][] {
  return [
    ['vendorid', fn.vendorid],
    ['deviceid', fn.deviceid],
    ['baseclass_code', fn.baseclass_code],
    ['subclass_code', fn.subclass_code],
  ];
}

export async function setupVntb(ep: GuestExec, fn: VntbFunction): Promise<FunctionSetup> {
  const { epc, funcDir } = await createFunction(ep, 'pci_epf_vntb', 'pci-epf-vntb');
  const setup: FunctionSetup = { epc, funcDir, written: [], absent: [], refused: [], started: false };
  await writeAll(
    ep,
    funcDir,
    [...headerAttributes(fn), ['progif_code', fn.progif_code]],
    setup,
    new Set(),
  );
  // The NTB attributes live in a sub-directory named after the function device (pci_epf_vntb.0).
  const sub = (await run(ep, `for d in ${sq(funcDir)}/*/; do [ -e "$d/db_count" ] && echo "$d"; done; true`)).trim().split('\n')[0]?.replace(/\/$/, '');
  if (!sub) {
    setup.refused.push('no vntb attribute directory (with db_count) under the function');
    return setup;
  }
  const mws = fn.mws.map((size, i): [string, number] => [`mw${i + 1}`, size]);
  const bars = (['ctrl_bar', 'db_bar', 'mw1_bar', 'mw2_bar', 'mw3_bar', 'mw4_bar'] as const).map((name): [string, string | undefined] => [
    name,
    fn[name] === undefined ? undefined : String(fn[name]),
  ]);
  await writeAll(
    ep,
    sub,
    [
      // Counts in decimal, IDs and sizes in hex: the way the howto writes them.
      ['db_count', String(fn.db_count)],
      ['spad_count', String(fn.spad_count)],
      // num_mws before mwN: the mwN store checks the index against num_mws.
      ['num_mws', String(fn.mws.length)],
      ...mws,
      ['vbus_number', fn.vbus_number],
      ['vntb_vid', fn.vntb_vid],
      ['vntb_pid', fn.vntb_pid],
      ...bars,
      ...Object.entries(fn.attributes).map(([k, v]): [string, string | number] => [k, v]),
    ],
    setup,
    new Set(bars.map(([name]) => name)),
  );
  await linkAndStart(ep, setup);
  return setup;
}

export async function setupEpfTest(ep: GuestExec, fn: EpfTestFunction): Promise<FunctionSetup> {
  const { epc, funcDir } = await createFunction(ep, 'pci_epf_test', 'pci-epf-test');
  const setup: FunctionSetup = { epc, funcDir, written: [], absent: [], refused: [], started: false };
  await writeAll(
    ep,
    funcDir,
    [
      ...headerAttributes(fn),
      // Decimal: these two are parsed as counts.
      ['msi_interrupts', String(fn.msi_interrupts)],
      ['msix_interrupts', fn.msix_interrupts > 0 ? String(fn.msix_interrupts) : undefined],
      ...Object.entries(fn.attributes).map(([k, v]): [string, string | number] => [k, v]),
    ],
    setup,
    new Set(),
  );
  await linkAndStart(ep, setup);
  return setup;
}

/** `echo 0|1 > controllers/<epc>/start`: the link goes down/up and the host sees the function leave/return. */
export async function setStarted(ep: GuestExec, epc: string, started: boolean): Promise<{ ok: boolean; error?: string }> {
  return tryWrite(ep, `${PCI_EP}/controllers/${epc}/start`, started ? '1' : '0');
}
