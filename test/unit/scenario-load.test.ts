import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from '../../harness/errors.ts';
import { loadScenario, parseScenario } from '../../harness/scenario/load.ts';
import { scenarioJsonSchema } from '../../harness/scenario/schema.ts';

const fixtures = join(import.meta.dirname, '../fixtures/scenarios');
const shipped = join(import.meta.dirname, '../../scenarios');

async function problems(file: string): Promise<HarnessError> {
  try {
    await loadScenario(join(fixtures, file));
  } catch (error) {
    if (error instanceof HarnessError) return error;
    throw error;
  }
  throw new Error(`${file} loaded but should not`);
}

/** Each expected problem: the `file:line:col: ` prefix and a piece of the message. */
const cases: Array<[string, Array<[number, number, string]>]> = [
  ['bad-yaml.yaml', [[4, 3, 'YAML BAD_INDENT']]],
  ['unknown-key.yaml', [[10, 5, "unknown key 'directon'"]]],
  ['bad-variant.yaml', [[3, 13, "unknown kernel variant 'bogus'"]]],
  [
    'bad-expression.yaml',
    [
      [12, 19, 'bad expression: expected a value'],
      [14, 12, "unknown parameter 'j'"],
    ],
  ],
  [
    'unknown-capability.yaml',
    [
      [13, 23, 'unknown capability ep.vntb_magic'],
      [16, 3, "expect key 'nosuch.db'"],
      [17, 3, "has no check 'nocheck'"],
    ],
  ],
  [
    'wrong-types.yaml',
    [
      [2, 1, "missing required key 'host'"],
      [6, 13, 'expected number, received string'],
    ],
  ],
  ['bad-function.yaml', [[6, 9, "Expected 'pci-epf-vntb' | 'pci-epf-test'"]]],
  [
    'cross-refs.yaml',
    [
      [6, 13, "unknown kernel variant 'mine'"],
      [11, 11, "duplicate step id 'link-up'"],
      [12, 11, "step type 'pcitest-bar' does not apply"],
      [13, 9, "'setup' is the implicit first step's id"],
      [16, 11, "unknown step 'pingpong'"],
    ],
  ],
  ['alias-bomb.yaml', [[13, 7, 'YAML alias *f expands to 597871 nodes']]],
  ['all-excluded.yaml', [[5, 3, 'the excludes remove all 2 cells of the matrix']]],
  [
    'shadowed-params.yaml',
    [
      [6, 3, "parameter 'Nh' shadows the built-in parameter Nh"],
      [7, 3, "parameter 'i' shadows the built-in parameter i"],
    ],
  ],
  ['bom-error.yaml', [[1, 7, 'scenario names are lower-case']]],
];

for (const [file, expected] of cases) {
  t.test(`${file}: every problem at its line:col`, async (t) => {
    const error = await problems(file);
    t.equal(error.code, 'SCENARIO_INVALID');
    t.equal(error.kind, 'input');
    t.equal(error.phase, 'scenario');
    t.equal(error.exitCode, 3);
    const excerpt = error.excerpt ?? '';
    const heads = excerpt.split('\n').filter((line) => line.includes(`${file}:`));
    t.equal(heads.length, expected.length, `${expected.length} problem(s) reported:\n${excerpt}`);
    expected.forEach(([line, col, text], i) => {
      const head = heads[i] ?? '';
      t.ok(head.includes(`${file}:${line}:${col}: `), `problem ${i + 1} at ${line}:${col}: ${head}`);
      t.ok(head.includes(text), `problem ${i + 1} says "${text}": ${head}`);
    });
  });
}

t.test('the excerpt shows the source line and a caret under the column', async (t) => {
  const error = await problems('unknown-key.yaml');
  const lines = (error.excerpt ?? '').split('\n');
  t.equal(lines[1], '      directon: both');
  t.equal(lines[2], '      ^');
  t.match(error.describe(), /error\[SCENARIO_INVALID\] \(scenario\): invalid scenario .*unknown-key\.yaml: unknown key 'directon'/);
});

t.test('a missing file is bad input, not a crash', async (t) => {
  await t.rejects(loadScenario(join(fixtures, 'nope.yaml')), { code: 'SCENARIO_NOT_FOUND', kind: 'input' });
});

t.test('defaults fill in and step ids default to the type', async (t) => {
  const s = await loadScenario(join(fixtures, 'base-ok.yaml'));
  t.equal(s.topology.ep.arch, 'arm64');
  t.equal(s.topology.host.arch, 'x86_64');
  t.equal(s.topology.timeout_scale, 1);
  t.same(
    s.steps.map((step) => step.id),
    ['link-up', 'sweep'],
  );
  t.equal(s.function.type, 'pci-epf-vntb');
  if (s.function.type === 'pci-epf-vntb') {
    t.equal(s.function.vendorid, 0x1957);
    t.equal(s.function.db_count, 16);
    t.same(s.function.mws, [0x100000]);
  }
  t.equal(s.file, join(fixtures, 'base-ok.yaml'));
});

t.test('a UTF-8 byte order mark is accepted and does not shift columns', async (t) => {
  const s = await loadScenario(join(fixtures, 'bom-ok.yaml'));
  t.equal(s.name, 'tiny');
  const error = await problems('bom-error.yaml');
  t.equal((error.excerpt ?? '').split('\n')[1], '  name: Bom Error', 'the BOM is not echoed in the source line');
});

t.test('an alias bomb is refused quickly, as bad input', async (t) => {
  const started = Date.now();
  const error = await problems('alias-bomb.yaml');
  t.equal(error.exitCode, 3);
  t.ok(Date.now() - started < 2_000, `refused in ${Date.now() - started} ms`);
});

t.test('YAML numbers and booleans are accepted as expressions', async (t) => {
  const s = parseScenario(
    ['name: n', 'matrix: {ep: [stock], host: [stock]}', 'function: {type: pci-epf-vntb}', 'steps: [{type: link-up}]', 'expect:', '  setup.class_code: 0x050000', '  link-up.wire_link: true'].join('\n'),
  );
  t.equal(s.expect['setup.class_code'], '327680');
  t.equal(s.expect['link-up.wire_link'], 'true');
});

t.test('every shipped scenario loads', async (t) => {
  const files = readdirSync(shipped).filter((f) => f.endsWith('.yaml'));
  t.ok(files.length >= 4, 'the four scenarios are shipped');
  for (const file of files) {
    const s = await loadScenario(join(shipped, file));
    t.equal(`${s.name}.yaml`, file, `${file} is named after its file`);
  }
});

t.test('JSON Schema for editors', async (t) => {
  const schema = scenarioJsonSchema();
  t.equal(schema.type, 'object');
  const props = schema.properties as Record<string, unknown>;
  for (const key of ['name', 'matrix', 'function', 'steps', 'expect', 'splats', 'kernels', 'topology']) t.ok(props[key], `describes ${key}`);
  t.same((schema.required as string[]).sort(), ['function', 'matrix', 'name', 'steps']);
  t.equal(schema.additionalProperties, false, 'unknown keys are errors in editors too');
});
