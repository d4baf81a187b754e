// The pci-epf-ntb bridge through the real link, three guests on stock 6.12 kernels: an arm64 EP with two
// vepc controllers, each linked to its own x86_64 host; pci-epf-ntb configured across both (pci-ntb-howto.rst);
// ntb_hw_epf + ntb_tool on both hosts. Host writes into the function's doorbell/memory-window BARs cross the
// EP's fabric (FABRIC_WRITE) and reach the other host's RAM or its MSI address (MEM_WRITE on the other link).
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { readFile, readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeRunKey } from '../../harness/guest/keys.ts';
import { buildImage } from '../../harness/image/build.ts';
import { buildKernel } from '../../harness/kernel/build.ts';
import { builtinVariants } from '../../harness/kernel/variants.ts';
import { setupEpfNtb } from '../../harness/ntb/epf-ntb.ts';
import { modprobe } from '../../harness/ntb/modules.ts';
import { allocInbound, freeWindows, mapOutbound, readMd5, writeRandom } from '../../harness/ntb/mw.ts';
import { NtbTool } from '../../harness/ntb/ntb-tool.ts';
import { waitFunction } from '../../harness/ntb/pci.ts';
import { perfDir, runPerf } from '../../harness/ntb/perf.ts';
import { buildLinkQemu } from '../../harness/qemu/build.ts';
import { ensureSetup } from '../../harness/setup/setup.ts';
import { BridgeTrio } from '../../harness/topology/bridge.ts';
import { makeRunDirs } from '../../harness/util/rundir.ts';
import { teardownAll } from '../../harness/util/teardown.ts';
import type { LinkRelay } from '../../harness/link/relay.ts';
import type { KernelSpec } from '../../harness/kernel/spec.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);
/** Three TCG guests on two shared cores: every guest-side wait is stretched by this much. */
const SCALE = 3;
const ms = (base: number) => base * SCALE;
const EPF_NTB = { vendorid: 0x104c, deviceid: 0xb00d, baseclass_code: 0x05, subclass_code: 0x00, db_count: 4, spad_count: 64, mws: [0x100000] };
/** ntb_hw_epf (6.12): peer_db_set(bit n) writes the MSI data of interrupt n + 2; vectors 0 (link) and 1 (reserved) are no doorbells. */
const EPF_IRQ_DB_START = 2;
/** Guest shell: the guest's uptime in centiseconds into $var (busybox date has no %N). */
const UPTIME_CS = (v: string) => `read up rest < /proc/uptime; ${v}=$(( \${up%.*} * 100 + 1\${up#*.} - 100 ))`;

/** Processes whose command line mentions `needle` (not ps itself). */
async function processesMentioning(needle: string): Promise<string[]> {
  const ps = await execa('ps', ['-eo', 'pid,args', '--no-headers']);
  return ps.stdout.split('\n').filter((line) => line.includes(needle) && !/\bps -eo\b/.test(line));
}

async function modesUnder(dir: string): Promise<{ path: string; mode: string; directory: boolean }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const out = [{ path: dir, mode: ((await stat(dir)).mode & 0o777).toString(8), directory: true }];
  for (const entry of entries) {
    const path = join(entry.parentPath, entry.name);
    out.push({ path, mode: ((await stat(path)).mode & 0o777).toString(8), directory: entry.isDirectory() });
  }
  return out;
}

t.before(() => ensureSetup({ log }));
t.teardown(() => teardownAll());

type Tap = Test;

/** Kernels and QEMU for one case: the hosts always run the stock 6.12 x86_64 kernel. */
async function artifacts(epSpec: KernelSpec) {
  const epKernel = await buildKernel(epSpec, 'arm64', { log });
  const hostKernel = await buildKernel(builtinVariants.stock!, 'x86_64', { log });
  const [epImage, hostImage, qemu] = await Promise.all([buildImage(epKernel, log), buildImage(hostKernel, log), buildLinkQemu(log)]);
  return { epKernel, hostKernel, epImage, hostImage, qemu };
}

async function bridgeCase(t: Tap, epSpec: KernelSpec, epRelease: RegExp): Promise<void> {
  const { epKernel, hostKernel, epImage, hostImage, qemu } = await artifacts(epSpec);
  t.match(epKernel.release, epRelease, `EP kernel ${epKernel.release}`);
  t.match(hostKernel.release, /^6\.12\./, `host kernel ${hostKernel.release}`);
  const run = await makeRunDirs('bridge-link');
  const key = await makeRunKey(join(run.dir, 'ssh'));
  const dir = join(run.dir, 'trio');
  const shm = join(run.shm, 'trio');
  t.comment(`artifacts: ${dir}`);
  const trio = new BridgeTrio({
    dir,
    shm,
    key,
    qemu,
    timeoutScale: SCALE,
    log,
    ep: { kernel: epKernel, image: epImage },
    host: { kernel: hostKernel, image: hostImage },
    host2: { kernel: hostKernel, image: hostImage },
    // pci-epf-ntb takes BARs in order: 0 config, 1 peer spad, 2 doorbell + MW1 (ntb_hw_epf's J721E map).
    epcParams: 'free_bars=0x3f',
  });
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await trio.stop();
  });

  await trio.start();
  t.same(trio.epcNames, ['0000:00:10.0', '0000:00:11.0'], 'the EPCs are named by their fixed slots');
  const hosts = [trio.host, trio.host2] as const;
  await Promise.all(hosts.flatMap((h) => [modprobe(h, 'ntb_hw_epf', {}, ms(60_000)), modprobe(h, 'ntb_tool', {}, ms(60_000))]));

  const setup = await setupEpfNtb(trio.ep, EPF_NTB, trio.epcNames, ms(60_000));
  t.same(setup.refused, [], 'every attribute accepted');
  t.same(setup.absent, [], 'every attribute exists in this kernel');
  t.ok(setup.started, `bound primary ${setup.epcs[0]}, secondary ${setup.epcs[1]}, both started`);
  t.equal(setup.ntbDir.split('/').at(-1), 'pci_epf_ntb.0', 'the NTB attributes live in pci_epf_ntb.0 (the howto\'s ls says pci-epf-ntb.0)');
  const functions = (await trio.ep.exec('ls /sys/kernel/config/pci_ep/functions/')).stdout.split(/\s+/);
  t.ok(functions.includes('pci_epf_ntb') && !functions.includes('pci-epf-ntb'), `functions/ lists pci_epf_ntb, not the howto's pci-epf-ntb (${functions.join(' ')})`);
  await Promise.all(trio.relays.map((relay) => relay.waitLinkState(true, ms(60_000))));

  // Each host sees its side of the NTB, class 0x0500, bound to ntb_hw_epf.
  for (const host of hosts) {
    const bound = await waitFunction(host, { vendor: EPF_NTB.vendorid, device: EPF_NTB.deviceid, present: true, driver: 'ntb_hw_epf' }, ms(60_000));
    t.ok(bound.ok, `${host.name}: 104c:b00d bound to ntb_hw_epf (${bound.functions.map((f) => `${f.bdf} class ${f.class} ${f.driver ?? '-'}`).join(', ')})`);
    if (!bound.ok) {
      t.comment((await trio.ep.exec('dmesg | tail -n 40')).stdout);
      return;
    }
  }
  // The fabric: the doorbell/MW BAR of each interface lies in the other controller's aperture.
  const epLog = (await trio.ep.exec('dmesg')).stdout;
  t.notMatch(epLog, /DoorBell BAR set failed|Failed to create NTB EPC|Failed to allocate OB address/, 'pci-epf-ntb set every BAR, including the fabric ones');

  const tools = await Promise.all(hosts.map((h) => NtbTool.open(h, ms(30_000))));
  const [tool, tool2] = tools as [NtbTool, NtbTool];
  await Promise.all(tools.map((tl) => tl.enableLink()));
  const up = await Promise.all(tools.map((tl) => tl.waitPeerLink(ms(60_000))));
  t.same(up, [true, true], 'peer0/link reads Y on host and host2');
  if (!up.every(Boolean)) {
    t.comment((await trio.ep.exec('dmesg | tail -n 40')).stdout);
    return;
  }

  // Scratchpads: written through the peer spad BAR (EP RAM of the other interface), read locally.
  t.same(await tool.writePeerSpad(0, 0x1234abcd), { ok: true }, 'host writes peer0/spad0');
  t.equal(await tool2.readSpad(0), 0x1234abcd, 'host2 reads spad0 as host wrote it');
  t.same(await tool2.writePeerSpad(1, 0x5a5a0001), { ok: true }, 'host2 writes peer0/spad1');
  t.equal(await tool.readSpad(1), 0x5a5a0001, 'host reads spad1 as host2 wrote it');

  // Doorbells: each valid bit, each way; the receiving link's relay saw exactly one MSI, on vector n + 2.
  const ring = async (from: NtbTool, to: NtbTool, relay: LinkRelay, bit: number, label: string) => {
    const before = await to.db();
    if (before) await to.clearDb(before);
    const mark = relay.mark();
    const rang = await from.ringPeer(1 << bit);
    t.same(rang, { ok: true }, `${label}: peer_db s ${1 << bit} accepted`);
    const seen = await to.waitDb(0, ms(10_000));
    t.equal(seen.value, 1 << bit, `${label}: db shows bit ${bit} (read ${seen.value.toString(16)})`);
    // Posted writes: the MSI may still be in the relay when db changes; give it a moment.
    for (let i = 0; i < 50 && relay.msiDeliveries(mark).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    t.same([...relay.msiCounts(mark)], [[bit + EPF_IRQ_DB_START, 1]], `${label}: link ${relay.linkId} counted one MSI on vector ${bit + EPF_IRQ_DB_START}`);
    t.ok(relay.msiDeliveries(mark).every((d) => d.path === 'write'), `${label}: carried as the EP's memory write (map_msi_irq)`);
    await to.clearDb(seen.value || 1 << bit);
  };
  const [valid, valid2] = [await tool.dbValidMask(), await tool2.dbValidMask()];
  t.ok(valid > 0 && valid2 > 0, `db_valid_mask host ${valid.toString(16)}, host2 ${valid2.toString(16)}`);
  const fabricBefore = trio.relays.map((r) => r.fabric.writes);
  for (let bit = 0; (1 << bit) <= valid2; bit++) if (valid2 & (1 << bit)) await ring(tool, tool2, trio.relays[1], bit, `host→host2 bit ${bit}`);
  for (let bit = 0; (1 << bit) <= valid; bit++) if (valid & (1 << bit)) await ring(tool2, tool, trio.relays[0], bit, `host2→host bit ${bit}`);
  t.ok(trio.relays[0].fabric.writes > fabricBefore[0]! && trio.relays[1].fabric.writes > fabricBefore[1]!, `doorbells crossed the fabric (FABRIC_WRITE: link0 ${trio.relays[0].fabric.writes}, link1 ${trio.relays[1].fabric.writes})`);

  // A memory window: host2 allocates its inbound window, host maps peer MW 0 onto it and writes.
  const size = 0x10000;
  const inbound = await allocInbound(tool2, 0, size);
  t.ok(inbound.window, `host2 inbound window: ${inbound.error ?? `0x${inbound.window?.dmaAddress.toString(16)} + ${inbound.window?.size}`}`);
  if (inbound.window) {
    const mapped = await mapOutbound(tool, 0, inbound.window, 'decimal');
    t.ok(mapped.ok, `host maps peer_mw_trans0 (${mapped.value}${mapped.error ? `: ${mapped.error}` : ''})`);
    const written = Date.now();
    const fabric = trio.relays[0].fabric.bytes;
    const sent = await writeRandom(tool, 'peer_mw0', size);
    const writeMs = Date.now() - written;
    const got = await readMd5(tool2, 'mw0', size);
    t.ok(sent.md5 && got.md5 && sent.md5 === got.md5, `host2 reads back what host wrote (${sent.md5 ?? sent.error} vs ${got.md5 ?? got.error})`);
    const bytes = trio.relays[0].fabric.bytes - fabric;
    t.ok(bytes >= size, `${bytes} bytes crossed link 0's fabric`);
    t.comment(`fabric write: ${size} bytes in ${writeMs} ms (${((size / 1024) / (writeMs / 1000)).toFixed(1)} KiB/s, ${trio.relays[0].fabric.writes} FABRIC_WRITEs on link 0 so far)`);
    // Reads through the fabric are non-posted (FABRIC_READ, the RC's vCPU waits for the reply): host2 fills
    // its own inbound window, host reads it back through peer_mw0 and must see the same bytes, not zeros.
    const readSize = 0x1000;
    const filled = await writeRandom(tool2, 'mw0', readSize);
    const reads = trio.relays[0].fabricReads.reads;
    const timed = await tool.guest.exec(`${UPTIME_CS('s')}; dd if=${tool.path('peer0/peer_mw0')} bs=${readSize} count=1 2>/dev/null | md5sum; ${UPTIME_CS('e')}; echo $(( (e - s) * 10000 ))`);
    const [readMd5Line, usLine] = timed.stdout.trim().split('\n');
    const readBack = readMd5Line?.split(/\s+/)[0];
    t.ok(filled.md5 && readBack === filled.md5, `host reads through peer_mw0 what host2 wrote into mw0 (${readBack ?? timed.stderr.trim()} vs ${filled.md5 ?? filled.error})`);
    const crossed = trio.relays[0].fabricReads.reads - reads;
    t.ok(crossed >= readSize / 8, `${crossed} FABRIC_READs crossed link 0 for ${readSize} bytes`);
    t.equal(trio.relays[0].fabricReads.failed + trio.relays[0].fabricReads.timedOut, 0, 'no fabric read failed or timed out');
    t.comment(`fabric read: ${readSize} bytes in ${Number(usLine) / 1000} ms in the guest (${crossed} reads, ${(Number(usLine) / Math.max(1, crossed)).toFixed(0)} us each; relay↔EP avg ${(trio.relays[0].fabricReads.totalMs / Math.max(1, trio.relays[0].fabricReads.answered)).toFixed(3)} ms)`);
    // A completion that never comes (the relay swallows one read): all-ones after the RC's timeout, then reads work again.
    trio.relays[0].dropFabricReads = 1;
    const lost = await tool.guest.exec(`${UPTIME_CS('s')}; dd if=${tool.path('peer0/peer_mw0')} bs=4 count=1 2>/dev/null | od -An -tx4; ${UPTIME_CS('e')}; echo $(( (e - s) * 10 ))`);
    const [word, lostMs] = lost.stdout.trim().split('\n').map((line) => line.trim());
    t.equal(word, 'ffffffff', `a read whose completion never comes reads all-ones (${lost.stdout.trim() || lost.stderr.trim()})`);
    t.ok(Number(lostMs) >= 900, `only after the completion timeout (${lostMs} ms; fabric-read-timeout-ms 1000)`);
    const again = await readMd5(tool, 'peer_mw0', readSize);
    t.equal(again.md5, filled.md5, 'the next read through peer_mw0 gets the data again');
    t.equal(trio.relays[0].fabricReads.timedOut, 1, 'the relay counted the one read that timed out');
    await freeWindows(tool2, tool, 0, inbound.window);
  }

  // One short ntb_perf run host → host2 (CPU copies through the fabric); a finding, not a gate, if it cannot run.
  await Promise.all(hosts.map((h) => h.exec('rmmod ntb_tool', { timeoutMs: ms(30_000) })));
  const perfLoaded = await Promise.all(hosts.map((h) => h.exec('modprobe ntb_perf total_order=16 chunk_order=16 max_mw_size=0x100000', { timeoutMs: ms(60_000) })));
  if (perfLoaded.every((r) => r.exitCode === 0)) {
    const dirs = await Promise.all(hosts.map((h) => perfDir(h, ms(30_000))));
    if (dirs[0] && dirs[1]) {
      const outcome = await runPerf(trio.host, dirs[0], ms(30_000), ms(120_000));
      t.comment(`ntb_perf host→host2: ${outcome.completed ? outcome.threads.map((th) => `${th.bytes} bytes in ${th.usecs} us (${th.mbps} MB/s)`).join(', ') : `did not complete: ${outcome.output}`}`);
      t.ok(outcome.completed && outcome.threads.every((th) => th.error === undefined), `ntb_perf host→host2 completed (${outcome.output.split('\n')[0]})`);
    } else t.fail(`ntb_perf directories: ${dirs.join(', ')}`);
  } else t.fail(`ntb_perf did not load: ${perfLoaded.map((r) => r.stderr.trim()).join('; ')}`);

  // Privacy while everything runs (docs/run-data.md): every directory 0700; on the scratch every file (RAM
  // files, relay and QMP sockets) 0600; in the kept directory the wire traces 0600 (the guests' consoles and
  // command lines are kept by guest.ts inside their 0700 directories).
  for (const { path, mode, directory } of await modesUnder(dir)) {
    if (directory || path.endsWith('.ndjson')) t.equal(mode, directory ? '700' : '600', `${path} is ${directory ? '0700' : '0600'}`);
  }
  for (const { path, mode, directory } of await modesUnder(shm)) t.equal(mode, directory ? '700' : '600', `${path} is ${directory ? '0700' : '0600'}`);
  const traces = (await readdir(dir)).filter((name) => name.endsWith('.ndjson')).sort();
  t.same(traces, ['wire-link0.ndjson', 'wire-link1.ndjson'], 'one wire trace per link');

  await trio.stop();
  stopped = true;
  t.same(await processesMentioning(shm), [], 'no QEMU left on the trio scratch');
  t.same(await processesMentioning(dir), [], 'no process left that belongs to the trio');
  const sockets = trio.relays.flatMap((relay) => Object.values(relay.socketPath)).filter((path) => existsSync(path));
  t.same(sockets, [], 'no relay socket left');
  for (const relay of trio.relays) {
    const trace = (await readFile(join(dir, `wire-link${relay.linkId}.ndjson`), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const last = trace.filter((e) => e.type === 'FABRIC').at(-1);
    t.match(last, { link: relay.linkId, writes: relay.fabric.writes, bytes: relay.fabric.bytes, final: true }, `link ${relay.linkId}: the kept trace ends with the fabric totals (${relay.fabric.writes} writes, ${relay.fabric.bytes} bytes)`);
    t.notOk(trace.some((e) => e.type === 'FABRIC_WRITE'), `link ${relay.linkId}: no trace record per fabric write`);
    t.ok(trace.some((e) => e.type === 'MSI' && e.path === 'write'), `link ${relay.linkId}: doorbell MSIs traced as memory writes`);
  }
}

t.test('pci-epf-ntb bridge, stock 6.12 EP and hosts: link, scratchpads, doorbells per bit both ways, a memory window, ntb_perf, no leftovers', (t) =>
  bridgeCase(t, builtinVariants.stock!, /^6\.12\./),
);

// Debian's 7.2 EP (the kernel release-link.test.ts builds): the 7.x EPC API under pci-epf-ntb.
t.test('pci-epf-ntb bridge, Debian 7.2 EP with stock 6.12 hosts: the same checks', (t) =>
  bridgeCase(t, { name: 'stock-7.2', source: { kind: 'debian', version: '7.2' }, patches: [], fragments: [] }, /^7\.2\./),
);

t.test('a trio whose EP cannot start leaves no QEMU, relay socket or scratch file behind', async (t) => {
  const { epKernel, hostKernel, epImage, hostImage, qemu } = await artifacts(builtinVariants.stock!);
  const run = await makeRunDirs('bridge-fail');
  const key = await makeRunKey(join(run.dir, 'ssh'));
  const dir = join(run.dir, 'trio');
  const shm = join(run.shm, 'trio');
  const trio = new BridgeTrio({
    dir,
    shm,
    key,
    qemu,
    timeoutScale: SCALE,
    log,
    // Both hosts' QEMUs are running by the time the EP's exits at once (no such kernel image).
    ep: { kernel: { ...epKernel, image: join(run.dir, 'no-such-Image') }, image: epImage },
    host: { kernel: hostKernel, image: hostImage },
    host2: { kernel: hostKernel, image: hostImage },
  });
  const error = await trio.start().catch((e: unknown) => e);
  t.match(error, { code: 'QEMU_START_FAILED', guest: 'ep' }, 'start fails with the EP QEMU error');
  await trio.stop();
  t.same(await processesMentioning(shm), [], 'no QEMU left on the trio scratch');
  t.same(trio.relays.flatMap((relay) => Object.values(relay.socketPath)).filter((path) => existsSync(path)), [], 'no relay socket left');
  t.same(existsSync(shm) ? await readdir(shm) : [], [], 'no RAM file or QMP socket left');
  await trio.stop();
  t.pass('a second stop is harmless');
});
