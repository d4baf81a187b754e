/**
 * Doorbell steps. Labels carry the direction and bit ("host-to-ep bit 3") so check ids are unique and
 * the interop evaluation can line cells up bit by bit.
 */
import { singleOrList } from '../../ntb/interrupts.ts';
import type { Rig } from '../rig.ts';
import type { Side } from '../../results/model.ts';
import type { DoorbellClearStep } from './doorbell-clear.ts';
import type { DoorbellMultiStep } from './doorbell-multi.ts';
import type { DoorbellSweepStep } from './doorbell-sweep.ts';
import type { DoorbellZeroStep } from './doorbell-zero.ts';
import { armReceiver, bothSettled, directions, DIRECTIONS_SIDE_BY_SIDE, eachDirection, hostSleepsInIrq, mayRingWhileWatching, resetDb, ringAndObserve, sides, type RingObservation } from './observe.ts';
import { andNot, bit, evalMask, setBits, type Out } from './util.ts';

const NO_DYNDBG = 'no ntb_tool dynamic debug on the receiver';

/** The receiver-side observations of one ring, as measurements. `plural` keeps lists even for one item. */
function recordObservation(out: Out, obs: RingObservation, receiver: Side, label: string, params: Record<string, number>, plural = false): void {
  const common = { on: receiver, label, params };
  const shape = (list: number[]) => (plural ? [...list].sort((a, b) => a - b) : singleOrList(list));
  out.add('ring_ok', obs.ringOk, { ...common, on: receiver === 'ep' ? 'host' : 'ep', detail: obs.ringError });
  out.add('db', obs.db, common);
  const vectorCheck = plural ? 'vectors' : 'vector';
  if (obs.events) out.add(vectorCheck, shape(obs.events.map((e) => e.vector)), common);
  else out.unavailable(vectorCheck, NO_DYNDBG, common);
  if (!plural) {
    if (obs.events) out.add('vector_mask', singleOrList(obs.events.map((e) => e.mask)), common);
    else out.unavailable('vector_mask', NO_DYNDBG, common);
    if (obs.kprobeVectors) out.add('vector_kprobe', singleOrList(obs.kprobeVectors), common);
  }
  if (obs.msiVectors) out.add('msi_index', shape(obs.msiVectors), common);
  if (obs.wireVectors) out.add('wire', shape(obs.wireVectors), common);
}

export async function doorbellSweep(rig: Rig, step: DoorbellSweepStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  const bitsToRing = setBits(evalMask(rig, step.bits));
  // Both directions at once, each in its own bit order (in turn toward a host that sleeps in its IRQ handler).
  await eachDirection(out, directions(step.direction), async (direction, out) => {
    const { receiver } = sides(direction);
    let armed = await armReceiver(rig, tools, direction, { observe: bitsToRing.length > 0 });
    // The sender rings while the armed receiver starts watching. After a refused ring (a slot the sender
    // does not have) the rest go in turn, so each further refusal costs a short look, not a full window.
    let concurrent = mayRingWhileWatching(rig, receiver);
    for (const [n, i] of bitsToRing.entries()) {
      const label = `${direction} bit ${i}`;
      // One receiver script per bit observes this ring, clears bit i, reads db, clears everything and
      // arms the next ring.
      const obs = await ringAndObserve(rig, tools, direction, bit(i), { armed, concurrent, next: { clear: bit(i), observe: n + 1 < bitsToRing.length } });
      if (!obs.ringOk) concurrent = false;
      recordObservation(out, obs, receiver, label, { i });
      armed = obs.next!;
      out.add('db_after_clear', armed.afterClear!, { on: receiver, label, params: { i } });
    }
  }, { inTurn: hostSleepsInIrq(rig) || !DIRECTIONS_SIDE_BY_SIDE });
}

export async function doorbellZero(rig: Rig, step: DoorbellZeroStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  await eachDirection(out, directions(step.direction), async (direction, out) => {
    const { receiver } = sides(direction);
    const armed = await armReceiver(rig, tools, direction);
    // In turn: the "nothing arrives" window starts after the ring. The clean-up rides in the same script.
    const obs = await ringAndObserve(rig, tools, direction, 0, { expectChange: false, armed, next: { observe: false } });
    recordObservation(out, obs, receiver, direction, {});
  }, { inTurn: hostSleepsInIrq(rig) || !DIRECTIONS_SIDE_BY_SIDE });
}

export async function doorbellMulti(rig: Rig, step: DoorbellMultiStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  const B = evalMask(rig, step.bits);
  const { receiver } = sides(step.direction);
  const armed = await armReceiver(rig, tools, step.direction);
  // Several MSIs arrive one after the other (new vntb raises each bit from a workqueue): settle longer.
  // `c B` and its db read ride in the observing script.
  const obs = await ringAndObserve(rig, tools, step.direction, B, { settlePolls: 20, armed, concurrent: mayRingWhileWatching(rig, receiver), next: { clear: B, observe: false } });
  recordObservation(out, obs, receiver, step.direction, { B }, true);
  out.add('db_after_clear', obs.next!.afterClear!, { on: receiver, label: step.direction, params: { B } });
}

export async function doorbellClear(rig: Rig, step: DoorbellClearStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  const B = evalMask(rig, step.bits);
  const C = evalMask(rig, step.clear);
  const params = { B, C, R: andNot(B, C) };
  await eachDirection(out, directions(step.direction), async (direction, out) => {
    const { sender, receiver } = sides(direction);
    const rx = tools[receiver];
    let db = await resetDb(rx);
    const refused: string[] = [];
    let concurrent = mayRingWhileWatching(rig, receiver);
    // Bits in order, each settled before the next: db accumulates them.
    for (const i of setBits(B)) {
      let ring: { ok: boolean; error?: string };
      if (concurrent) {
        // The window also covers the sender's round trip (3 s after the ring, as in turn).
        let settled: { value: number };
        [ring, settled] = await bothSettled(tools[sender].ringPeer(bit(i)), rx.waitDb(db, rig.ms(4_000), 3, true));
        db = settled.value;
        if (!ring.ok) concurrent = false;
      } else {
        ring = await tools[sender].ringPeer(bit(i));
        db = (await rx.waitDb(db, rig.ms(3_000), 3, ring.ok)).value;
      }
      if (!ring.ok) refused.push(`bit ${i}: ${ring.error}`);
    }
    out.add('db_before_clear', db, { on: receiver, label: direction, params, detail: refused.length ? `refused rings: ${refused.join('; ')}` : undefined });
    // `c C`, the db read and the full reset in one script.
    const after = await armReceiver(rig, tools, direction, { clear: C, observe: false });
    out.add('db_after_clear', after.afterClear!, { on: receiver, label: direction, params });
  }, { inTurn: hostSleepsInIrq(rig) || !DIRECTIONS_SIDE_BY_SIDE });
}
