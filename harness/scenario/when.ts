/** Matching a scenario condition (`when:` / `requires:`) against a cell's probed capabilities. */
import type { Condition } from './schema-parts.ts';
import type { Side } from '../results/model.ts';

/** `ep.<name>` / `host.<name>` → probed value; a missing key means the probe could not decide. */
export type Capabilities = Readonly<Record<string, boolean>>;

export type Match = { match: boolean } | { unknown: string };

/**
 * All listed conditions must hold. A definite mismatch wins over an undecidable capability, so an
 * entry about the other side never turns into an error.
 */
export function matchCondition(condition: Condition | undefined, caps: Capabilities, on?: Side): Match {
  if (!condition) return { match: true };
  if (condition.on !== undefined && condition.on !== on) return { match: false };
  let unknown: string | undefined;
  for (const side of ['ep', 'host'] as const) {
    for (const [name, wanted] of Object.entries(condition[side] ?? {})) {
      const key = `${side}.${name}`;
      const value = caps[key];
      if (value === undefined) unknown ??= `capability ${key} could not be probed`;
      else if (value !== wanted) return { match: false };
    }
  }
  return unknown ? { unknown } : { match: true };
}
