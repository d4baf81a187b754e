/**
 * Kernel capabilities the harness probes in each guest, as data. Expectations are keyed by these names
 * (never by version strings: Debian's 6.1 and 6.12 already carry the series' host half, 7.1.8 a part of
 * the EP half). Every probe keys on what the RELEASED modules contain — a function referenced from an
 * ops table, a work item or an IRQ request (the compiler cannot inline those away), or a format string —
 * or, where nothing in the module separates releases, on an observation made in the cell. Which
 * release has which capability, with the source evidence: docs/doorbells.md. A scenario may add or
 * override entries under `capabilities:` with the same probe shapes.
 */
export type Probe =
  /** Every symbol is in /proc/kallsyms (module symbols appear once the module is loaded). */
  | { kallsyms: string[] }
  /** Any of the strings occurs in the module's .ko file (compressed or not). */
  | { module_string: { module: string; strings: string[] } }
  /** CONFIG_X=y in /proc/config.gz; without IKCONFIG, the fallback symbol's presence in kallsyms decides. */
  | { config: string; symbol?: string }
  /** Any of the paths exists. */
  | { path: string[] }
  /** Derived: true if any named capability of the same side is true. */
  | { any: string[] }
  /** Derived: true if every named capability of the same side is true. */
  | { all: string[] }
  /**
   * Observed in the cell: `value` is read on this side once ntb_tool is loaded (after setup); the
   * capability is true if it equals `when_true`, false if it equals `when_false`, undecided otherwise.
   * The expressions see N (Ne on the EP, Nh on the host), Ne and Nh.
   */
  | { observed: { value: ObservedValue; when_true: string; when_false: string } };

/** Values the harness can observe for capabilities (read through ntb_tool on the probed side). */
export const OBSERVED_VALUES = ['db_valid_mask'] as const;
export type ObservedValue = (typeof OBSERVED_VALUES)[number];

export type ProbeSide = 'ep' | 'host';

export interface CapabilityDef {
  probe: Probe;
  doc: string;
}

/** Probes both sides share; the executor instantiates them as `ep.<name>` and `host.<name>`. */
const COMMON: Record<string, CapabilityDef> = {
  debug_atomic_sleep: {
    probe: { config: 'CONFIG_DEBUG_ATOMIC_SLEEP', symbol: '__might_sleep' },
    doc: 'sleeping in atomic context is reported ("BUG: sleeping function called from invalid context")',
  },
  dyndbg: { probe: { path: ['/sys/kernel/debug/dynamic_debug/control', '/proc/dynamic_debug/control'] }, doc: 'dynamic debug is available' },
  kprobe_events: { probe: { path: ['/sys/kernel/tracing/kprobe_events', '/sys/kernel/debug/tracing/kprobe_events'] }, doc: 'kprobe events can be defined' },
  ntb_tool_decimal_mw_trans: {
    // The released module's sscanf format for peer_mw_trans; 6.12 has "%lli:%zi" (docs/ntb-tool.md).
    probe: { module_string: { module: 'ntb_tool', strings: ['%llu:%zu'] } },
    doc: 'ntb_tool parses peer_mw_trans with "%llu:%zu": decimal only, its documented 0xADDR form is refused. 7.1.8, 7.2, 7.3; not 6.1/6.12',
  },
};

const SIDES: Record<ProbeSide, Record<string, CapabilityDef>> = {
  ep: {
    vntb_deferred_raise: {
      probe: { kallsyms: ['vntb_epf_peer_db_work'] },
      doc: 'vntb raises peer doorbells from a work item, one MSI per set bit (no pci_epc_raise_irq() in the caller\'s context). 7.1.8, 7.2, 7.3; not 6.1/6.12',
    },
    vntb_peer_db_masks: {
      // Released code: the deferring peer_db_set is the one that ANDs with db_valid_mask.
      probe: { any: ['vntb_deferred_raise'] },
      doc: 'vntb peer_db_set drops bits outside db_valid_mask silently (0 left: returns 0, raises nothing). 7.1.8, 7.2, 7.3; 6.1/6.12 raise the lowest bit unchecked, MSI 2 for 0',
    },
    vntb_db_vector_ops: {
      probe: { kallsyms: ['vntb_epf_db_vector_count', 'vntb_epf_db_vector_mask'] },
      doc: 'vntb implements db_vector_count/db_vector_mask. 7.2, 7.3; not 6.1/6.12/7.1.8',
    },
    vntb_valid_mask_excludes_reserved: {
      probe: { observed: { value: 'db_valid_mask', when_true: 'mask(N - 2)', when_false: 'mask(N)' } },
      doc: "vntb's db_valid_mask leaves out the link and reserved slots (observed: mask(Ne-2) vs mask(Ne)). 7.1.8, 7.2, 7.3; not 6.1/6.12",
    },
    vntb_zero_based_vectors: {
      // No symbol or string belongs to the 0-based report; every release has it with the narrower mask.
      probe: { any: ['vntb_db_vector_ops', 'vntb_valid_mask_excludes_reserved'] },
      doc: 'vntb reports host doorbell bit b (slot b+2) as db bit b and vector b. 7.1.8, 7.2, 7.3; 6.1/6.12 report bit b+1, vector b+2',
    },
    vntb_reserved_slot_ignored: {
      // The loop that reports 0-based bits starts at slot 2: slot 1 is never read.
      probe: { any: ['vntb_zero_based_vectors'] },
      doc: 'vntb never looks at the reserved slot 1 (a host `s 0` is not seen, no message). 7.1.8, 7.2, 7.3; 6.1/6.12 report it as bit 0, vector 1',
    },
    vntb_db_count_checked: {
      probe: { module_string: { module: 'pci-epf-vntb', strings: ['DB count %d out of range (%d - %d)'] } },
      doc: 'vntb refuses db_count outside 3..32 (configfs -EINVAL and at bind). 7.2, 7.3; 6.1/6.12/7.1.8 accept any write and fail only 0 or >32 at bind',
    },
    vntb_embedded_doorbell: {
      probe: { kallsyms: ['epf_ntb_doorbell_handler'] },
      doc: 'vntb can take host doorbells as EP-side IRQs (MSI/embedded doorbell) instead of polling. Code in 7.1.8+, present only with CONFIG_PCI_ENDPOINT_MSI_DOORBELL (not in our kernels)',
    },
  },
  host: {
    epf_reserved_slot_warning: {
      probe: { module_string: { module: 'ntb_hw_epf', strings: ['Unexpected reserved doorbell slot IRQ received'] } },
      doc: 'ntb_hw_epf raises no event for vector 1 (the reserved slot) and warns. 6.1.192, 6.12.117, 7.1.8, 7.2, 7.3',
    },
    epf_zero_based_vectors: {
      // Printed by the branch that turns vector v into doorbell v-2.
      probe: { module_string: { module: 'ntb_hw_epf', strings: ['Unexpected doorbell vector'] } },
      doc: 'ntb_hw_epf reports vector index v as doorbell v-2 and a db_valid_mask of mask(Nh-2). 6.1.192, 6.12.117, 7.1.8, 7.2, 7.3',
    },
    epf_db_vector_ops: {
      probe: { kallsyms: ['ntb_epf_db_vector_count', 'ntb_epf_db_vector_mask'] },
      doc: 'ntb_hw_epf implements db_vector_count/db_vector_mask. 7.2, 7.3; not 6.1/6.12/7.1.8',
    },
    epf_irq_ctx: {
      // The reserved-slot branch reads the vector from the per-vector context, so it implies it.
      probe: { any: ['epf_reserved_slot_warning', 'epf_db_vector_ops'] },
      doc: "ntb_hw_epf's interrupt handler uses its per-vector context (no pci_irq_vector() in hard-irq context). All releases here",
    },
    epf_bitmask_db: {
      // The same handler branch ORs BIT(v-2) into db_val.
      probe: { any: ['epf_zero_based_vectors'] },
      doc: 'ntb_hw_epf keeps db as an accumulating bitmask and db_clear clears only the given bits. All releases here',
    },
  },
};

export function capabilityTable(extra: Record<string, Probe> = {}): Map<string, CapabilityDef & { side: ProbeSide; name: string }> {
  const table = new Map<string, CapabilityDef & { side: ProbeSide; name: string }>();
  for (const side of ['ep', 'host'] as const) {
    for (const [name, def] of Object.entries({ ...COMMON, ...SIDES[side] })) table.set(`${side}.${name}`, { ...def, side, name });
  }
  for (const [key, probe] of Object.entries(extra)) {
    const [side, name] = key.split('.') as [ProbeSide, string];
    table.set(key, { probe, doc: table.get(key)?.doc ?? 'declared by the scenario', side, name });
  }
  return table;
}

/** `ep.<name>` / `host.<name>` of every built-in capability. */
export const BUILTIN_CAPABILITIES: readonly string[] = [...capabilityTable().keys()];
