import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { builtinFragments, configMismatches, loadFragments } from '../../harness/kernel/config.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const configs = join(repoRoot, 'kernel-configs');
const rel = (paths: string[]) => paths.map((p) => p.slice(configs.length + 1));

t.test('release-specific fragments apply from their release on, after the base ones', async (t) => {
  const base = ['common.config', 'ntb-epf.config', 'arm64.config'];
  t.same(rel(builtinFragments('arm64')), base, 'no series: the base fragments');
  t.same(rel(builtinFragments('arm64', '6.12')), base);
  t.same(rel(builtinFragments('arm64', '7.1')), base);
  t.same(rel(builtinFragments('arm64', '7.2')), [...base, 'since-7.2/arm64.config'], 'the 7.2+ EP asks for the MSI doorbell');
  t.same(rel(builtinFragments('arm64', '7.3')), [...base, 'since-7.2/arm64.config', 'since-7.3/common.config']);
  t.same(rel(builtinFragments('x86_64', '7.2')), ['common.config', 'ntb-epf.config', 'x86_64.config'], 'since-7.2 has no x86_64 fragment');
  t.same(rel(builtinFragments('x86_64', '7.10')), ['common.config', 'ntb-epf.config', 'x86_64.config', 'since-7.3/common.config'], '7.10 is after 7.3');
  t.same(rel(builtinFragments('x86_64', 'undefined.undefined')), ['common.config', 'ntb-epf.config', 'x86_64.config']);
});

t.test('a later fragment replaces an earlier request, as merge_config.sh does', async (t) => {
  const common = { path: '/k/common.config', content: 'CONFIG_PROC_SYSCTL=y\nCONFIG_TTY=y\n' };
  const since = { path: '/k/since-7.3/common.config', content: '# CONFIG_PROC_SYSCTL is not set\nCONFIG_SYSCTL=y\n' };
  // What olddefconfig leaves on 7.3: the old name is gone, the new one set.
  const merged73 = 'CONFIG_TTY=y\nCONFIG_SYSCTL=y\n';
  t.same(configMismatches([common, since], merged73), []);
  t.same(configMismatches([common], merged73), ['CONFIG_PROC_SYSCTL=y requested in common.config, got n'], 'without the 7.3 fragment the rename is reported');
  t.same(configMismatches([common, since], 'CONFIG_TTY=y\n# CONFIG_SYSCTL is not set\n'), ['CONFIG_SYSCTL=y requested in since-7.3/common.config, got n']);
});

t.test('the 7.3 fragment withdraws exactly what common.config requests under the old name', async (t) => {
  const [common, since] = await loadFragments([join(configs, 'common.config'), join(configs, 'since-7.3', 'common.config')]);
  t.match(common!.content, /^CONFIG_PROC_SYSCTL=y$/m);
  t.match(since!.content, /^# CONFIG_PROC_SYSCTL is not set$/m);
  t.match(since!.content, /^CONFIG_SYSCTL=y$/m);
  t.ok((await readFile(join(configs, 'README.md'), 'utf8')).includes('since-7.3'), 'kernel-configs/README.md lists it');
});
