/**
 * The one place timeouts are scaled for emulation. A timeout in the code is written as it would be
 * on real hardware (a "base" in ms); the effective value is base × scale, where the scale is the
 * product of the harness's own factor (NTBH_TIMEOUT_SCALE, for a slow or loaded machine) and a
 * scenario's `topology.timeout_scale`.
 */
import { HarnessError } from '../errors.ts';

/** NTBH_TIMEOUT_SCALE, a positive number (default 1); anything else is an input error, not a silent 1. */
export function harnessTimeoutScale(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.NTBH_TIMEOUT_SCALE;
  if (raw === undefined || raw.trim() === '') return 1;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new HarnessError(`NTBH_TIMEOUT_SCALE must be a positive number, not "${raw}"`, { code: 'BAD_TIMEOUT_SCALE', kind: 'input', phase: 'setup' });
  }
  return value;
}

/** The scale a cell runs with: the harness's factor times the scenario topology's. */
export function cellTimeoutScale(harnessScale: number, topologyScale = 1): number {
  return harnessScale * topologyScale;
}

/** A base timeout (ms) scaled for emulation, rounded to whole milliseconds. */
export function scaleMs(baseMs: number, scale: number): number {
  return Math.round(baseMs * scale);
}
