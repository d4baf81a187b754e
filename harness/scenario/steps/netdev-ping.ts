/** netdev-ping: ICMP over the ntb_netdev interfaces, each way. */
import { z } from 'zod';
import { defineStep, direction, stepSchema, type StepOf } from './define.ts';
import { NTB_ADDR, netdevState } from './netdev.ts';
import { directions, sides } from './observe.ts';
import type { Rig } from '../rig.ts';
import type { Out } from './util.ts';

const schema = stepSchema(
  'netdev-ping',
  {
    direction: direction.default('both'),
    count: z.number().int().min(1).max(100).default(3),
  },
  'ping the peer over the ntb interface from one side or both',
);
export type NetdevPingStep = StepOf<typeof schema>;

async function netdevPing(rig: Rig, step: NetdevPingStep, out: Out): Promise<void> {
  netdevState(rig);
  for (const dir of directions(step.direction)) {
    const { sender, receiver } = sides(dir);
    const deadline = Math.ceil(rig.ms(5_000 * step.count) / 1000);
    const result = await rig.guest(sender).exec(`ping -c ${step.count} -w ${deadline} ${NTB_ADDR[receiver]}`, { timeoutMs: rig.ms(10_000 * step.count) });
    const received = /(\d+) packets received/.exec(result.stdout);
    const rtt = /min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(result.stdout);
    out.add('ping', result.exitCode === 0 && Number(received?.[1] ?? 0) === step.count, {
      on: sender,
      label: dir,
      detail: `${received?.[1] ?? 0}/${step.count} replies${rtt ? `, avg ${rtt[1]} ms` : ''}${result.exitCode === 0 ? '' : `: ${(result.stderr || result.stdout).trim().split('\n').slice(-2).join(' | ')}`}`,
    });
  }
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb'],
  checks: {
    ping: { spec: 'true', doc: 'every echo request got its reply', note: 'per direction' },
  },
  run: netdevPing,
  budget: (s) => 60 + 20 * s.count,
});
