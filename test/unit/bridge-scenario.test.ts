import t from 'tap';
import { parseScenario } from '../../harness/scenario/load.ts';
import { stepApplies } from '../../harness/scenario/steps/define.ts';
import { stepEntry } from '../../harness/scenario/steps/index.ts';

const base = (topology: string, fn: string, steps = '  - type: link-up\n') => `name: b
${topology}
matrix: { ep: [stock], host: [stock] }
function:
  type: ${fn}
steps:
${steps}`;

t.test('topology: bridge is short for {layout: bridge}; pci-epf-ntb takes its defaults', async (t) => {
  const s = parseScenario(base('topology: bridge', 'pci-epf-ntb'));
  t.equal(s.topology.layout, 'bridge');
  t.equal(s.topology.host.arch, 'x86_64');
  t.equal(s.function.type, 'pci-epf-ntb');
  if (s.function.type === 'pci-epf-ntb') {
    t.equal(s.function.vendorid, 0x104c);
    t.equal(s.function.deviceid, 0xb00d);
    t.equal(s.function.db_count, 4);
    t.same(s.function.mws, [0x100000]);
  }
  const long = parseScenario(base('topology: { layout: bridge, epc_params: free_bars=0x3f }', 'pci-epf-ntb'));
  t.equal(long.topology.layout, 'bridge');
  t.equal(long.topology.epc_params, 'free_bars=0x3f');
  t.equal(parseScenario(base('', 'pci-epf-vntb')).topology.layout, 'pair');
});

t.test('pci-epf-ntb and the bridge go together, with the error at the right place', async (t) => {
  t.throws(() => parseScenario(base('', 'pci-epf-ntb'), 'x.yaml'), { code: 'SCENARIO_INVALID', excerpt: /^x\.yaml:5:3: function pci-epf-ntb needs 'topology: bridge'/ });
  t.throws(() => parseScenario(base('topology: bridge', 'pci-epf-vntb'), 'y.yaml'), { code: 'SCENARIO_INVALID', excerpt: /^y\.yaml:2:\d+: topology 'bridge' needs function pci-epf-ntb/ });
  t.throws(() => parseScenario(base('topology: ring', 'pci-epf-ntb'), 'z.yaml'), { code: 'SCENARIO_INVALID', excerpt: /^z\.yaml:2:\d+: .*(pair|bridge)/ });
});

t.test("vntb's NTB steps apply to the bridge; pci-epf-test's do not", async (t) => {
  t.ok(stepApplies(stepEntry('doorbell-sweep')!, 'pci-epf-ntb'));
  t.ok(stepApplies(stepEntry('perf')!, 'pci-epf-ntb'));
  t.notOk(stepApplies(stepEntry('pcitest-msi')!, 'pci-epf-ntb'));
  t.notOk(stepApplies(stepEntry('doorbell-sweep')!, 'pci-epf-test'));
  t.throws(() => parseScenario(base('topology: bridge', 'pci-epf-ntb', '  - type: pcitest-msi\n')), { message: /does not apply to function pci-epf-ntb/ });
});
