import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HarnessError } from '../errors.ts';
import { ConsoleMonitor, type Splat } from '../detect/console.ts';
import { QmpClient } from '../qemu/qmp.ts';
import { defaultCmdline, defaultQemuBinary, qemuArgs, shellQuote } from '../qemu/command.ts';
import { spawnTied } from '../util/proc.ts';
import { freePort } from '../util/ports.ts';
import { onTeardown } from '../util/teardown.ts';
import { checkedSocketPath, makePrivate, makePrivateDir, makePrivateFile } from '../util/rundir.ts';
import { scaleMs } from '../util/timeouts.ts';
import type { Arch } from '../kernel/spec.ts';
import type { ExecOptions, ExecResult, GuestExec } from './types.ts';
import { SshSession } from './ssh.ts';
import { makeRunInitrd } from './initrd.ts';
import type { SshKey } from './keys.ts';

export interface GuestConfig {
  name: string;
  arch: Arch;
  kernelImage: string;
  initramfs: string;
  /** Kept artifacts: console.log, qemu.cmdline, qemu.stderr. */
  runDir: string;
  /** tmpfs scratch: RAM file, QMP socket. Removed at stop. */
  shmDir: string;
  key: SshKey;
  memoryMiB?: number;
  cpus?: number;
  /** Back guest RAM by a file in shmDir (needed by the link). */
  sharedRam?: boolean;
  qemuBinary?: string;
  qemuDataDir?: string;
  extraArgs?: string[];
  extraCmdline?: string[];
  accel?: 'tcg' | 'kvm';
  /** Multiplies every boot and exec timeout (TCG on a loaded machine is slow). */
  timeoutScale?: number;
  /** Seconds to wait for SSH after QEMU starts, before scaling. */
  bootTimeoutS?: number;
  /** x86: the interrupt-remapping IOMMU (default on; a bare baseline turns it off). */
  iommu?: boolean;
}

export interface BootTimes {
  /** QEMU start to the init's ready line on the console. */
  readyMs: number;
  /** QEMU start to the first successful SSH command. */
  sshMs: number;
}

/**
 * One QEMU guest: started under TCG with its console streamed into a monitor and a file, reachable
 * over one kept-open SSH connection, controlled through QMP, and always stopped (QMP quit, then
 * SIGKILL) — on success, error, timeout or signal.
 */
export class Guest implements GuestExec {
  readonly console: ConsoleMonitor;
  readonly ramFile: string;
  readonly qmpSocket: string;
  qmp: QmpClient | null = null;
  sshPort = 0;
  bootTimes: BootTimes | null = null;
  private process: ReturnType<typeof spawnTied> | null = null;
  private ssh: SshSession | null = null;
  private consoleFile: WriteStream | null = null;
  private stderr = '';
  private exited: Promise<{ code: number | null; signal: string | null }> | null = null;
  private untrack: (() => void) | null = null;
  private startedAt = 0;

  constructor(readonly config: GuestConfig) {
    this.console = new ConsoleMonitor(config.name);
    this.ramFile = join(config.shmDir, `${config.name}.ram`);
    this.qmpSocket = checkedSocketPath(join(config.shmDir, `${config.name}.qmp`));
  }

  get name(): string {
    return this.config.name;
  }

  get scale(): number {
    return this.config.timeoutScale ?? 1;
  }

  get running(): boolean {
    return this.process !== null && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Starts QEMU and returns once QEMU runs (not once the guest is up: see waitReady). */
  async start(): Promise<void> {
    const { config } = this;
    await makePrivateDir(config.runDir);
    await makePrivateDir(config.shmDir);
    // QEMU uses an existing mem-path file as it is; left to itself it would create it 0644.
    if (config.sharedRam) await makePrivateFile(this.ramFile);
    const initrd = join(config.runDir, 'initrd.cpio');
    await makeRunInitrd(config.initramfs, initrd, { hostname: config.name, publicKey: config.key.publicKey });
    this.untrack = onTeardown(`guest ${config.name}`, () => this.stop());

    // Another process may grab the port between our probe and QEMU's bind: retry with a new one.
    for (let attempt = 1; ; attempt++) {
      this.sshPort = await freePort();
      const argv = [
        config.qemuBinary ?? defaultQemuBinary(config.arch),
        ...qemuArgs({
          arch: config.arch,
          kernel: config.kernelImage,
          initrd,
          cmdline: [...defaultCmdline(config.arch), ...(config.extraCmdline ?? [])],
          memoryMiB: config.memoryMiB ?? 512,
          cpus: config.cpus ?? 1,
          ramFile: config.sharedRam ? this.ramFile : undefined,
          sshPort: this.sshPort,
          qmpSocket: this.qmpSocket,
          accel: config.accel ?? defaultAccel(),
          dataDir: config.qemuDataDir,
          extra: config.extraArgs ?? [],
          iommu: config.iommu,
        }),
      ];
      await writeFile(join(config.runDir, 'qemu.cmdline'), `${shellQuote(argv)}\n`);
      this.launch(argv);
      const outcome = await Promise.race([this.exited!.then(() => 'exited' as const), sleep(400).then(() => 'running' as const)]);
      if (outcome === 'running') break;
      if (/host forwarding rule|Could not set up host forwarding/i.test(this.stderr) && attempt < 4) continue;
      throw this.bootError('QEMU_START_FAILED', 'QEMU exited at start', this.stderr || this.console.tail());
    }
    this.qmp = new QmpClient(this.qmpSocket, config.name);
    await this.qmp.connect(scaleMs(10_000, this.scale)).catch((error) => {
      throw this.bootError('QMP_CONNECT', `QMP did not come up: ${(error as Error).message}`, this.stderr);
    });
    // QEMU binds the QMP socket through the umask; the directory is 0700 already, the socket follows suit.
    await makePrivate(this.qmpSocket);
  }

  private launch(argv: string[]): void {
    const { config } = this;
    this.stderr = '';
    this.startedAt = Date.now();
    this.consoleFile?.end();
    this.consoleFile = createWriteStream(join(config.runDir, 'console.log'), { flags: 'a' });
    const child = spawnTied(argv[0]!, argv.slice(1), { name: `qemu ${config.name}` });
    this.process = child;
    child.stdout?.on('data', (chunk: Buffer) => {
      this.consoleFile?.write(chunk);
      this.console.push(chunk.toString('utf8'));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    this.exited = child.then((result) => {
      this.console.end();
      void writeFile(join(config.runDir, 'qemu.stderr'), this.stderr).catch(() => undefined);
      return { code: result.exitCode ?? null, signal: result.signal ?? null };
    });
  }

  /**
   * Readiness is a race: the init's ready line then a real SSH command, against a fatal console
   * line, QEMU exiting, silence on the console, and the (scaled) deadline.
   */
  async waitReady(): Promise<BootTimes> {
    const deadlineMs = scaleMs((this.config.bootTimeoutS ?? 60) * 1000, this.scale);
    let watchdog: NodeJS.Timeout | undefined;
    const failure = new Promise<never>((_, reject) => {
      const onFatal = (splat: Splat) => {
        // Give the panic a moment to print its backtrace into the excerpt.
        setTimeout(() => reject(this.bootError('BOOT_PANIC', splat.title, this.excerptAround(splat))), 300);
      };
      this.console.once('fatal', onFatal);
      void this.exited!.then(({ code, signal }) =>
        reject(this.bootError('BOOT_QEMU_EXITED', `QEMU exited during boot (${signal ?? `code ${code}`})`, `${this.stderr}\n${this.console.tail(30)}`.trim())),
      );
      setTimeout(() => reject(this.bootError('BOOT_TIMEOUT', `no SSH after ${Math.round(deadlineMs / 1000)} s`, this.console.tail(30))), deadlineMs).unref();
      // A guest that stops printing before it is ready is hung: say so early, not at the deadline.
      const silenceMs = scaleMs(20_000, this.scale);
      this.console.lastOutputAt = Date.now();
      watchdog = setInterval(() => {
        if (Date.now() - this.console.lastOutputAt < silenceMs) return;
        reject(this.bootError('BOOT_NO_OUTPUT', `console silent for ${Math.round(silenceMs / 1000)} s before the guest was ready`, this.console.tail(30)));
      }, 1000);
      watchdog.unref();
    });
    failure.catch(() => undefined);
    const ready = (async () => {
      const readyMs = await this.waitConsole(/ntbh-ready/, deadlineMs);
      this.ssh = new SshSession(this.name, { port: this.sshPort, privateKey: this.config.key.privateKey, defaultTimeoutMs: scaleMs(60_000, this.scale), killTimeoutMs: scaleMs(15_000, this.scale) });
      for (let attempt = 0; ; attempt++) {
        try {
          await this.ssh.connect(scaleMs(10_000, this.scale));
          await this.ssh.exec('true', { check: true, timeoutMs: scaleMs(10_000, this.scale) });
          break;
        } catch (error) {
          if (attempt >= 5) throw error;
          await sleep(200);
        }
      }
      return { readyMs, sshMs: Date.now() - this.startedAt };
    })();
    try {
      this.bootTimes = await Promise.race([ready, failure]);
    } finally {
      clearInterval(watchdog);
    }
    return this.bootTimes;
  }

  /** Resolves when QEMU exits (a guest powered off, or killed). */
  async waitExit(): Promise<{ code: number | null; signal: string | null }> {
    if (!this.exited) return { code: null, signal: null };
    return this.exited;
  }

  /** Resolves (with ms since QEMU start) when a console line matches. */
  waitConsole(pattern: RegExp, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const already = this.console.lines.some((line) => pattern.test(line));
      if (already) return resolve(Date.now() - this.startedAt);
      const onLine = (line: string) => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        this.console.off('line', onLine);
        resolve(Date.now() - this.startedAt);
      };
      const timer = setTimeout(() => {
        this.console.off('line', onLine);
        reject(this.bootError('CONSOLE_TIMEOUT', `console never showed ${pattern}`, this.console.tail(20)));
      }, timeoutMs);
      timer.unref();
      this.console.on('line', onLine);
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (!this.ssh) throw new HarnessError(`${this.name} is not up`, { code: 'GUEST_NOT_READY', kind: 'infra', phase: 'exec', guest: this.name });
    // Callers scale their own timeouts (the scenario executor multiplies by the run's scale).
    const timeoutMs = options.timeoutMs;
    // A panic under the command must be reported at once, with the console, not as a lost connection.
    let onFatal: ((splat: Splat) => void) | undefined;
    const panicked = new Promise<never>((_, reject) => {
      onFatal = (splat) => setTimeout(() => reject(this.bootError('GUEST_PANIC', `${splat.title} while running: ${command.slice(0, 100)}`, this.excerptAround(splat))), 300);
      this.console.once('fatal', onFatal);
    });
    panicked.catch(() => undefined);
    try {
      return await Promise.race([this.ssh.exec(command, { ...options, timeoutMs }), panicked]);
    } catch (error) {
      if (error instanceof HarnessError && error.code === 'GUEST_PANIC') throw error;
      // The connection may drop a moment before QEMU's exit is seen: give it a second to show.
      if (error instanceof HarnessError && error.code === 'SSH_LOST') await Promise.race([this.exited, sleep(1000)]);
      // A guest that panicked or died under the command is the real story: say so, with its console.
      const fatal = this.console.splats.find((splat) => splat.fatal);
      if (fatal) throw this.bootError('GUEST_PANIC', `${fatal.title} while running: ${command.slice(0, 100)}`, this.excerptAround(fatal));
      if (!this.running) throw this.bootError('GUEST_DIED', `${this.name} died while running: ${command.slice(0, 100)}`, this.console.tail(40), error);
      throw error;
    } finally {
      if (onFatal) this.console.off('fatal', onFatal);
    }
  }

  /** Stops the guest: QMP quit, then SIGKILL; removes its tmpfs files. Idempotent. */
  async stop(): Promise<void> {
    this.ssh?.close();
    this.ssh = null;
    if (this.running) {
      await this.qmp?.execute('quit', undefined, 3000).catch(() => undefined);
      const exited = await Promise.race([this.exited!.then(() => true), sleep(4000).then(() => false)]);
      if (!exited) {
        this.process?.kill('SIGKILL');
        await this.exited;
      }
    }
    this.qmp?.close();
    this.qmp = null;
    await new Promise<void>((resolve) => (this.consoleFile ? this.consoleFile.end(resolve) : resolve()));
    this.consoleFile = null;
    // The per-run initrd is rebuilt from the cached image in milliseconds: not worth keeping.
    for (const file of [this.ramFile, this.qmpSocket, join(this.config.runDir, 'initrd.cpio')]) if (existsSync(file)) await rm(file, { force: true });
    this.untrack?.();
    this.untrack = null;
  }

  /** Console lines around a splat: a few before (the trigger) and what followed. */
  excerptAround(splat: Splat): string {
    const from = Math.max(0, splat.line - 6);
    return this.console.lines.slice(from, splat.line + 30).join('\n');
  }

  private bootError(code: string, message: string, excerpt: string, cause?: unknown): HarnessError {
    // A kernel that panics or dies is the code under test failing, not the harness.
    const kind = code === 'BOOT_PANIC' || code === 'GUEST_PANIC' || code === 'GUEST_DIED' ? 'test' : 'infra';
    return new HarnessError(`${this.name}: ${message}`, {
      code,
      kind,
      phase: 'boot',
      guest: this.name,
      excerpt: excerpt.trim() ? excerpt : '(no console output)',
      artifacts: this.config.runDir,
      cause,
    });
  }
}

/**
 * TCG unless NTBH_ACCEL=kvm: /dev/kvm exists on machines where KVM cannot boot a stock guest (see
 * docs/guests.md), so KVM is an explicit choice, not a guess from the device node.
 */
export function defaultAccel(): 'tcg' | 'kvm' {
  return process.env.NTBH_ACCEL === 'kvm' ? 'kvm' : 'tcg';
}
