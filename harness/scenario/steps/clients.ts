/** Steps driven by the other NTB clients: ntb_perf (throughput, hang detection) and ntb_pingpong. */
import { rmmod } from '../../ntb/modules.ts';
import { perfDir, perfInfo, runPerf } from '../../ntb/perf.ts';
import { parseKernelInt, run } from '../../ntb/shell.ts';
import type { Rig } from '../rig.ts';
import type { PerfStep } from './perf.ts';
import type { PingpongStep } from './pingpong-atomic.ts';
import { directions, sides } from './observe.ts';
import { sleep, type Out } from './util.ts';


export async function perf(rig: Rig, step: PerfStep, out: Out): Promise<void> {
  const params: Record<string, number | boolean> = { chunk_order: step.chunk_order, total_order: step.total_order, use_dma: step.use_dma };
  if (step.max_mw_size !== undefined) params.max_mw_size = step.max_mw_size;
  // The two guests load, find and later unload their clients independently: side by side, not in turn.
  await Promise.all((['ep', 'host'] as const).map((side) => rig.useClient(side, 'ntb_perf', params)));
  const [epDir, hostDir] = await Promise.all([perfDir(rig.ep, rig.ms(30_000)), perfDir(rig.host, rig.ms(30_000))]);
  const dirs = { ep: epDir, host: hostDir };
  const runMs = rig.ms((step.timeout ?? 300) * 1000);
  for (const direction of directions(step.direction)) {
    const { sender } = sides(direction);
    const dir = dirs[sender];
    if (!dir) {
      out.add('completed', false, { on: sender, label: direction, detail: `no ${sender} ntb_perf directory` });
      continue;
    }
    const result = await runPerf(rig.guest(sender), dir, rig.ms(30_000), runMs);
    const mbps = result.threads.reduce((sum, t) => sum + (t.mbps ?? 0), 0);
    const bytes = result.threads.reduce((sum, t) => sum + (t.bytes ?? 0), 0);
    const detail = result.completed ? `${bytes} bytes in ${result.durationMs} ms wall` : `${result.output.split('\n').slice(-3).join(' | ')} | info: ${(await perfInfo(rig.guest(sender), dir)).split('\n').slice(0, 4).join(' | ')}`;
    out.add('completed', result.completed, { on: sender, label: direction, detail });
    if (result.completed) out.add('mbps', mbps, { on: sender, label: direction });
  }
  // Leave the NTB devices to ntb_tool again for later steps (rig.tool() reloads it).
  await Promise.all((['ep', 'host'] as const).map((side) => rmmod(rig.guest(side), 'ntb_perf', rig.ms(60_000))));
}

export async function pingpong(rig: Rig, step: PingpongStep, out: Out): Promise<void> {
  // Host first, so the EP's first ping (from its hrtimer, under the spinlock) finds a peer.
  for (const side of ['host', 'ep'] as const) await rig.useClient(side, 'ntb_pingpong', { delay_ms: step.delay_ms });
  await sleep(step.duration * 1000);
  const count = await run(rig.ep, 'cat /sys/kernel/debug/ntb_pingpong/*/count 2>/dev/null | head -n 1');
  out.add('pings', count.trim() ? parseKernelInt(count) : null, { on: 'ep', detail: count.trim() ? undefined : 'no ntb_pingpong count file on the EP' });
  for (const side of ['ep', 'host'] as const) await rmmod(rig.guest(side), 'ntb_pingpong', rig.ms(60_000));
}
