/**
 * The capability decisions (decideCapabilities) against the symbols and strings of the RELEASED
 * doorbell modules (test/fixtures/captured/releases/, compiled from each release's own source), plus the
 * db_valid_mask each release shows in a cell: every release must classify as docs/doorbells.md says.
 */
import t from 'tap';
import { join } from 'node:path';
import type { GuestExec } from '../../harness/guest/types.ts';
import { TOOL_ROOT } from '../../harness/ntb/ntb-tool.ts';
import { capabilityTable, type ProbeSide } from '../../harness/ntb/capability-table.ts';
import { decideCapabilities } from '../../harness/ntb/capabilities.ts';
import { hasFixture, readFixture, factsFor as fixtureFacts } from '../fixtures/captured/releases/facts.ts';

const Ne = 16;
const Nh = 16;
const mask = (n: number) => 2 ** n - 1;
const factsFor = (side: ProbeSide, _module: string, mod: ReturnType<typeof readFixture>, dbValidMask?: number) => fixtureFacts(side, mod, { Ne, Nh }, dbValidMask);

// docs/doorbells.md, "How the harness decides": the EP capabilities per release, with the EP's
// db_valid_mask as the cell shows it (E3), and the host's.
const EP: Record<string, { mask: number; caps: Record<string, boolean> }> = {
  '6.1.192': {
    mask: mask(Ne),
    caps: { vntb_deferred_raise: false, vntb_peer_db_masks: false, vntb_db_vector_ops: false, vntb_valid_mask_excludes_reserved: false, vntb_zero_based_vectors: false, vntb_reserved_slot_ignored: false, vntb_db_count_checked: false, vntb_embedded_doorbell: false },
  },
  '6.12.117': {
    mask: mask(Ne),
    caps: { vntb_deferred_raise: false, vntb_peer_db_masks: false, vntb_db_vector_ops: false, vntb_valid_mask_excludes_reserved: false, vntb_zero_based_vectors: false, vntb_reserved_slot_ignored: false, vntb_db_count_checked: false, vntb_embedded_doorbell: false },
  },
  '7.1.8': {
    mask: mask(Ne - 2),
    caps: { vntb_deferred_raise: true, vntb_peer_db_masks: true, vntb_db_vector_ops: false, vntb_valid_mask_excludes_reserved: true, vntb_zero_based_vectors: true, vntb_reserved_slot_ignored: true, vntb_db_count_checked: false, vntb_embedded_doorbell: false },
  },
  '7.2.13': {
    mask: mask(Ne - 2),
    caps: { vntb_deferred_raise: true, vntb_peer_db_masks: true, vntb_db_vector_ops: true, vntb_valid_mask_excludes_reserved: true, vntb_zero_based_vectors: true, vntb_reserved_slot_ignored: true, vntb_db_count_checked: true, vntb_embedded_doorbell: false },
  },
};

const STOCK_HOST = { epf_reserved_slot_warning: true, epf_zero_based_vectors: true, epf_db_vector_ops: false, epf_irq_ctx: true, epf_bitmask_db: true };
const HOST: Record<string, Record<string, boolean>> = {
  '6.1.192': STOCK_HOST,
  '6.12.117': STOCK_HOST,
  '7.1.8': STOCK_HOST,
  '7.2.13': { ...STOCK_HOST, epf_db_vector_ops: true },
};

const pick = (values: Record<string, boolean>, side: ProbeSide, names: string[]) => Object.fromEntries(names.map((n) => [n, values[`${side}.${n}`]]));

for (const [release, expected] of Object.entries(EP)) {
  t.test(`EP ${release}: vntb classifies as docs/doorbells.md says`, { skip: hasFixture(release, 'pci-epf-vntb') ? false : 'no fixture yet' }, async (t) => {
    const table = capabilityTable();
    const mod = readFixture(release, 'pci-epf-vntb');
    const decided = decideCapabilities(table, 'ep', factsFor('ep', 'pci-epf-vntb', mod, expected.mask));
    t.same(pick(decided.values, 'ep', Object.keys(expected.caps)), expected.caps);

    // Before ntb_tool is up only what the module decides is known; the rest waits for the observation.
    const early = decideCapabilities(table, 'ep', factsFor('ep', 'pci-epf-vntb', mod));
    t.equal(early.values['ep.vntb_deferred_raise'], expected.caps.vntb_deferred_raise);
    if (!expected.caps.vntb_db_vector_ops) t.match(early.unknown['ep.vntb_zero_based_vectors'], /not observed yet/);
    else t.equal(early.values['ep.vntb_zero_based_vectors'], true, 'the vector ops decide it at once');
  });
}

for (const [release, expected] of Object.entries(HOST)) {
  t.test(`host ${release}: ntb_hw_epf classifies as docs/doorbells.md says`, { skip: hasFixture(release, 'ntb_hw_epf') ? false : 'no fixture yet' }, async (t) => {
    const decided = decideCapabilities(capabilityTable(), 'host', factsFor('host', 'ntb_hw_epf', readFixture(release, 'ntb_hw_epf')));
    t.same(pick(decided.values, 'host', Object.keys(expected)), expected);
  });
}

t.test('no probe keys on text only our own patches print', async (t) => {
  // Strings or symbols a probe looks for must occur in at least one released module.
  const released = Object.keys(EP).flatMap((r) =>
    ['pci-epf-vntb', 'ntb_hw_epf'].filter((m) => hasFixture(r, m)).map((m) => readFixture(r, m)),
  );
  const table = capabilityTable();
  for (const [key, def] of table) {
    if ('kallsyms' in def.probe && (key.startsWith('ep.vntb') || key.startsWith('host.epf'))) {
      for (const sym of def.probe.kallsyms) t.ok(released.some((m) => m.symbols.has(sym)) || key === 'ep.vntb_embedded_doorbell', `${key}: ${sym} is in a released module`);
    }
    if ('module_string' in def.probe && ['pci-epf-vntb', 'ntb_hw_epf'].includes(def.probe.module_string.module)) {
      for (const text of def.probe.module_string.strings) t.ok(released.some((m) => m.strings.some((s) => s.includes(text))), `${key}: "${text}" is in a released module`);
    }
  }
});

t.test('an observed mask that is neither value leaves the capability undecided', async (t) => {
  const mod = readFixture('7.1.8', 'pci-epf-vntb');
  const decided = decideCapabilities(capabilityTable(), 'ep', factsFor('ep', 'pci-epf-vntb', mod, 0));
  t.equal(decided.values['ep.vntb_valid_mask_excludes_reserved'], undefined);
  t.match(decided.unknown['ep.vntb_valid_mask_excludes_reserved'], /observed db_valid_mask 0x0 is neither mask\(N - 2\) nor mask\(N\)/);
  t.match(decided.unknown['ep.vntb_zero_based_vectors'], /neither/, 'what derives from it is undecided too');
  t.equal(decided.values['ep.vntb_deferred_raise'], true, 'module facts still decide');
});

t.test('our patch sets classify through the same probes: new as 7.2.13, old host as pre-series', async (t) => {
  const table = capabilityTable();
  const decide = (fixture: string, side: ProbeSide, module: string, dbValidMask?: number) =>
    decideCapabilities(table, side, factsFor(side, module, readFixture(fixture, module), dbValidMask)).values;
  t.same(pick(decide('ours-new-6.12', 'ep', 'pci-epf-vntb', mask(Ne - 2)), 'ep', Object.keys(EP['7.2.13']!.caps)), EP['7.2.13']!.caps);
  t.same(pick(decide('ours-new-6.12', 'host', 'ntb_hw_epf'), 'host', Object.keys(HOST['7.2.13']!)), HOST['7.2.13']);
  const old = pick(decide('ours-old-6.12', 'host', 'ntb_hw_epf'), 'host', Object.keys(STOCK_HOST));
  t.same(old, { epf_reserved_slot_warning: false, epf_zero_based_vectors: false, epf_db_vector_ops: false, epf_irq_ctx: false, epf_bitmask_db: false });
  // The aligned new prints what 7.2.13 prints, and none of the messages our earlier patches had.
  const ours = readFixture('ours-new-6.12', 'pci-epf-vntb').strings;
  for (const gone of ['Unexpected reserved doorbell slot write ignored', 'Failed to raise doorbell %u (MSI %u)', 'DB count %u out of range']) {
    t.notOk(ours.some((s) => s.includes(gone)), `new no longer prints "${gone}"`);
  }
});

t.test('the Rig decides observed capabilities when ntb_tool first loads on a side, once', async (t) => {
  const { Rig } = await import('../../harness/scenario/rig.ts');
  const { loadScenario } = await import('../../harness/scenario/load.ts');
  const scenario = await loadScenario(join(import.meta.dirname, '../../scenarios/release-interop.yaml'));
  const reads: string[] = [];
  const guest = (name: string, mask: string): GuestExec => ({
    name,
    async exec(command) {
      const stdout = command.includes(`ls ${TOOL_ROOT}`) ? '0000:00:00.0\n' : command.endsWith("/db_valid_mask'") ? (reads.push(name), `${mask}\n`) : '';
      return { command, stdout, stderr: '', exitCode: 0, durationMs: 1 };
    },
  });
  const events: unknown[] = [];
  const link = { linkId: 0, linkUp: true, mark: () => ({ index: 0 }), msiCounts: () => new Map(), msiDeliveries: () => [], events: () => [] };
  const ctx = { ep: guest('ep', '0xffff'), host: guest('host', '0x3fff'), link, emit: (e: unknown) => events.push(e), consoleMark: () => 0, splatsSince: async () => [], timeoutScale: 1 };
  const rig = new Rig(ctx as never, scenario, 'ep-r6.12__host-r6.12');
  rig.params = { Ne, Nh };
  rig.capFacts = { ep: factsFor('ep', 'pci-epf-vntb', readFixture('6.12.117', 'pci-epf-vntb')), host: factsFor('host', 'ntb_hw_epf', readFixture('6.12.117', 'ntb_hw_epf')) };
  t.equal(rig.caps['ep.vntb_zero_based_vectors'], undefined, 'undecided before ntb_tool');

  await rig.tool('ep');
  t.equal(rig.caps['ep.vntb_valid_mask_excludes_reserved'], false, 'observed mask(Ne): pre-series');
  t.equal(rig.caps['ep.vntb_zero_based_vectors'], false);
  t.equal(rig.caps['ep.vntb_reserved_slot_ignored'], false);
  t.match(events.at(-1), { kind: 'capabilities', guest: 'ep', values: { 'ep.vntb_zero_based_vectors': false } });

  await rig.tool('host');
  t.same(reads, ['ep'], 'the host has no observed capability: nothing read there');
  rig.forgetTools();
  await rig.tool('ep');
  t.same(reads, ['ep'], 'observed once per cell, not again after the tools are reopened');
});
