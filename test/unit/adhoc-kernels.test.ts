// `ntbh run --ep/--host`: ad-hoc kernels become scenario variants and a single cell.
import t from 'tap';
import { join } from 'node:path';
import { adHocScenario, sanitizeVariantName, variantNameForSource } from '../../harness/run/adhoc.ts';
import { resolveKernel } from '../../harness/scenario/kernels.ts';
import { loadScenario } from '../../harness/scenario/load.ts';
import { cellKernels, expandMatrix, formatMatrix } from '../../harness/scenario/matrix.ts';
import { repoRoot } from '../../harness/util/paths.ts';

const fixture = (name: string) => loadScenario(join(repoRoot, 'test', 'fixtures', 'scenarios', name));

t.test('names: readable, valid as variant names and cell ids', async (t) => {
  t.equal(variantNameForSource({ kind: 'debian', version: '7.2' }), 'debian_7.2');
  t.equal(variantNameForSource({ kind: 'git', url: '/src/linux.git', ref: 'v7.2' }), 'git_v7.2');
  t.equal(variantNameForSource({ kind: 'git', url: '/src/linux/', ref: 'a'.repeat(40) }), `git_${'a'.repeat(12)}`);
  t.equal(variantNameForSource({ kind: 'git', url: '/src/linux', ref: 'origin/Topic__X' }), 'git_origin_topic_x');
  t.equal(variantNameForSource({ kind: 'path', path: '/home/me/src/Linux-Next' }), 'path_linux-next');
  const long = sanitizeVariantName(`git_${'x'.repeat(80)}`);
  t.ok(long.length <= 24 && /_[0-9a-f]{8}$/.test(long), 'long names are cut (cell ids end up in socket paths) and keep a hash');
  t.not(sanitizeVariantName(`git_${'x'.repeat(80)}a`), long, 'different long names stay different');
  for (const name of ['debian_7.2', long, sanitizeVariantName('__Weird Name!!')]) t.match(name, /^[a-z0-9][a-z0-9._-]*$/);
});

t.test('a source on one side: one cell, the other side stock, the kernel resolvable', async (t) => {
  const scenario = await fixture('base-ok.yaml');
  const adhoc = adHocScenario(scenario, { ep: 'debian:7.2' });
  t.same(
    expandMatrix(adhoc).map((c) => c.id),
    ['ep-debian_7.2__host-stock'],
  );
  t.same(resolveKernel(adhoc, 'debian_7.2'), { name: 'debian_7.2', source: { kind: 'debian', version: '7.2' }, patches: [], fragments: [] });
  t.same(Object.keys(scenario.kernels), [], 'the loaded scenario is left alone');
  t.match(formatMatrix(adhoc), /ep-debian_7\.2__host-stock\s+debian:7\.2 \| debian:6\.12/);

  const both = adHocScenario(scenario, { ep: 'git:/src/linux@v7.2', host: 'path:/src/linux' });
  const [row] = cellKernels(both);
  t.equal(row!.cell.id, 'ep-git_v7.2__host-path_linux');
  t.same(row!.ep.source, { kind: 'git', url: '/src/linux', ref: 'v7.2' });
  t.same(row!.host.source, { kind: 'path', path: '/src/linux' });
});

t.test('variant names pass through; unknown ones are input errors', async (t) => {
  const scenario = await fixture('base-ok.yaml');
  t.same(
    expandMatrix(adHocScenario(scenario, { host: 'new' })).map((c) => c.id),
    ['ep-stock__host-new'],
  );
  t.same(
    expandMatrix(adHocScenario(scenario, { ep: 'old', host: 'stock-6.1' })).map((c) => c.id),
    ['ep-old__host-stock-6.1'],
  );
  t.throws(() => adHocScenario(scenario, { ep: 'nope' }), { code: 'BAD_VARIANT', kind: 'input' });
  t.throws(() => adHocScenario(scenario, { ep: 'ftp:x' }), { code: 'BAD_VARIANT', kind: 'input' });
  t.throws(() => adHocScenario(scenario, { ep: 'git:no-ref' }), { code: 'BAD_KERNEL_SOURCE', kind: 'input' });
});

t.test('a generated name never shadows a different variant', async (t) => {
  const scenario = await fixture('base-ok.yaml');
  const mine = { ...scenario, kernels: { 'debian_7.2': { source: 'debian:7.2', patches: ['new'], fragments: [] } } } as typeof scenario;
  const adhoc = adHocScenario(mine, { ep: 'debian:7.2', host: 'debian_7.2' });
  const [row] = cellKernels(adhoc);
  t.match(row!.cell.ep, /^debian_7\.2_[0-9a-f]{8}$/, 'the source got its own name');
  t.same(row!.ep.patches, [], 'the ad-hoc kernel is the bare source');
  t.same(row!.host.patches, ['new'], "the scenario's own variant is untouched");
  const twoRepos = cellKernels(adHocScenario(scenario, { ep: 'git:/src/a@v1', host: 'git:/src/b@v1' }))[0]!;
  t.equal(twoRepos.cell.ep, 'git_v1');
  t.match(twoRepos.cell.host, /^git_v1_[0-9a-f]{8}$/, 'the same ref of another repository gets its own name');
  t.same(twoRepos.host.source, { kind: 'git', url: '/src/b', ref: 'v1' });
  const same = adHocScenario({ ...scenario, kernels: { 'debian_7.2': { source: 'debian:7.2', patches: [], fragments: [] } } } as typeof scenario, { ep: 'debian:7.2' });
  t.equal(expandMatrix(same)[0]!.ep, 'debian_7.2', 'an identical declaration is reused');
});
