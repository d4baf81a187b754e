/**
 * The implicit first step, registered like the others so its checks and docs come from one place. It
 * has no schema (a scenario cannot list it) and its code stays in setup.ts, only wrapped here.
 */
import type { Rig } from '../rig.ts';
import type { CheckDef, Fn } from './define.ts';
import { setupCell } from './setup.ts';
import type { Out } from './util.ts';

export const SETUP = {
  type: 'setup',
  appliesTo: ['pci-epf-vntb', 'pci-epf-test'] as readonly Fn[],
  checks: {
    configured: { spec: 'true', doc: 'every configfs attribute written, function linked and started on the EP' },
    function_visible: { spec: 'true', doc: 'the host sees a PCI function with the configured vendor/device' },
    class_code: { spec: 'class_code', doc: 'the 24-bit class the host reads (param class_code is the configured one)' },
    driver_bound: { spec: 'true', doc: 'the expected host driver bound to the function' },
    bar_map: {
      spec: 'true',
      doc: "vntb: the host sees the BARs ctrl_bar/db_bar/mw1_bar name (ntb_hw_epf's map for the IDs)",
      note: 'the host sees the BARs `ctrl_bar`/`db_bar`/`mw1_bar` name',
    },
    msi_vectors: { spec: 'value >= 1', doc: 'MSI vectors the host driver got (Nh)' },
  } as Record<string, CheckDef>,
  run: (rig: Rig, out: Out): Promise<void> => setupCell(rig, out),
  budget: 600,
} as const;
