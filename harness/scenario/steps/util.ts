/** Helpers shared by the step implementations. */
import { HarnessError } from '../../errors.ts';
import { evalExpr } from '../expr-eval.ts';
import type { Rig } from '../rig.ts';
import type { Measurement, Side, Value } from '../../results/model.ts';

/** Collects a step's measurements as it goes, so a step that throws half-way keeps what it saw. */
export class Out {
  constructor(readonly list: Measurement[]) {}

  add(check: string, value: Value, extra: Omit<Measurement, 'check' | 'value'> = {}): void {
    this.list.push({ check, value, ...extra });
  }

  unavailable(check: string, reason: string, extra: Omit<Measurement, 'check' | 'value' | 'unavailable'> = {}): void {
    this.list.push({ check, value: null, unavailable: reason, ...extra });
  }
}

/** Evaluates a scenario expression that must give a non-negative integer (a bit mask). */
export function evalMask(rig: Rig, text: string, extra: Record<string, number> = {}): number {
  const value = evalExpr(text, { ...rig.params, ...extra });
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new HarnessError(`expression "${text}" gave ${JSON.stringify(value)}, not a bit mask`, { code: 'SCENARIO_EXPR', kind: 'input', phase: 'step' });
  }
  return value;
}

export function setBits(mask: number): number[] {
  const out: number[] = [];
  for (let i = 0, m = BigInt(mask); m > 0n; i++, m >>= 1n) if (m & 1n) out.push(i);
  return out;
}

export function bit(i: number): number {
  return Number(1n << BigInt(i));
}

/** B without C, on values wider than 32 bits. */
export function andNot(b: number, c: number): number {
  return Number(BigInt(b) & ~BigInt(c));
}

export function other(side: Side): Side {
  return side === 'ep' ? 'host' : 'ep';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
