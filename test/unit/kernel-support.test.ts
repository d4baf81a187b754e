import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { HarnessError } from '../../harness/errors.ts';
import { EPC_DRIVER_SUPPORT, assertKernelSupported, epcDriverSupports, parseMakefileSeries } from '../../harness/kernel/support.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const makefile = (version: number, patchlevel: number, sublevel = 4) =>
  `# SPDX-License-Identifier: GPL-2.0\nVERSION = ${version}\nPATCHLEVEL = ${patchlevel}\nSUBLEVEL = ${sublevel}\nEXTRAVERSION =\nNAME = Baby Opossum Posse\n`;

t.test('VERSION and PATCHLEVEL come from the top-level Makefile', async (t) => {
  t.same(parseMakefileSeries(makefile(7, 3)), { version: 7, patchlevel: 3 });
  t.same(parseMakefileSeries(makefile(6, 12, 117)), { version: 6, patchlevel: 12 });
  t.equal(parseMakefileSeries('SUBLEVEL = 1\nPATCHLEVEL = 2\n'), undefined);
  // KERNELVERSION and friends further down must not be mistaken for VERSION.
  t.same(parseMakefileSeries('KERNELVERSION = 9.9\nVERSION = 6\nPATCHLEVEL = 1\n'), { version: 6, patchlevel: 1 });
});

t.test('the supported range is 6.1 up to, not including, 7.4', async (t) => {
  for (const ok of ['6.1', '6.12', '6.19', '7.0', '7.1', '7.2', '7.3']) {
    const [version, patchlevel] = ok.split('.').map(Number) as [number, number];
    t.ok(epcDriverSupports({ version, patchlevel }), `${ok} supported`);
  }
  for (const no of ['5.15', '6.0', '7.4', '7.10', '8.0']) {
    const [version, patchlevel] = no.split('.').map(Number) as [number, number];
    t.notOk(epcDriverSupports({ version, patchlevel }), `${no} refused`);
  }
});

t.test('vepc.c refuses exactly the range the harness refuses', async (t) => {
  const source = await readFile(join(repoRoot, 'link', 'epc-driver', 'vepc.c'), 'utf8');
  const guard = /#if LINUX_VERSION_CODE < KERNEL_VERSION\((\d+), (\d+), 0\) \|\|\s*\\\s*LINUX_VERSION_CODE >= KERNEL_VERSION\((\d+), (\d+), 0\)\s*#error "([^"]+)"/.exec(source);
  t.ok(guard, 'vepc.c has the version #error');
  const [, fromV, fromP, belowV, belowP, message] = guard!;
  t.same({ version: Number(fromV), patchlevel: Number(fromP) }, EPC_DRIVER_SUPPORT.from);
  t.same({ version: Number(belowV), patchlevel: Number(belowP) }, EPC_DRIVER_SUPPORT.below);
  t.match(message, `${fromV}.${fromP} <= version < ${belowV}.${belowP}`);
});

t.test('a tree outside the range is refused before building, unless the EPC driver is not built', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ntbh-support-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const epc = [join(repoRoot, 'link', 'epc-driver'), join(repoRoot, 'test', 'modules', 'ntbh-selftest')];

  await writeFile(join(dir, 'Makefile'), makefile(7, 2, 13));
  await t.resolves(assertKernelSupported(dir, epc));

  await writeFile(join(dir, 'Makefile'), makefile(7, 4, 0));
  const error = await assertKernelSupported(dir, epc).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(error, HarnessError);
  t.match(error, { code: 'KERNEL_UNSUPPORTED', kind: 'input', phase: 'kernel-build' });
  const excerpt = (error as HarnessError).excerpt ?? '';
  t.match(excerpt, '6.1 ≤ version < 7.4');
  t.match(excerpt, 'extraModules');
  t.match((error as HarnessError).message, 'kernel 7.4');

  await writeFile(join(dir, 'Makefile'), makefile(6, 0, 0));
  await t.rejects(assertKernelSupported(dir, epc), { code: 'KERNEL_UNSUPPORTED' });
  // Without the EPC driver among the extra modules, any release may be built (e.g. a host-only kernel).
  await t.resolves(assertKernelSupported(dir, [join(repoRoot, 'test', 'modules', 'ntbh-selftest')]));
  await t.resolves(assertKernelSupported(dir, []));

  await writeFile(join(dir, 'Makefile'), 'all:\n\ttrue\n');
  await t.rejects(assertKernelSupported(dir, epc), { code: 'KERNEL_UNSUPPORTED', kind: 'input' });
});
