/** What a pair's and a bridge's setup share: timed phases, capability probes on both NTB sides, the class. */
import { probeCapabilities } from '../../ntb/capabilities.ts';
import { probeCapabilitiesFromBuild } from '../../ntb/build-facts.ts';
import { enableDbEventProbe } from '../../ntb/kprobe.ts';
import type { Rig } from '../rig.ts';

/** The 24-bit class the scenario configures; undefined when it leaves the function's default. */
export function classCode(rig: Rig): number | undefined {
  const fn = rig.fn;
  if (fn.baseclass_code === undefined) return undefined;
  return (fn.baseclass_code << 16) | ((fn.subclass_code ?? 0) << 8) | ('progif_code' in fn ? fn.progif_code : 0);
}

export async function probeBoth(rig: Rig): Promise<void> {
  // The two guests are separate machines: probe them at the same time, then record in a fixed order.
  const sides = ['ep', 'host'] as const;
  // Symbols, config and module strings come from the kernel's build when it is at hand (milliseconds on the
  // outer machine instead of seconds of awk and grep in a TCG guest); the guest answers what only it knows.
  const probe = async (side: 'ep' | 'host') => {
    const kernel = rig.ctx.kernels?.[side];
    const fromBuild = kernel ? await probeCapabilitiesFromBuild(kernel, rig.guest(side), side, rig.scenario.capabilities, rig.ms(60_000)) : undefined;
    return fromBuild ?? probeCapabilities(rig.guest(side), side, rig.scenario.capabilities, rig.ms(60_000));
  };
  const results = await Promise.all(sides.map(probe));
  const kprobes = await Promise.all(
    sides.map((side, n) => (results[n]!.values[`${side}.kprobe_events`] ? enableDbEventProbe(rig.guest(side)) : Promise.resolve(undefined))),
  );
  sides.forEach((side, n) => {
    const result = results[n]!;
    const guest = rig.guest(side);
    Object.assign(rig.caps, result.values);
    rig.capFacts[side] = result.facts;
    rig.ctx.emit({ kind: 'capabilities', cell: rig.cellId, guest: guest.name, values: result.values, unknown: result.unknown, release: result.release });
    rig.observe[side].dyndbg = result.values[`${side}.dyndbg`] === true;
    const probe = kprobes[n];
    if (probe) {
      rig.observe[side].kprobe = probe.ok;
      if (!probe.ok) rig.log(`${side}: kprobe on ntb_db_event refused: ${probe.error}`, 'warn');
    }
  });
}

/** Times a part of the setup as a `phase` event, so slow boots and slow probes show in events.ndjson. */
export async function phase<T>(rig: Rig, name: string, body: () => Promise<T>): Promise<T> {
  const started = Date.now();
  rig.ctx.emit({ kind: 'phase', cell: rig.cellId, phase: name, status: 'start' });
  try {
    const result = await body();
    rig.ctx.emit({ kind: 'phase', cell: rig.cellId, phase: name, status: 'end', durationMs: Date.now() - started });
    return result;
  } catch (error) {
    rig.ctx.emit({ kind: 'phase', cell: rig.cellId, phase: name, status: 'error', durationMs: Date.now() - started, message: (error as Error)?.message });
    throw error;
  }
}
