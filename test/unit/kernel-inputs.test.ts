import t from 'tap';
import { configMismatches, parseConfig } from '../../harness/kernel/config.ts';
import { touchedFiles } from '../../harness/kernel/patches.ts';
import { parseKernelSource } from '../../harness/kernel/source.ts';

t.test('config fragments are checked against the merged .config', async (t) => {
  const merged = 'CONFIG_NTB=m\n# CONFIG_NTB_EPF is not set\nCONFIG_PCI=y\n';
  t.same([...parseConfig(merged)], [['CONFIG_NTB', 'm'], ['CONFIG_NTB_EPF', 'n'], ['CONFIG_PCI', 'y']]);
  const problems = configMismatches([{ path: '/x/ntb.config', content: 'CONFIG_NTB=m\nCONFIG_NTB_EPF=m\nCONFIG_MISSING=y\n' }], merged);
  t.same(problems, ['CONFIG_NTB_EPF=m requested in ntb.config, got n', 'CONFIG_MISSING=y requested in ntb.config, got n']);
});

t.test('a patch names the files it touches', async (t) => {
  const patch = [
    'From 1 Mon Sep 17 00:00:00 2001',
    'Subject: [PATCH] x',
    '---',
    ' drivers/ntb/hw/epf/ntb_hw_epf.c | 2 +-',
    '',
    'diff --git a/drivers/ntb/hw/epf/ntb_hw_epf.c b/drivers/ntb/hw/epf/ntb_hw_epf.c',
    '--- a/drivers/ntb/hw/epf/ntb_hw_epf.c',
    '+++ b/drivers/ntb/hw/epf/ntb_hw_epf.c',
    '@@ -1 +1 @@',
    'diff --git a/new.c b/new.c',
    '--- /dev/null',
    '+++ b/new.c',
  ].join('\n');
  t.same(touchedFiles(patch), ['drivers/ntb/hw/epf/ntb_hw_epf.c', 'new.c']);
});

t.test('kernel sources parse, bad ones are input errors', async (t) => {
  t.same(parseKernelSource('debian:6.12'), { kind: 'debian', version: '6.12' });
  t.same(parseKernelSource('git:/src/linux.git@v6.12'), { kind: 'git', url: '/src/linux.git', ref: 'v6.12' });
  t.match(parseKernelSource('path:/tmp/linux'), { kind: 'path', path: '/tmp/linux' });
  t.throws(() => parseKernelSource('ftp:nope'), { code: 'BAD_KERNEL_SOURCE', kind: 'input' });
});
