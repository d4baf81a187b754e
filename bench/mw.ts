/**
 * Memory-window throughput against a like-for-like copy inside the same guests (bench/README.md,
 * docs/mw-throughput.md). One linked pair (link-bench.yaml's function, new/new):
 *   - ntb_perf each direction (memcpy_toio into the peer's window, no DMA)
 *   - bench/tools/mwcopy in each guest: the same copy (window-sized source, 64 KiB chunks, wrapping)
 *     into ordinary RAM and into the window itself, with memcpy_toio's instruction pattern (`io`),
 *     a plain 8-byte loop (`u64`) and libc memcpy (`libc`)
 *   - which kind of memory region each window is in its QEMU (`info mtree -f`): RAM or MMIO callbacks
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HarnessError } from '../harness/errors.ts';
import { createEmitter } from '../harness/events.ts';
import { Guest } from '../harness/guest/guest.ts';
import { makeRunKey } from '../harness/guest/keys.ts';
import type { GuestExec } from '../harness/guest/types.ts';
import type { Arch } from '../harness/kernel/spec.ts';
import { perfDir, perfInfo, runPerf } from '../harness/ntb/perf.ts';
import { ndjsonReporter } from '../harness/report/ndjson.ts';
import { ArtifactStore } from '../harness/run/artifacts.ts';
import { bootCell } from '../harness/run/boot-cell.ts';
import { loadScenario } from '../harness/scenario/load.ts';
import { expandMatrix } from '../harness/scenario/matrix.ts';
import { Rig } from '../harness/scenario/rig.ts';
import { runStep } from '../harness/scenario/step-runner.ts';
import { SETUP } from '../harness/scenario/steps/index.ts';
import { ensureSetup } from '../harness/setup/setup.ts';
import type { Side } from '../harness/results/model.ts';
import { hashParts, short } from '../harness/util/hash.ts';
import { withLock } from '../harness/util/lock.ts';
import { cachePath, repoRoot } from '../harness/util/paths.ts';
import { run } from '../harness/util/proc.ts';
import { makeRunDirs } from '../harness/util/rundir.ts';
import { onTeardown } from '../harness/util/teardown.ts';

export const PATTERNS = ['io', 'u64', 'libc'] as const;
export type Pattern = (typeof PATTERNS)[number];
/** Where mwcopy copied to; "-congruent": source and destination 16 MiB aligned (mwcopy -A), as in ntb_perf. */
export type Target = 'ram' | 'window' | 'ram-congruent' | 'window-congruent';

const SOURCE = join(repoRoot, 'bench', 'tools', 'mwcopy.c');
const COMPILERS: Record<Arch, string> = { x86_64: 'gcc', arm64: 'aarch64-linux-gnu-gcc' };
const GUEST_PATH = '/tmp/mwcopy';

/** The static mwcopy binary for `arch`, built once per source and compiler. */
export async function buildMwcopy(arch: Arch): Promise<string> {
  const cc = COMPILERS[arch];
  const source = await readFile(SOURCE, 'utf8');
  const version = (await run(cc, ['--version'], { phase: 'setup', code: 'TOOLCHAIN_MISSING' })).stdout.split('\n')[0]!;
  const out = cachePath('tools', `mwcopy-${arch}-${short(hashParts({ source, cc, version }))}`);
  if (existsSync(out)) return out;
  await mkdir(cachePath('tools'), { recursive: true });
  return withLock(out, async () => {
    if (existsSync(out)) return out;
    await run(cc, ['-static', '-O2', '-Wall', '-o', `${out}.tmp`, SOURCE], { phase: 'setup', code: 'TOOL_BUILD' });
    await rename(`${out}.tmp`, out);
    return out;
  });
}

/** Copies the binary into the guest (base64 through the command's stdin: the image has no scp). */
export async function pushMwcopy(guest: GuestExec, binary: string): Promise<void> {
  const text = (await readFile(binary)).toString('base64');
  await guest.exec(`base64 -d > ${GUEST_PATH} && chmod 0755 ${GUEST_PATH}`, { stdin: text, check: true, timeoutMs: 120_000 });
}

export type Rates = Partial<Record<Target, Partial<Record<Pattern, number[]>>>>;

/** `mwcopy target=T layout=L pattern=P bytes=B usecs=U mbps=R` lines → rates per target and pattern. */
export function parseMwcopy(text: string, into: Rates = {}): Rates {
  for (const line of text.split('\n')) {
    const m = /^mwcopy target=(ram|window) layout=(any|congruent) pattern=(\w+) bytes=\d+ usecs=\d+ mbps=([\d.]+)/.exec(line.trim());
    if (!m || !(PATTERNS as readonly string[]).includes(m[3]!)) continue;
    const target = (m[2] === 'congruent' ? `${m[1]}-congruent` : m[1]) as Target;
    const byPattern = (into[target] ??= {});
    (byPattern[m[3] as Pattern] ??= []).push(Number(m[4]));
  }
  return into;
}

/** ntb_perf's `info`: the window it writes into (its CPU physical address and size). */
export function parsePerfWindow(info: string): { phys: string; size: number } | undefined {
  const phys = /Out buff phys addr (0x[0-9a-fA-F]+)/.exec(info)?.[1];
  const size = /Out buffer size (0x[0-9a-fA-F]+)/.exec(info)?.[1];
  if (!phys || !size || BigInt(phys) === 0n) return undefined;
  return { phys, size: Number(BigInt(size)) };
}

export function median(values: number[] | undefined): number {
  if (!values?.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/**
 * `info mtree -f` lines of the link's regions, once each (every address space repeats them): the peer's
 * RAM behind a window shows as "ram" (TCG's direct path), a hole or doorbell as "i/o" (a callback per access).
 */
export function windowRegions(mtree: string): string[] {
  return [...new Set(mtree.split('\n').filter((line) => /peer-ram|vepc/.test(line)).map((line) => line.trim()))];
}

/** MB/s of `dd if=/dev/zero of=/dev/null`, timed by the guest's clock (busybox dd prints no rate). */
async function ddMemset(guest: GuestExec, mib: number, timeoutMs: number): Promise<number> {
  const out = await guest.exec(`cut -d" " -f1 /proc/uptime; dd if=/dev/zero of=/dev/null bs=1M count=${mib} 2>/dev/null; cut -d" " -f1 /proc/uptime`, { check: true, timeoutMs });
  const [start, end] = out.stdout.trim().split('\n').map(Number);
  return end! > start! ? (mib * 1048576) / (end! - start!) / 1e6 : NaN;
}

/** The guest's context-switch and interrupt counters (/proc/stat). */
async function schedStats(guest: GuestExec): Promise<{ ctxt: number; intr: number }> {
  const text = (await guest.exec("grep -E '^(ctxt|intr) ' /proc/stat", { check: true })).stdout;
  return { ctxt: Number(/^ctxt (\d+)/m.exec(text)?.[1]), intr: Number(/^intr (\d+)/m.exec(text)?.[1]) };
}

export interface MwOptions {
  /** MiB each ntb_perf run and each mwcopy pass copies. */
  mib: number;
  passes: number;
  results: string;
  timeoutScale: number;
  log: (line: string) => void;
}

export interface MwResult {
  arch: Record<Side, Arch>;
  /** MiB per ntb_perf run and mwcopy pass. */
  mib: number;
  /** ntb_perf MBytes/s by sender: host = host→EP, ep = EP→host. */
  perf: Partial<Record<Side, number>>;
  /** The former baseline, `dd if=/dev/zero of=/dev/null` MB/s: a memset (clear_user), no copy at all. */
  memset: Partial<Record<Side, number>>;
  /** ntb_perf with 1 MiB chunks instead of 64 KiB. */
  perfBigChunks: Partial<Record<Side, number>>;
  /** ntb_perf with the perf step's defaults: 1 MiB in all, 64 KiB chunks. */
  perfOneMiB: Partial<Record<Side, number>>;
  /** Context switches and interrupts in the sender while ntb_perf ran (64 KiB chunks), with two SSH execs. */
  sched: Partial<Record<Side, { ctxt: number; intr: number }>>;
  rates: Record<Side, Rates>;
  window: Partial<Record<Side, { phys: string; size: number }>>;
  regions: Record<Side, string[]>;
}

export async function measureWindows(options: MwOptions): Promise<MwResult> {
  const scenario = await loadScenario(join(repoRoot, 'bench', 'link-bench.yaml'));
  const cell = expandMatrix(scenario)[0]!;
  const arch: Record<Side, Arch> = { ep: scenario.topology.ep.arch, host: scenario.topology.host.arch };
  // The compilers come with the project's setup (build-essential, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross).
  await ensureSetup({ log: options.log });
  const binaries = { ep: await buildMwcopy(arch.ep), host: await buildMwcopy(arch.host) };

  const runDirs = await makeRunDirs('bench-mw', options.results);
  const emitter = createEmitter();
  const ndjson = ndjsonReporter(runDirs.dir);
  const off = emitter.on(ndjson.listener);
  onTeardown('bench-mw events', async () => {
    off();
    await ndjson.close();
  });
  const key = await makeRunKey(join(runDirs.dir, 'ssh'));
  const store = new ArtifactStore(emitter, options.log);
  const booted = await bootCell(cell, { scenario, run: runDirs, key, store, emitter, timeoutScale: options.timeoutScale, log: options.log });
  try {
    const rig = new Rig(booted.ctx, scenario, cell.id);
    const setup = await runStep(rig, { id: 'setup', type: 'setup' }, SETUP.budget, (out) => SETUP.run(rig, out));
    if (setup.result.checks.find((c) => c.check === 'driver_bound')?.value !== true) {
      throw new HarnessError('bench-mw: the function did not bind on the host', { code: 'BENCH_SETUP', kind: 'infra', phase: 'setup', artifacts: runDirs.dir });
    }
    await rig.linkedTools();
    const result: MwResult = { arch, mib: options.mib, perf: {}, memset: {}, perfBigChunks: {}, perfOneMiB: {}, sched: {}, rates: { ep: {}, host: {} }, window: {}, regions: { ep: [], host: [] } };
    const args = `-t ${options.mib} -r ${options.passes}`;
    const tool = async (side: Side, target: string) => {
      const out = await rig.guest(side).exec(`${GUEST_PATH} ${args} ${target}`, { check: true, timeoutMs: rig.ms(600_000) });
      options.log(`mwcopy on ${side} ${target}:\n${out.stdout.trim()}\n${out.stderr.trim()}`);
      parseMwcopy(out.stdout, result.rates[side]);
    };
    for (const side of ['ep', 'host'] as const) {
      await pushMwcopy(rig.guest(side), binaries[side]);
      await tool(side, 'ram');
      await tool(side, '-A ram');
      result.memset[side] = await ddMemset(rig.guest(side), 8 * options.mib, rig.ms(300_000));
    }

    // ntb_perf as the perf step runs it (64 KiB chunks, a schedule() after each), with a total as large
    // as one mwcopy pass; then with 1 MiB chunks, which tells a per-chunk cost from a per-byte one.
    const totalOrder = Math.round(Math.log2(options.mib * 1048576));
    // Last, the perf step's defaults (1 MiB in all, one pass over a 1 MiB window): what the former bench ran.
    const runs = [
      { total: totalOrder, chunkOrder: 16 },
      { total: totalOrder, chunkOrder: 20 },
      { total: 20, chunkOrder: 16 },
    ];
    for (const { total, chunkOrder } of runs) {
      for (const side of ['ep', 'host'] as const) await rig.useClient(side, 'ntb_perf', { total_order: total, chunk_order: chunkOrder, use_dma: false });
      for (const side of ['host', 'ep'] as const) {
        const guest = rig.guest(side);
        const dir = await perfDir(guest, rig.ms(30_000));
        if (!dir) throw new HarnessError(`bench-mw: no ntb_perf directory on ${side}`, { code: 'BENCH_PERF', kind: 'infra', phase: 'step', guest: side });
        const before = await schedStats(guest);
        const perf = await runPerf(guest, dir, rig.ms(30_000), rig.ms(600_000));
        const after = await schedStats(guest);
        options.log(`ntb_perf ${side} (total 2^${total}, chunk 2^${chunkOrder}): ${perf.output}; context switches ${after.ctxt - before.ctxt}, interrupts ${after.intr - before.intr}`);
        const mbps = perf.completed ? perf.threads.reduce((sum, t) => sum + (t.mbps ?? 0), 0) : undefined;
        if (total !== totalOrder) {
          result.perfOneMiB[side] = mbps;
          continue;
        }
        if (chunkOrder !== 16) {
          result.perfBigChunks[side] = mbps;
          continue;
        }
        result.perf[side] = mbps;
        result.sched[side] = { ctxt: after.ctxt - before.ctxt, intr: after.intr - before.intr };
        // The window ntb_perf just wrote into: still mapped, the peer's inbound buffer behind it.
        const window = parsePerfWindow(await perfInfo(guest, dir));
        if (!window) continue;
        result.window[side] = window;
        await tool(side, `-s ${window.size} window ${window.phys}`);
        await tool(side, `-A -s ${window.size} window ${window.phys}`);
      }
    }

    for (const side of ['ep', 'host'] as const) {
      const guest = booted.ctx[side];
      if (!(guest instanceof Guest) || !guest.qmp) continue;
      const mtree = await guest.qmp.execute<string>('human-monitor-command', { 'command-line': 'info mtree -f' });
      await writeFile(join(runDirs.dir, `${side}-mtree.txt`), mtree, { mode: 0o600 });
      result.regions[side] = windowRegions(mtree);
    }
    await writeFile(join(runDirs.dir, 'mw.json'), `${JSON.stringify(result, null, 2)}\n`, { mode: 0o600 });
    return result;
  } finally {
    await booted.dispose();
  }
}
