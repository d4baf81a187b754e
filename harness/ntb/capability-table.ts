/**
 * Kernel capabilities the harness probes in each guest, as data. Expectations are keyed by these names
 * (never by version strings: Debian's 6.12 already carries half of the series). A scenario may add or
 * override entries under `capabilities:` with the same probe shapes, e.g. from kernel-patches/README.md.
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
  | { all: string[] };

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
      doc: 'vntb raises peer doorbells from a workqueue (no pci_epc_raise_irq() in atomic context; every set bit raised)',
    },
    vntb_db_vector_ops: {
      probe: { kallsyms: ['vntb_epf_db_vector_count', 'vntb_epf_db_vector_mask'] },
      doc: 'vntb implements db_vector_count/db_vector_mask',
    },
    vntb_reserved_slot_warning: {
      // kernel-patches/README.md: only the series' vntb has this string.
      probe: { module_string: { module: 'pci-epf-vntb', strings: ['Unexpected reserved doorbell slot write ignored'] } },
      doc: 'vntb ignores the reserved slot 1 (its warning text is in the module)',
    },
    vntb_zero_based_vectors: {
      // No symbol belongs to this patch alone; the series applies it before db_vector_count/mask.
      probe: { any: ['vntb_reserved_slot_warning', 'vntb_db_vector_ops'] },
      doc: 'vntb reports 0-based doorbell vectors and bits, and excludes link/reserved slots from db_valid_mask',
    },
  },
  host: {
    epf_reserved_slot_warning: {
      probe: { module_string: { module: 'ntb_hw_epf', strings: ['Unexpected reserved doorbell slot IRQ received', 'Unexpected doorbell vector'] } },
      doc: 'ntb_hw_epf knows the reserved slot (its warning text is in the module)',
    },
    epf_db_vector_ops: {
      probe: { kallsyms: ['ntb_epf_db_vector_count', 'ntb_epf_db_vector_mask'] },
      doc: 'ntb_hw_epf implements db_vector_count/db_vector_mask',
    },
    epf_zero_based_vectors: {
      probe: { any: ['epf_reserved_slot_warning', 'epf_db_vector_ops'] },
      doc: 'ntb_hw_epf reports 0-based vectors and a db_valid_mask of real doorbells only',
    },
    epf_irq_ctx: {
      // Debian's backport has it together with the reserved-slot handling (kernel-patches/README.md).
      probe: { any: ['epf_reserved_slot_warning', 'epf_db_vector_ops'] },
      doc: "ntb_hw_epf's interrupt handler uses its per-vector context (no pci_irq_vector() in hard-irq context)",
    },
    epf_bitmask_db: {
      // The Debian backport carries the bitmask db_val together with the 0-based vectors.
      probe: { any: ['epf_zero_based_vectors'] },
      doc: 'ntb_hw_epf keeps db as an accumulating bitmask and db_clear clears only the given bits',
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
