import { buildKernel, type KernelArtifact } from '../kernel/build.ts';
import { remainingMs } from '../kernel/build-progress.ts';
import { buildImage, type GuestImage } from '../image/build.ts';
import { buildLinkQemu, type QemuBuild } from '../qemu/build.ts';
import { describeSource } from '../kernel/source.ts';
import type { Arch, KernelSpec } from '../kernel/spec.ts';
import type { Emitter } from '../events.ts';

export interface BootArtifacts {
  kernel: KernelArtifact;
  image: GuestImage;
}

/**
 * Builds each (kernel, arch) and QEMU once per run, however many cells use them, and reports every
 * build as a phase event. A failed build fails only the cells that need it.
 */
export class ArtifactStore {
  private kernels = new Map<string, Promise<BootArtifacts>>();
  private qemu: Promise<QemuBuild> | null = null;

  constructor(
    private readonly emitter: Emitter,
    private readonly log: (line: string) => void,
  ) {}

  linkQemu(): Promise<QemuBuild> {
    this.qemu ??= this.phase('qemu-build', undefined, () =>
      buildLinkQemu(this.log, (done, total, elapsedMs) =>
        // ninja knows its total: time left by the rate so far.
        this.emitter.emit({ kind: 'progress', phase: 'qemu-build', done, total, unit: 'build steps', elapsedMs, remainingMs: done > 0 ? Math.round((elapsedMs / done) * (total - done)) : undefined }),
      ),
    );
    return this.qemu;
  }

  /** `packages`: the scenario's extra Debian packages for this guest (image/build.ts). */
  guest(spec: KernelSpec, arch: Arch, packages: string[] = []): Promise<BootArtifacts> {
    const key = `${arch} ${spec.name} ${describeSource(spec.source)} ${spec.patches.join(',')} ${spec.fragments.join(',')} ${packages.join(',')}`;
    let entry = this.kernels.get(key);
    if (!entry) {
      entry = this.phase('kernel-build', `${spec.name}/${arch}`, async () => {
        const guest = `${spec.name}/${arch}`;
        const kernel = await buildKernel(spec, arch, {
          log: this.log,
          progress: (p) => this.emitter.emit({ kind: 'progress', phase: 'kernel-build', guest, done: p.objects, unit: 'objects', total: p.estimate?.objects, elapsedMs: p.elapsedMs, remainingMs: remainingMs(p), basis: p.estimate?.basis }),
        });
        const image = await buildImage(kernel, this.log, packages);
        return { kernel, image };
      });
      entry.catch(() => undefined);
      this.kernels.set(key, entry);
    }
    return entry;
  }

  private async phase<T>(phase: string, guest: string | undefined, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    this.emitter.emit({ kind: 'phase', phase, guest, status: 'start' });
    try {
      const value = await fn();
      this.emitter.emit({ kind: 'phase', phase, guest, status: 'end', durationMs: Date.now() - started });
      return value;
    } catch (error) {
      this.emitter.emit({ kind: 'phase', phase, guest, status: 'error', durationMs: Date.now() - started, message: (error as Error).message });
      throw error;
    }
  }
}
