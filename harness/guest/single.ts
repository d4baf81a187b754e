import { join } from 'node:path';
import { buildKernel, type KernelArtifact } from '../kernel/build.ts';
import { buildImage } from '../image/build.ts';
import type { Arch, KernelSpec } from '../kernel/spec.ts';
import type { RunDirs } from '../util/rundir.ts';
import { Guest } from './guest.ts';
import { makeRunKey } from './keys.ts';

export interface SingleGuestOptions {
  arch: Arch;
  spec: KernelSpec;
  run: RunDirs;
  name?: string;
  log: (line: string) => void;
  timeoutScale?: number;
  extraCmdline?: string[];
  /** Out-of-tree modules to build into the kernel (default: the EPC driver; tests add test/modules/*). */
  extraModules?: string[];
  /** x86: boot without the IOMMU (a bare baseline). */
  iommu?: boolean;
  qemuBinary?: string;
  qemuDataDir?: string;
}

/** Builds (or reuses) kernel and image for one arch and boots a guest from them, up to SSH. */
export async function bootSingle(options: SingleGuestOptions): Promise<{ guest: Guest; kernel: KernelArtifact }> {
  const kernel = await buildKernel(options.spec, options.arch, { log: options.log, extraModules: options.extraModules });
  const image = await buildImage(kernel, options.log);
  const key = await makeRunKey(join(options.run.dir, 'ssh'));
  const name = options.name ?? options.arch;
  const guest = new Guest({
    name,
    arch: options.arch,
    kernelImage: kernel.image,
    initramfs: image.initramfs,
    runDir: join(options.run.dir, name),
    shmDir: options.run.shm,
    key,
    timeoutScale: options.timeoutScale,
    extraCmdline: options.extraCmdline,
    iommu: options.iommu,
    qemuBinary: options.qemuBinary,
    qemuDataDir: options.qemuDataDir,
  });
  options.log(`booting ${name} (${options.arch}, ${kernel.name} ${kernel.release})`);
  await guest.start();
  const times = await guest.waitReady();
  options.log(`${name} up: ready line after ${times.readyMs} ms, SSH after ${times.sshMs} ms`);
  return { guest, kernel };
}
