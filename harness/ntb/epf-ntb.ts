/**
 * pci-epf-ntb through configfs, as Documentation/PCI/endpoint/pci-ntb-howto.rst describes it: one
 * function, its NTB attributes in the pci_epf_ntb.N sub-directory, the primary interface linked to the
 * controller of host 1 and the secondary to that of host 2, then both controllers started. The
 * attribute names and the sub-directory are the same in 6.1, 6.12 and 7.2 (docs/epf-ntb-bridge.md).
 *
 * Attribute writes the kernel refuses are observations, collected like vntb's (configfs.ts). Binding
 * and starting are not: without both interfaces nothing else can run, so they throw with the EP's
 * kernel log, which is where pci-epf-ntb says why.
 */
import { HarnessError } from '../errors.ts';
import type { GuestExec } from '../guest/types.ts';
import { PCI_EP } from './configfs.ts';
import { modprobe } from './modules.ts';
import { hex, sq, tryWrite } from './shell.ts';

/** What a scenario says about the function (the scenario schema's pci-epf-ntb entry has these fields). */
export interface EpfNtbConfig {
  vendorid: number;
  deviceid: number;
  baseclass_code: number;
  subclass_code: number;
  progif_code?: number;
  db_count: number;
  spad_count: number;
  /** Memory-window sizes; num_mws is their count (1..4). */
  mws: number[];
  /** More attributes for the pci_epf_ntb.N directory, written as given after the others. */
  attributes?: Record<string, string | number>;
}

export interface EpfNtbSetup {
  /** [primary, secondary]: the controllers of host 1 and host 2. */
  epcs: [string, string];
  funcDir: string;
  /** The NTB attribute directory (functions/pci_epf_ntb/<name>/pci_epf_ntb.N). */
  ntbDir: string;
  /** "attribute=value" written, in order. */
  written: string[];
  /** Attributes this kernel does not have (none in the released kernels so far). */
  absent: string[];
  /** Attribute writes the kernel refused, with its error text. */
  refused: string[];
  /** Both controllers started (always true when setupEpfNtb returns). */
  started: boolean;
}

/** The EP's last kernel messages, for an error's excerpt. */
export async function epDmesg(ep: GuestExec, lines = 40): Promise<string> {
  const result = await ep.exec(`dmesg | tail -n ${lines}`).catch(() => undefined);
  return result?.stdout.trim() ?? '(dmesg unavailable)';
}

async function fail(ep: GuestExec, { code, kind }: { code: string; kind: 'infra' | 'test' }, message: string, detail: string): Promise<never> {
  throw new HarnessError(message, { code, kind, phase: 'setup', guest: ep.name, excerpt: `${detail}\n--- EP dmesg ---\n${await epDmesg(ep)}`.trim() });
}

export async function setupEpfNtb(ep: GuestExec, fn: EpfNtbConfig, epcs: readonly [string, string], timeoutMs = 60_000, name = 'func1'): Promise<EpfNtbSetup> {
  await modprobe(ep, 'pci-epf-ntb', {}, timeoutMs);
  const listing = await ep.exec(`ls ${PCI_EP}/controllers/`, { timeoutMs });
  const controllers = listing.stdout.split(/\s+/).filter(Boolean);
  const missing = epcs.filter((epc) => !controllers.includes(epc));
  if (missing.length > 0 || epcs[0] === epcs[1]) {
    await fail(ep, { code: 'EPF_NTB_NO_CONTROLLER', kind: 'infra' }, `pci-epf-ntb needs two distinct controllers ${epcs.join(' and ')}; missing: ${missing.join(', ') || 'none (the same one twice)'}`, `controllers: ${controllers.join(' ') || '(none)'}`);
  }

  const funcDir = `${PCI_EP}/functions/pci_epf_ntb/${name}`;
  const made = await ep.exec(`mkdir -p ${sq(funcDir)}`, { timeoutMs });
  if (made.exitCode !== 0) await fail(ep, { code: 'EPF_NTB_FUNCTION', kind: 'infra' }, `cannot create ${funcDir}`, made.stderr);
  // The driver names the attribute directory after the function device (pci_epf_ntb.0, .1, ...).
  const found = await ep.exec(`for d in ${sq(funcDir)}/*/; do [ -e "$d/db_count" ] && echo "$d"; done; true`, { timeoutMs });
  const ntbDir = found.stdout.trim().split('\n')[0]?.replace(/\/$/, '') ?? '';
  if (!ntbDir) await fail(ep, { code: 'EPF_NTB_FUNCTION', kind: 'infra' }, `no pci-epf-ntb attribute directory (with db_count) under ${funcDir}`, (await ep.exec(`ls -l ${sq(funcDir)}`)).stdout);

  const setup: EpfNtbSetup = { epcs: [epcs[0], epcs[1]], funcDir, ntbDir, written: [], absent: [], refused: [], started: false };
  const writeAll = async (dir: string, attrs: [string, string | number | undefined][]) => {
    for (const [attr, value] of attrs) {
      if (value === undefined) continue;
      const path = `${dir}/${attr}`;
      if ((await ep.exec(`[ -e ${sq(path)} ]`)).exitCode !== 0) {
        setup.absent.push(attr);
        continue;
      }
      const text = typeof value === 'number' ? hex(value) : value;
      const result = await tryWrite(ep, path, text, { timeoutMs });
      if (result.ok) setup.written.push(`${attr}=${text}`);
      else setup.refused.push(`${attr}=${text}: ${result.error}`);
    }
  };
  // Header: IDs in hex (the howto's 0x104c/0xb00d), class 0x05/0x00 is what ntb_hw_epf matches.
  await writeAll(funcDir, [
    ['vendorid', fn.vendorid],
    ['deviceid', fn.deviceid],
    ['baseclass_code', fn.baseclass_code],
    ['subclass_code', fn.subclass_code],
    ['progif_code', fn.progif_code],
  ]);
  await writeAll(ntbDir, [
    // Counts in decimal as the howto writes them; num_mws before mwN (mwN is checked against it).
    ['db_count', String(fn.db_count)],
    ['spad_count', String(fn.spad_count)],
    ['num_mws', String(fn.mws.length)],
    ...fn.mws.map((size, i): [string, number] => [`mw${i + 1}`, size]),
    ...Object.entries(fn.attributes ?? {}).map(([k, v]): [string, string | number] => [k, v]),
  ]);

  // Each link binds one interface; the second one makes the driver build the NTB (epf_ntb_bind).
  for (const [iface, epc] of [['primary', epcs[0]], ['secondary', epcs[1]]] as const) {
    const link = await ep.exec(`cd ${PCI_EP} && ln -s ${sq(`controllers/${epc}`)} ${sq(`functions/pci_epf_ntb/${name}/${iface}/`)}`, { timeoutMs });
    if (link.exitCode !== 0) {
      await fail(ep, { code: 'EPF_NTB_BIND', kind: 'test' }, `pci-epf-ntb refused its ${iface} interface on ${epc}: ${link.stderr.trim() || `exit ${link.exitCode}`}`, `written: ${setup.written.join(' ')}\nrefused: ${setup.refused.join('; ') || 'none'}`);
    }
  }
  for (const epc of epcs) {
    const start = await tryWrite(ep, `${PCI_EP}/controllers/${epc}/start`, '1', { timeoutMs });
    if (!start.ok) await fail(ep, { code: 'EPF_NTB_START', kind: 'test' }, `controller ${epc} did not start: ${start.error}`, `written: ${setup.written.join(' ')}`);
  }
  setup.started = true;
  return setup;
}
