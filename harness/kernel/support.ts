import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { HarnessError } from '../errors.ts';

/** A kernel release series, e.g. { version: 7, patchlevel: 2 } for 7.2.x. */
export interface KernelSeries {
  version: number;
  patchlevel: number;
}

/**
 * Releases the EP guest's EPC driver (link/epc-driver/vepc.c) builds and runs on: from `from` up to,
 * not including, `below`. vepc.c refuses the same range with an #error; a unit test keeps them equal.
 */
export const EPC_DRIVER_SUPPORT = { from: { version: 6, patchlevel: 1 }, below: { version: 7, patchlevel: 4 } } as const;

export function formatSeries(series: KernelSeries): string {
  return `${series.version}.${series.patchlevel}`;
}

export function supportedRange(): string {
  return `${formatSeries(EPC_DRIVER_SUPPORT.from)} ≤ version < ${formatSeries(EPC_DRIVER_SUPPORT.below)}`;
}

/** VERSION and PATCHLEVEL from a kernel tree's top-level Makefile text; undefined if either is missing. */
export function parseMakefileSeries(makefile: string): KernelSeries | undefined {
  const version = /^VERSION\s*=\s*(\d+)\s*$/m.exec(makefile)?.[1];
  const patchlevel = /^PATCHLEVEL\s*=\s*(\d+)\s*$/m.exec(makefile)?.[1];
  if (version === undefined || patchlevel === undefined) return undefined;
  return { version: Number(version), patchlevel: Number(patchlevel) };
}

function compare(a: KernelSeries, b: KernelSeries): number {
  return a.version - b.version || a.patchlevel - b.patchlevel;
}

export function epcDriverSupports(series: KernelSeries): boolean {
  return compare(series, EPC_DRIVER_SUPPORT.from) >= 0 && compare(series, EPC_DRIVER_SUPPORT.below) < 0;
}

/** True for the EPC driver's directory (link/epc-driver), wherever the checkout is. */
function isEpcDriver(moduleDir: string): boolean {
  return basename(moduleDir.replace(/\/+$/, '')) === 'epc-driver';
}

/**
 * Refuses, before anything is configured or compiled, a kernel tree the EPC driver does not support
 * when the driver is among the out-of-tree modules to build. Without it (extraModules overridden)
 * any release may be built.
 */
export async function assertKernelSupported(srcDir: string, extraModules: string[]): Promise<void> {
  if (!extraModules.some(isEpcDriver)) return;
  const makefile = join(srcDir, 'Makefile');
  const text = await readFile(makefile, 'utf8').catch((cause: unknown) => {
    throw new HarnessError(`cannot read ${makefile} to tell the kernel version`, {
      code: 'KERNEL_SOURCE_MISSING',
      kind: 'input',
      phase: 'kernel-build',
      excerpt: 'The kernel source must be a full tree with its top-level Makefile.',
      cause,
    });
  });
  const series = parseMakefileSeries(text);
  if (!series) {
    throw new HarnessError(`${makefile} has no VERSION/PATCHLEVEL lines`, {
      code: 'KERNEL_UNSUPPORTED',
      kind: 'input',
      phase: 'kernel-build',
      excerpt: `The EPC driver (link/epc-driver) supports ${supportedRange()}; this tree's version is unknown.`,
    });
  }
  if (epcDriverSupports(series)) return;
  throw new HarnessError(`kernel ${formatSeries(series)} is outside the EPC driver's supported range (${supportedRange()})`, {
    code: 'KERNEL_UNSUPPORTED',
    kind: 'input',
    phase: 'kernel-build',
    excerpt: [
      `link/epc-driver (vepc.ko, the EP guest's endpoint controller) builds on Linux ${supportedRange()} (link/epc-driver/README.md).`,
      `Use a source in that range, or build this kernel without the driver by overriding the build's extraModules`,
      `(such a kernel can serve as the host guest, not as the EP).`,
    ].join('\n'),
  });
}
