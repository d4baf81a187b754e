/**
 * Fault injection on the wire: the relay drops, delays or duplicates the next N MSIs the EP raises on
 * one host vector. Steps arm a rule; the relay consults it for every RAISE_IRQ and records each fault
 * it applies (FAULT events in wire.ndjson), so the trace says exactly what the receiver should have seen.
 */
export type MsiFaultAction = 'drop' | 'delay' | 'duplicate';

export interface MsiFault {
  /** Host vector index (MSI number − 1), as the trace's `vector`. */
  vector: number;
  action: MsiFaultAction;
  /** How many of the next raises on this vector it applies to. */
  count: number;
  /** For `delay`: milliseconds the raise is held; for `duplicate`: the gap before the copy (default 0). */
  delayMs?: number;
}

export class FaultPlan {
  private rules: (MsiFault & { left: number })[] = [];
  private timers = new Set<NodeJS.Timeout>();
  /** Faults applied so far, per action. */
  readonly applied: Record<MsiFaultAction, number> = { drop: 0, delay: 0, duplicate: 0 };

  arm(fault: MsiFault): void {
    this.rules.push({ ...fault, left: fault.count });
  }

  /** Raises still to be faulted, over every armed rule. */
  pending(): number {
    return this.rules.reduce((sum, rule) => sum + rule.left, 0);
  }

  /** Drops every rule not yet used up (a step that ends early must not leave faults for the next). */
  disarm(): void {
    this.rules = [];
  }

  /** The fault for one raise on `vector`, consuming it; undefined: forward as usual. */
  take(vector: number): { action: MsiFaultAction; delayMs: number } | undefined {
    const rule = this.rules.find((r) => r.vector === vector && r.left > 0);
    if (!rule) return undefined;
    rule.left--;
    this.rules = this.rules.filter((r) => r.left > 0);
    this.applied[rule.action]++;
    return { action: rule.action, delayMs: rule.delayMs ?? 0 };
  }

  /** Runs `task` later, cancelled by cancelAll() (the relay closing). */
  later(ms: number, task: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      task();
    }, ms);
    this.timers.add(timer);
  }

  cancelAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.rules = [];
  }
}
