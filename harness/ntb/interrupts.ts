/**
 * /proc/interrupts on the host: per-IRQ totals for a driver's lines ("ntb_epf", "pci-endpoint-test.0"),
 * mapped to MSI vector indices through /sys/bus/pci/devices/$BDF/msi_irqs/ (sorted IRQ = vector index).
 */
import type { GuestExec } from '../guest/types.ts';
import { run } from './shell.ts';

export interface IrqLine {
  irq: number;
  /** Sum over CPUs. */
  total: number;
  /** Everything after the counts: chip, hwirq, trigger. */
  chip: string;
  actions: string[];
}

/**
 *            CPU0       CPU1
 *  24:          3          0  IR-PCI-MSI-0000:01:00.0    0-edge      ntb_epf
 *  25:          1          0  ITS-PCI-MSI 524288 Edge      pci-endpoint-test.0, other
 */
export function parseInterrupts(text: string): Map<number, IrqLine> {
  const lines = text.split('\n');
  const cpus = (lines[0] ?? '').split(/\s+/).filter((t) => /^CPU\d+$/.test(t)).length || 1;
  const out = new Map<number, IrqLine>();
  for (const line of lines.slice(1)) {
    const head = /^\s*(\d+):(.*)$/.exec(line);
    if (!head) continue;
    let rest = head[2]!;
    let total = 0;
    for (let cpu = 0; cpu < cpus; cpu++) {
      const count = /^\s*(\d+)/.exec(rest);
      if (!count) break;
      total += Number(count[1]);
      rest = rest.slice(count[0].length);
    }
    // show_interrupts(): chip, hwirq, [Edge|Level], [-handler name], then "  action[, action]".
    const trigger = /^(.*?\s(?:\d+-[a-z]+|(?:\d+\s+)?(?:Edge|Level)(?:-[a-z]+)?))\s+(\S.*)$/.exec(rest);
    const chip = (trigger ? trigger[1]! : rest).trim();
    const actions = trigger ? trigger[2]!.split(',').map((a) => a.trim()).filter(Boolean) : [];
    out.set(Number(head[1]), { irq: Number(head[1]), total, chip, actions });
  }
  return out;
}

export async function readInterrupts(host: GuestExec): Promise<Map<number, IrqLine>> {
  return parseInterrupts(await run(host, 'cat /proc/interrupts'));
}

/** Per-vector count increases between two snapshots, for the IRQs of one function (index = vector). */
export function vectorDeltas(before: Map<number, IrqLine>, after: Map<number, IrqLine>, msiIrqs: number[]): Map<number, number> {
  const deltas = new Map<number, number>();
  msiIrqs.forEach((irq, vector) => {
    const delta = (after.get(irq)?.total ?? 0) - (before.get(irq)?.total ?? 0);
    if (delta !== 0) deltas.set(vector, delta);
  });
  return deltas;
}

/** Expands {vector → count} into a sorted list with repeats: {2: 1, 5: 2} → [2, 5, 5]. */
export function expandCounts(counts: Map<number, number>): number[] {
  return [...counts.entries()].sort(([a], [b]) => a - b).flatMap(([vector, count]) => Array<number>(Math.max(0, count)).fill(vector));
}

/** The form checks compare: none when nothing fired, the number when exactly one, else the sorted list. */
export function singleOrList(list: number[]): number | number[] | null {
  if (list.length === 0) return null;
  return list.length === 1 ? list[0]! : [...list].sort((a, b) => a - b);
}
