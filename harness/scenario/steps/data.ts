/** Scratchpads and memory windows through ntb_tool, in the style of the kernel's ntb_test.sh. */
import { allocInbound, describeWrite, freeWindows, mapOutbound, readMd5, writeRandom } from '../../ntb/mw.ts';
import type { Rig } from '../rig.ts';
import type { MwStep } from './mw.ts';
import type { SpadStep } from './spad.ts';
import { directions, eachDirection, sides } from './observe.ts';
import type { Out } from './util.ts';


/** A value that says which direction and index wrote it, so a crossed wire is visible in the report. */
export function spadValue(direction: string, k: number): number {
  return (0x6e000000 + (direction === 'host-to-ep' ? 0x10000 : 0x20000) + k * 0x101) >>> 0;
}

export async function spad(rig: Rig, step: SpadStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  // The two directions use the two halves of vntb's scratchpad area (the host's peer spads are the
  // EP's own, and the other way round): independent, so side by side.
  await eachDirection(out, directions(step.direction), async (direction, out) => {
    const { sender, receiver } = sides(direction);
    const available = Math.min(...(await Promise.all([tools[sender].spadCount(), tools[receiver].spadCount()])));
    const count = Math.min(step.count ?? available, available);
    if (count === 0) {
      out.unavailable('spad', 'no scratchpads exposed by ntb_tool', { label: direction });
      return;
    }
    // Every write in one round trip, then every read in one: each value names its index, so a write that
    // lands in (or clobbers) another scratchpad still shows.
    const values = Array.from({ length: count }, (_, k) => spadValue(direction, k));
    const written = await tools[sender].writePeerSpads(values);
    const read = await tools[receiver].readSpads(count);
    for (const [k, w] of values.entries()) {
      const write = written[k]!;
      out.add('spad', read[k]!, { on: receiver, label: `${direction} spad ${k}`, params: { k, w }, detail: write.ok ? undefined : `peer0/spad${k} write failed: ${write.error}` });
    }
  });
}

export async function mw(rig: Rig, step: MwStep, out: Out): Promise<void> {
  const tools = await rig.linkedTools();
  // In turn, not side by side: with both directions at once (the EP setting its inbound BAR while it
  // maps an outbound window for the host's) the EP guest stopped answering in 1 of 2 runs (ep-stock__host-old).
  await eachDirection(out, directions(step.direction), async (direction, out) => {
    const { sender, receiver } = sides(direction);
    const [tx, rx] = [tools[sender], tools[receiver]];
    const alloc = await allocInbound(rx, step.index, step.size);
    const labels = { outbound: `${direction} peer_mw${step.index}→mw${step.index}`, inbound: `${direction} mw${step.index}→peer_mw${step.index}` };
    if (!alloc.window) {
      out.unavailable('hex_trans', `no inbound window to map: ${alloc.error}`, { on: sender, label: direction });
      for (const label of Object.values(labels)) out.add('match', false, { on: receiver, label, detail: alloc.error });
      await freeWindows(rx, tx, step.index);
      return;
    }
    // The documented form, reported on its own: ntb_tool of 7.1.8 and later refuses it (docs/ntb-tool.md).
    // A refused write changes nothing; an accepted one is replaced by the decimal mapping below.
    const documented = await mapOutbound(tx, step.index, alloc.window, 'documented');
    out.add('hex_trans', documented.ok, { on: sender, label: direction, detail: describeWrite(documented) });
    const size = Math.min(step.size, alloc.window.size);
    // The data path uses the form every released parser accepts, so it tests the window, not the parser.
    const mapped = await mapOutbound(tx, step.index, alloc.window, 'decimal');
    if (!mapped.ok) {
      for (const label of Object.values(labels)) out.add('match', false, { on: receiver, label, detail: describeWrite(mapped) });
    } else {
      // Sender writes through its outbound window; the receiver reads its inbound buffer.
      const sent = await writeRandom(tx, `peer_mw${step.index}`, size);
      const got = await readMd5(rx, `mw${step.index}`, size);
      out.add('match', Boolean(sent.md5) && sent.md5 === got.md5, { on: receiver, label: labels.outbound, params: { size }, detail: sent.error ?? got.error });
      // And back: the receiver writes its buffer; the sender reads it through the window.
      const back = await writeRandom(rx, `mw${step.index}`, size);
      const seen = await readMd5(tx, `peer_mw${step.index}`, size);
      out.add('match', Boolean(back.md5) && back.md5 === seen.md5, { on: sender, label: labels.inbound, params: { size }, detail: back.error ?? seen.error });
    }
    await freeWindows(rx, tx, step.index, alloc.window);
  }, { inTurn: true });
}
