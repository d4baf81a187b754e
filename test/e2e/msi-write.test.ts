// MSI as the EP's memory write, end to end: stock 6.12 EP and host, pci-epf-test with vepc.ko msi_write=1
// (scenarios/pci-epf-test-msi-write.yaml). Every MSI pci-epf-test raises must cross the link as a write
// to the MSI address the host programmed (MEM_WRITE, replayed by the RC function as its DMA through the
// host's intel-iommu interrupt remapping), none as a RAISE_IRQ message, and the relay's per-vector
// counts must still equal the host's /proc/interrupts deltas (the pcitest-msi witness checks).
import t from 'tap';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../../harness/run/command.ts';
import { repoRoot } from '../../harness/util/paths.ts';
import { teardownAll } from '../../harness/util/teardown.ts';

const log = (line: string) => process.stderr.write(`  ${line}\n`);

interface Results {
  status: string;
  cells: { id: string; steps: { id: string; checks?: { id: string; check?: string; status: string; message?: string }[] }[] }[];
}

t.teardown(() => teardownAll());

t.test('pci-epf-test with MSIs as memory writes passes, and the relay agrees per vector', async (t) => {
  const dir = await mkdtemp(join(repoRoot, 'results', 'e2e-msi-write-'));
  t.comment(`artifacts: ${dir}`);
  const exitCode = await runCommand(join(repoRoot, 'scenarios', 'pci-epf-test-msi-write.yaml'), { results: dir, timeoutScale: 1, log });
  const results = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  const bad = results.cells.flatMap((c) => c.steps.flatMap((s) => (s.checks ?? []).filter((k) => !['PASS', 'XFAIL', 'SKIP'].includes(k.status)).map((k) => `${s.id}.${k.id} ${k.status} ${k.message ?? ''}`)));
  t.same(bad, [], 'no failing check');
  t.equal(exitCode, 0, 'ntbh run exits 0');
  const witness = results.cells[0]!.steps.find((s) => s.id === 'msi')?.checks?.filter((k) => k.check === 'witness_agree') ?? [];
  t.ok(witness.length >= 16 && witness.every((k) => k.status === 'PASS'), `relay and /proc/interrupts agree for every vector (${witness.length} checks)`);

  const entries = await readdir(dir, { recursive: true });
  const wireFile = entries.find((e) => e.endsWith('wire.ndjson'))!;
  const wire = (await readFile(join(dir, wireFile), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const msis = wire.filter((e) => e.type === 'MSI');
  t.ok(msis.length >= 16, `MSIs on the wire: ${msis.length}`);
  t.same([...new Set(msis.map((e) => e.path))], ['write'], 'every MSI was carried as a memory write');
  t.equal(wire.filter((e) => e.from === 'ep' && e.type === 'RAISE_IRQ').length, 0, 'no MSI travelled as a message');
  const config = wire.filter((e) => e.from === 'rc' && e.type === 'HOST_CONFIG').pop();
  t.match(String(config?.msiAddress), /^0xfee/, `the host's MSI address (${String(config?.msiAddress)}) is the interrupt range, not RAM`);
  t.ok(wire.some((e) => e.type === 'WINDOW' && e.mapped === 2 && e.pciAddr === config?.msiAddress?.toString().replace(/[0-9a-f]{3}$/, '000')), 'a forwarded window onto the MSI page');
});
