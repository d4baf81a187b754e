// Host→EP doorbells as interrupts, end to end: a Debian 7.2 EP (arm64, PCI_ENDPOINT_MSI_DOORBELL from
// kernel-configs/since-7.2) whose vepc.ko offers its embedded doorbell (epc_params doorbell=1), the stock
// 6.12 host, scenarios/embedded-doorbell.yaml on a live pair (`ntbh up`, as a user would drive it).
// Evidence is the released kernel's own: the endpoint core's "Using embedded (DMA) doorbell fallback",
// vntb's IRQ "pci_epf_vntb_db" in the EP's /proc/interrupts counting the host's rings one for one, and
// the relay's trace of the host's writes (DOORBELL). Ctrl-C then leaves no QEMU behind.
// The polling fallback on the same kernel (doorbell=0, the default) is release-link.test.ts.
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildKernel } from '../../harness/kernel/build.ts';
import { builtinVariants } from '../../harness/kernel/variants.ts';
import { parseInterrupts } from '../../harness/ntb/interrupts.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const ntbh = join(repoRoot, 'bin', 'ntbh.js');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function cellFile(dir: string, suffix: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true });
  const file = entries.find((entry) => entry.endsWith(suffix));
  return file ? readFile(join(dir, file), 'utf8') : '';
}

/** The EP's count for vntb's doorbell IRQ (the action name vntb passes to request_irq). */
async function vntbDoorbellIrqs(dir: string): Promise<{ total: number; lines: string }> {
  const out = await execa('node', [ntbh, 'ssh', dir, 'ep', 'cat /proc/interrupts'], { timeout: 120_000 });
  const lines = [...parseInterrupts(out.stdout).values()].filter((line) => line.actions.some((action) => /\bpci_epf_vntb_db\b/.test(action)));
  return { total: lines.reduce((sum, line) => sum + line.total, 0), lines: out.stdout.split('\n').filter((l) => /pci_epf_vntb_db|vepc-doorbell/.test(l)).join('\n') };
}

t.test('7.2 EP with the embedded doorbell: vntb takes host doorbells as interrupts', async (t) => {
  const ep = await buildKernel({ name: 'stock-7.2', source: { kind: 'debian', version: '7.2' }, patches: [], fragments: [] }, 'arm64', { log });
  t.match(ep.release, /^7\.2\./, `EP kernel ${ep.release}`);
  await buildKernel(builtinVariants.stock!, 'x86_64', { log });

  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-embedded-doorbell-'));
  t.comment(`artifacts: ${dir}`);
  const up = execa('node', [ntbh, 'up', join(repoRoot, 'scenarios', 'embedded-doorbell.yaml'), '--results', dir], { reject: false, all: true });
  up.all?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  t.teardown(() => void up.kill('SIGKILL'));

  for (let i = 0; i < 900 && !existsSync(join(dir, 'live.json')) && up.exitCode === null; i++) await sleep(1000);
  t.ok(existsSync(join(dir, 'live.json')), 'the pair came up');
  if (!existsSync(join(dir, 'live.json'))) return;

  const console = await cellFile(dir, join('ep', 'console.log'));
  t.match(console, /Using embedded \(DMA\) doorbell fallback/, "the endpoint core took vepc's embedded doorbell");
  t.notMatch(console, /Failed to allocate doorbell|Failed to request doorbell IRQ|Failed to set Doorbell BAR/, 'vntb set up the interrupt-driven doorbell');

  const before = await vntbDoorbellIrqs(dir);
  t.ok(before.lines.includes('pci_epf_vntb_db'), `vntb requested its doorbell IRQ:\n${before.lines}`);
  const linkUp = await execa('node', [ntbh, 'step', dir, 'link', '--json'], { reject: false, timeout: 600_000 });
  t.equal(linkUp.exitCode, 0, 'link-up step passes');
  const wireBefore = (await cellFile(dir, 'wire.ndjson')).split('\n').filter((l) => l.includes('"DOORBELL"')).length;
  const ring = await execa('node', [ntbh, 'step', dir, 'h2e', '--json'], { reject: false, timeout: 900_000 });
  const result = JSON.parse(ring.stdout) as { checks: { check: string; label?: string; value: unknown; status: string }[] };
  const after = await vntbDoorbellIrqs(dir);
  const wire = (await cellFile(dir, 'wire.ndjson')).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { from: string; type: string; bar?: number });
  const doorbells = wire.filter((e) => e.from === 'rc' && e.type === 'DOORBELL');
  const rings = doorbells.length - wireBefore;
  t.ok(rings >= 2, `the host's rings crossed the link as DOORBELL writes (${rings})`);
  t.ok(doorbells.every((e) => e.bar === 2), "all through the function's doorbell BAR (BAR2)");
  t.equal(after.total - before.total, rings, `pci_epf_vntb_db fired once per host ring (${before.total} → ${after.total})`);
  // What vntb reported for each ring (docs/doorbells.md E12: every bit, one shared IRQ).
  const dbs = result.checks.filter((c) => c.check === 'db');
  t.ok(dbs.length >= 2, 'the EP saw each ring in its db');
  t.comment(`EP db per ring: ${dbs.map((c) => `${c.label ?? ''}=${String(c.value)} ${c.status}`).join(', ')}`);
  t.ok(result.checks.every((c) => ['PASS', 'XFAIL', 'SKIP'].includes(c.status)), `h2e checks: ${result.checks.filter((c) => !['PASS', 'XFAIL', 'SKIP'].includes(c.status)).map((c) => `${c.label ?? ''} ${c.check} ${String(c.value)} ${c.status}`).join('; ')}`);

  // Ctrl-C: the pair goes down and nothing of it stays.
  up.kill('SIGINT');
  const exit = await Promise.race([up, new Promise<null>((resolve) => setTimeout(() => resolve(null), 120_000).unref())]);
  t.ok(exit !== null, 'ntbh up exits on Ctrl-C');
  const qemus = await execa('pgrep', ['-f', dir], { reject: false });
  t.equal(qemus.stdout.trim(), '', 'no process of the pair is left');
});
