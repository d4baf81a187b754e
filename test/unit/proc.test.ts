import t from 'tap';
import { compilerErrors, run } from '../../harness/util/proc.ts';
import { HarnessError } from '../../harness/errors.ts';

t.test('a failed build shows the compiler error, not the tail of make', async (t) => {
  const log = [
    '  CC [M]  drivers/ntb/hw/epf/ntb_hw_epf.o',
    '../src/drivers/ntb/hw/epf/ntb_hw_epf.c: In function ‘ntb_epf_peer_db_set’:',
    "../src/drivers/ntb/hw/epf/ntb_hw_epf.c:412:9: error: ‘db_offset’ undeclared (first use in this function)",
    '  412 |         db_offset = readl(ndev->ctrl_reg + NTB_EPF_DB_OFFSET(interrupt_num));',
    '      |         ^~~~~~~~~',
    'make[6]: *** [../src/scripts/Makefile.build:229: drivers/ntb/hw/epf/ntb_hw_epf.o] Error 1',
    ...Array.from({ length: 40 }, (_, i) => `make[${i}]: Leaving directory`),
  ].join('\n');
  const excerpt = compilerErrors(log);
  t.match(excerpt, /In function ‘ntb_epf_peer_db_set’/);
  t.match(excerpt, /ntb_hw_epf\.c:412:9: error: ‘db_offset’ undeclared/);
  t.match(excerpt, /\^~~~~/);
  t.notMatch(excerpt, /Leaving directory/);
});

t.test('a failing command becomes a HarnessError with phase, code and output', async (t) => {
  const error = await run('sh', ['-c', 'echo building; echo "x.c:1:1: error: nope" >&2; exit 2'], { phase: 'kernel-build', code: 'KERNEL_BUILD_FAILED', excerpt: compilerErrors }).catch((e: unknown) => e);
  t.ok(error instanceof HarnessError);
  t.match(error, { code: 'KERNEL_BUILD_FAILED', phase: 'kernel-build', kind: 'infra', exitCode: 2 });
  t.match((error as HarnessError).excerpt, /x\.c:1:1: error: nope/);
});
