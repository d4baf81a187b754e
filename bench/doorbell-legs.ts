/** bench/doorbell.ts's arithmetic on a wire trace (relay clock), kept apart so it can be unit-tested. */
export interface Wire {
  t: number;
  from: string;
  type: string;
  [key: string]: unknown;
}

export interface ModeFigures {
  mode: 'interrupt' | 'polling';
  status: string;
  pings: number | null;
  doorbells: number;
  roundTripsMs: number[];
  hostToEpMs: number[];
  epToHostMs: number[];
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : NaN;
}

/** Round trips and legs from one cell's wire trace. */
export function legs(wire: Wire[]): Pick<ModeFigures, 'roundTripsMs' | 'hostToEpMs' | 'epToHostMs' | 'doorbells'> {
  const raises = wire.filter((e) => e.from === 'ep' && e.type === 'RAISE_IRQ').map((e) => e.t);
  const doorbells = wire.filter((e) => e.from === 'rc' && e.type === 'DOORBELL').map((e) => e.t);
  const roundTripsMs = raises.slice(1).map((t, i) => t - raises[i]!);
  const hostToEpMs: number[] = [];
  const epToHostMs: number[] = [];
  for (const db of doorbells) {
    const next = raises.find((t) => t > db);
    if (next !== undefined) hostToEpMs.push(next - db);
    const before = raises.filter((t) => t < db).pop();
    if (before !== undefined) epToHostMs.push(db - before);
  }
  return { roundTripsMs, hostToEpMs, epToHostMs, doorbells: doorbells.length };
}

