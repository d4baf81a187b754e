import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKS } from '../../harness/scenario/checks.ts';
import { evaluateInterop } from '../../harness/scenario/interop.ts';
import { loadScenario, parseScenario } from '../../harness/scenario/load.ts';
import { STEP_TYPES } from '../../harness/scenario/schema-steps.ts';
import { stepsTable } from '../../harness/scenario/steps-doc.ts';
import { SETUP, STEP_ENTRIES, stepEntry, stepImpl } from '../../harness/scenario/steps/index.ts';
import type { CellResult } from '../../harness/results/model.ts';

const shipped = join(import.meta.dirname, '../../scenarios');

t.test("scenarios/README.md's step table is the one the registry generates (npm run docs:steps)", async (t) => {
  const readme = readFileSync(join(shipped, 'README.md'), 'utf8');
  const start = readme.indexOf('| step | checks (default spec) |');
  t.ok(start > 0, 'the README has the table');
  const end = readme.indexOf('\n\n', start);
  t.equal(`${readme.slice(start, end)}\n`, stepsTable(), 'regenerate it with `npm run -s docs:steps`');
});

t.test('every shipped scenario parses to the steps it parsed to before the registry', async (t) => {
  const before = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/registry/parsed-steps.json'), 'utf8')) as Record<string, unknown>;
  // Scenarios written after the registry have no "before" to match.
  for (const file of readdirSync(shipped).filter((f) => f.endsWith('.yaml') && Object.hasOwn(before, f))) {
    const scenario = await loadScenario(join(shipped, file));
    t.same(JSON.parse(JSON.stringify(scenario.steps)), before[file], file);
  }
});

t.test('the registry: unique types, a function each, checks in the catalogue', async (t) => {
  t.equal(new Set(STEP_TYPES).size, STEP_ENTRIES.length);
  for (const entry of STEP_ENTRIES) {
    t.ok(entry.appliesTo.length > 0, `${entry.type} applies to some function`);
    t.equal(CHECKS[entry.type], entry.checks, `${entry.type}: the catalogue is the entry's`);
    t.equal(stepEntry(entry.type), entry);
  }
  t.equal(CHECKS.setup, SETUP.checks);
  t.same(
    STEP_ENTRIES.filter((e) => 'interop' in e).map((e) => e.type),
    ['doorbell-sweep'],
    'only single-bit sweeps take part in the interop evaluation',
  );
});

const vntb = (steps: string) =>
  ['name: t', 'matrix: {ep: [stock], host: [stock]}', 'function: {type: pci-epf-vntb, vendorid: 0x1957, deviceid: 0x0809}', 'steps:', steps].join('\n');

t.test('appliesTo is enforced: a pcitest step in a vntb scenario is refused', async (t) => {
  t.throws(() => parseScenario(vntb('  - type: pcitest-bar'), 'x.yaml'), /does not apply to function pci-epf-vntb/);
  t.ok(parseScenario(vntb('  - type: link-cycle'), 'x.yaml'), 'link-cycle applies to both');
});

t.test("perf's own timeout is ntb_perf's hang limit, not the step budget; other steps' timeout is", async (t) => {
  t.equal(stepImpl({ id: 'p', type: 'perf', timeout: 100 }).budgetSeconds, 320);
  t.equal(stepImpl({ id: 's', type: 'spad', timeout: 100 }).budgetSeconds, 100);
  t.equal(stepImpl({ id: 's', type: 'spad' }).budgetSeconds, 300);
});

t.test('interop reads the bit from params, not from the label', async (t) => {
  const cell = (ep: string, db: number, i: number): CellResult => ({
    id: `ep-${ep}__host-new`,
    ep,
    host: 'new',
    status: 'PASS',
    durationMs: 1,
    capabilities: {},
    params: {},
    steps: [
      {
        id: 'sweep',
        type: 'doorbell-sweep',
        status: 'PASS',
        durationMs: 1,
        values: {},
        splats: [],
        checks: [{ id: 'db[ep-to-host bit 3]', check: 'db', status: 'PASS', value: db, params: { i } }],
      },
    ],
  });
  const same = evaluateInterop(['sweep'], [cell('old', 8, 3), cell('new', 4, 3)]);
  t.equal(same.status, 'FAIL', 'the same bit seen differently');
  t.match(same.groups[0]!.message, /bit 3 db: ep old → 8, ep new → 4/);
  // Same label, different params: two different bits, each observed by one sender only.
  t.equal(evaluateInterop(['sweep'], [cell('old', 8, 3), cell('new', 4, 5)]).status, 'PASS');
});
