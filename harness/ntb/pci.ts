/**
 * The host's view of the link's PCI function through sysfs (the guest image has no lspci):
 * find it by vendor/device, wait for it to come or go, its driver, its MSI IRQs and BARs.
 */
import type { GuestExec } from '../guest/types.ts';
import { hex, pollScript, run, sq } from './shell.ts';

export interface PciFunction {
  bdf: string;
  vendor: number;
  device: number;
  /** 24-bit class code. */
  class: number;
  driver?: string;
}

/** Prints "bdf vendor device class driver" per function with those IDs. */
function listScript(vendor: number, device: number): string {
  return [
    'for d in /sys/bus/pci/devices/*; do',
    `  [ "$(cat $d/vendor 2>/dev/null)" = ${sq(hex4(vendor))} ] && [ "$(cat $d/device 2>/dev/null)" = ${sq(hex4(device))} ] || continue`,
    '  drv=-; [ -e $d/driver ] && drv=$(basename $(readlink $d/driver))',
    '  echo "${d##*/} $(cat $d/class) $drv"',
    'done',
  ].join('\n');
}

function hex4(value: number): string {
  return `0x${value.toString(16).padStart(4, '0')}`;
}

export function parseFunctions(output: string, vendor: number, device: number): PciFunction[] {
  return output
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((parts) => parts.length === 3 && /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(parts[0]!))
    .map(([bdf, cls, driver]) => ({ bdf: bdf!, vendor, device, class: Number(cls), driver: driver === '-' ? undefined : driver }));
}

export async function findFunctions(host: GuestExec, vendor: number, device: number): Promise<PciFunction[]> {
  return parseFunctions(await run(host, listScript(vendor, device)), vendor, device);
}

/**
 * Waits until a function with those IDs is present (and bound to `driver`, if given) or, with
 * present = false, gone. Returns what was last seen.
 */
export async function waitFunction(
  host: GuestExec,
  want: { vendor: number; device: number; present: boolean; driver?: string },
  timeoutMs: number,
): Promise<{ ok: boolean; functions: PciFunction[] }> {
  const probe = listScript(want.vendor, want.device);
  const condition = want.present ? (want.driver ? `echo "$v" | grep -q ${sq(` ${want.driver}$`)}` : '[ -n "$v" ]') : '[ -z "$v" ]';
  const result = await host.exec(pollScript(probe, condition, timeoutMs, 50), { timeoutMs: timeoutMs + 30_000 });
  return { ok: result.exitCode === 0, functions: parseFunctions(result.stdout, want.vendor, want.device) };
}

/** MSI IRQ numbers of a function, sorted: multi-MSI IRQs are contiguous, so index = vector. */
export async function msiIrqs(host: GuestExec, bdf: string): Promise<number[]> {
  const out = await host.exec(`ls ${sq(`/sys/bus/pci/devices/${bdf}/msi_irqs/`)} 2>/dev/null`);
  return out.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .sort((a, b) => a - b);
}

/** BAR numbers with a non-zero size, from the first six lines of `resource`. */
export function parseResource(text: string): number[] {
  return text
    .split('\n')
    .slice(0, 6)
    .flatMap((line, bar) => {
      const [start, end] = line.trim().split(/\s+/).map((v) => BigInt(v));
      return start !== undefined && end !== undefined && end > start ? [bar] : [];
    });
}

export async function presentBars(host: GuestExec, bdf: string): Promise<number[]> {
  return parseResource(await run(host, `cat ${sq(`/sys/bus/pci/devices/${bdf}/resource`)}`));
}
