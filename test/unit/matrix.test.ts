import t from 'tap';
import { join } from 'node:path';
import { resolveKernel } from '../../harness/scenario/kernels.ts';
import { loadScenario } from '../../harness/scenario/load.ts';
import { cellId, expandMatrix, formatMatrix } from '../../harness/scenario/matrix.ts';

const matrix = (m: { ep: string[]; host: string[]; include?: { ep: string; host: string }[]; exclude?: { ep?: string; host?: string }[] }) => ({
  matrix: { include: [], exclude: [], ...m },
});

t.test('ep × host product, ep-major, stable ids', async (t) => {
  const cells = expandMatrix(matrix({ ep: ['old', 'stock', 'new'], host: ['old', 'stock', 'new'] }));
  t.equal(cells.length, 9);
  t.same(cells.slice(0, 4).map((c) => c.id), ['ep-old__host-old', 'ep-old__host-stock', 'ep-old__host-new', 'ep-stock__host-old']);
  t.same(
    cells.map((c) => c.index),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  t.equal(cellId('a', 'b'), 'ep-a__host-b');
});

t.test('exclude matches on the axes it names; include adds cells, once', async (t) => {
  const cells = expandMatrix(
    matrix({
      ep: ['old', 'new'],
      host: ['old', 'new'],
      exclude: [{ host: 'old' }, { ep: 'new', host: 'new' }],
      include: [
        { ep: 'mine', host: 'new' },
        { ep: 'old', host: 'new' },
        { ep: 'new', host: 'old' },
      ],
    }),
  );
  t.same(
    cells.map((c) => c.id),
    ['ep-old__host-new', 'ep-mine__host-new', 'ep-new__host-old'],
  );
});

t.test('variants resolve to KernelSpecs: scenario definitions win over built-ins', async (t) => {
  const scenario = { kernels: { new: { source: { git: '/src/linux', ref: 'v7.2-rc1' }, patches: [], fragments: ['x.config'] } } };
  t.same(resolveKernel(scenario, 'new'), { name: 'new', source: { kind: 'git', url: '/src/linux', ref: 'v7.2-rc1' }, patches: [], fragments: ['x.config'] });
  t.same(resolveKernel(scenario, 'old'), { name: 'old', source: { kind: 'debian', version: '6.12' }, patches: ['old'], fragments: [] });
  t.throws(() => resolveKernel(scenario, 'nope'), { code: 'SCENARIO_INVALID' });
});

t.test('formatMatrix lists every cell with both kernels', async (t) => {
  const s = await loadScenario(join(import.meta.dirname, '../../scenarios/doorbell-interop.yaml'));
  const text = formatMatrix(s);
  t.match(text, /^doorbell-interop: 9 cells/);
  t.match(text, /ep-old__host-new\s+debian:6\.12 \+old \| debian:6\.12 \+new/);
  t.equal(text.split('\n').length, 11);
});

t.test('a matrix whose excludes leave no cell is refused at load, pointing at exclude', async (t) => {
  t.same(expandMatrix(matrix({ ep: ['old'], host: ['new'], exclude: [{ ep: 'old' }] })), [], 'the expansion itself is empty');
  t.same(expandMatrix(matrix({ ep: ['old'], host: ['new'], exclude: [{ ep: 'old' }], include: [{ ep: 'old', host: 'new' }] })).length, 1, 'an include keeps the matrix non-empty');
  await t.rejects(loadScenario(join(import.meta.dirname, '../fixtures/scenarios/all-excluded.yaml')), {
    code: 'SCENARIO_INVALID',
    excerpt: /all-excluded\.yaml:5:3: the excludes remove all 2 cells/,
  });
});
