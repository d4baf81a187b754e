// The EPC driver on a released 7.x kernel, end to end: Debian's 7.2 (7.2.13) as the arm64 EP with our
// vepc.ko under pci-epf-vntb, Debian's 6.12 as the x86_64 host, ntb-bringup's steps through the real link.
// 7.2's EPC API differs from 6.x (docs/epc-api.md); this is where those shims meet a running vntb.
import t from 'tap';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { buildKernel } from '../../harness/kernel/build.ts';
import { builtinVariants } from '../../harness/kernel/variants.ts';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

interface Results {
  status: string;
  cells: { id: string; status: string; steps: { id: string; status: string; checks?: { id: string; status: string; message?: string }[] }[] }[];
}

/** Every check that is neither PASS, XFAIL nor SKIP, for a readable failure message. */
function problems(results: Results): string[] {
  return results.cells.flatMap((cell) =>
    cell.steps.flatMap((step) =>
      (step.checks ?? []).filter((c) => !['PASS', 'XFAIL', 'SKIP'].includes(c.status)).map((c) => `${cell.id} ${step.id}.${c.id}: ${c.status} ${c.message ?? ''}`),
    ),
  );
}

/** The EP guest's console.log under a run directory (results/<run>/<cell>/ep/console.log). */
async function epConsole(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true });
  const file = entries.find((entry) => entry.endsWith(join('ep', 'console.log')));
  return file ? readFile(join(dir, file), 'utf8') : '';
}

t.teardown(() => teardownAll());

t.test('Debian 7.2 EP (arm64) with the stock 6.12 host: NTB bring-up through the link passes', async (t) => {
  // The scenario's two kernels, built (or found in the cache) up front so a build failure reads as one.
  const ep = await buildKernel({ name: 'stock-7.2', source: { kind: 'debian', version: '7.2' }, patches: [], fragments: [] }, 'arm64', { log });
  t.match(ep.release, /^7\.2\./, `EP kernel ${ep.release}`);
  const host = await buildKernel(builtinVariants.stock!, 'x86_64', { log });
  t.match(host.release, /^6\.12\./, `host kernel ${host.release}`);

  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-release-link-'));
  t.comment(`artifacts: ${dir}`);
  const exitCode = await runCommand(join(repoRoot, 'scenarios', 'ntb-bringup-7-2.yaml'), { results: dir, timeoutScale: 1, log });
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;

  t.same(problems(results), [], 'no failing check, no unexpected splat');
  t.equal(results.cells.length, 1);
  for (const step of ['link', 'doorbell', 'mw', 'cycle', 'link-again', 'doorbell-again']) {
    const found = results.cells[0]!.steps.find((s) => s.id === step);
    t.ok(found && ['PASS', 'XFAIL'].includes(found.status), `step ${step}: ${found?.status ?? 'missing'}`);
  }
  t.equal(exitCode, 0, 'ntbh run exits 0');

  // vepc probed on 7.2 and vntb took its doorbell BAR in polling mode (no interrupt-driven doorbell).
  const console = await epConsole(dir);
  t.match(console, /vepc \S+: EPC \S+: aperture/, 'vepc probed on the 7.2 EP');
  t.notMatch(console, /Doorbell BAR set failed|Failed to request doorbell IRQ/, 'vntb set up its polled doorbell BAR');
  // The EP kernel has PCI_ENDPOINT_MSI_DOORBELL (kernel-configs/since-7.2): the core asked vepc for an
  // embedded doorbell and, vepc loaded without doorbell=1, got none; vntb fell back to polling
  // (the interrupt-driven mode is embedded-doorbell.test.ts).
  t.match(console, /Failed to allocate doorbell: -19/, 'the endpoint core asked vepc for a doorbell and fell back');
  t.notMatch(console, /Using embedded \(DMA\) doorbell fallback/, 'no embedded doorbell without doorbell=1');
});
