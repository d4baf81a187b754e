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
import { armReceiver, directions, resetDb, ringAndObserve, sides, type RingObservation } from './observe.ts';
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
  const mask = evalMask(rig, step.bits);
  for (const direction of directions(step.direction)) {
    const { receiver } = sides(direction);
    const bitsToRing = setBits(mask);
    let armed = await armReceiver(rig, tools, direction, { observe: bitsToRing.length > 0 });
    for (const [n, i] of bitsToRing.entries()) {
      const label = `${direction} bit ${i}`;
      // Two round trips per bit: the sender's ring, then one receiver script that observes this ring,
      // clears bit i, reads db, clears everything and arms the next ring.
      const obs = await ringAndObserve(rig, tools, direction, bit(i), { armed, next: { clear: bit(i), observe: n + 1 < bitsToRing.length } });
      recordObservation(out, obs, receiver, label, { i });
      armed = obs.next!;
      out.add('db_after_clear', armed.afterClear!, { on: receiver, label, params: { i } });
    }
  }
}

export async function doorbellZero(rig: Rig, step: DoorbellZeroStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  for (const direction of directions(step.direction)) {
    const { receiver } = sides(direction);
    const armed = await armReceiver(rig, tools, direction);
    const obs = await ringAndObserve(rig, tools, direction, 0, { expectChange: false, armed });
    recordObservation(out, obs, receiver, direction, {});
    await resetDb(tools[receiver]);
  }
}

export async function doorbellMulti(rig: Rig, step: DoorbellMultiStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  const B = evalMask(rig, step.bits);
  const { receiver } = sides(step.direction);
  const armed = await armReceiver(rig, tools, step.direction);
  // Several MSIs arrive one after the other (new vntb raises each bit from a workqueue): settle longer.
  const obs = await ringAndObserve(rig, tools, step.direction, B, { settlePolls: 20, armed });
  recordObservation(out, obs, receiver, step.direction, { B }, true);
  const after = await armReceiver(rig, tools, step.direction, { clear: B, observe: false });
  out.add('db_after_clear', after.afterClear!, { on: receiver, label: step.direction, params: { B } });
}

export async function doorbellClear(rig: Rig, step: DoorbellClearStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  const B = evalMask(rig, step.bits);
  const C = evalMask(rig, step.clear);
  const params = { B, C, R: andNot(B, C) };
  for (const direction of directions(step.direction)) {
    const { sender, receiver } = sides(direction);
    const rx = tools[receiver];
    let db = await resetDb(rx);
    const refused: string[] = [];
    for (const i of setBits(B)) {
      const ring = await tools[sender].ringPeer(bit(i));
      if (!ring.ok) refused.push(`bit ${i}: ${ring.error}`);
      db = (await rx.waitDb(db, rig.ms(3_000), 3, ring.ok)).value;
    }
    out.add('db_before_clear', db, { on: receiver, label: direction, params, detail: refused.length ? `refused rings: ${refused.join('; ')}` : undefined });
    await rx.clearDb(C);
    out.add('db_after_clear', await rx.db(), { on: receiver, label: direction, params });
    await resetDb(rx);
  }
}
