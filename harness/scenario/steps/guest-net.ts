/**
 * guest-net: the guests' private network (harness/qemu/command.ts guestNetArgs, addressed by
 * images/init.sh): ping each way, then SSH from each guest into the other with dbclient, as a script
 * on one machine would log into its peer. Each guest gets its own key; the peer authorizes it.
 */
import { GUEST_NET } from '../../qemu/command.ts';
import { run } from '../../ntb/shell.ts';
import type { Rig } from '../rig.ts';
import { defineStep, stepSchema, type StepOf } from './define.ts';
import { other, type Out } from './util.ts';

const schema = stepSchema('guest-net', {}, "ping and SSH (dbclient) from each guest to the other over their private network (192.168.76.0/24)");
export type GuestNetStep = StepOf<typeof schema>;

const KEY = '/root/.ssh/id_peer';
const address = (side: 'ep' | 'host') => `${GUEST_NET.subnet}.${GUEST_NET[side]}`;

async function guestNet(rig: Rig, _step: GuestNetStep, out: Out): Promise<void> {
  const pub = { ep: '', host: '' };
  for (const side of ['ep', 'host'] as const) {
    // dropbearkey prints the public line; -y re-reads it from an existing key.
    const text = await run(rig.guest(side), `[ -f ${KEY} ] || dropbearkey -t ed25519 -f ${KEY} >/dev/null 2>&1; dropbearkey -y -f ${KEY} | grep '^ssh-'`, { timeoutMs: rig.ms(60_000) });
    pub[side] = text.trim().split('\n')[0] ?? '';
  }
  for (const side of ['ep', 'host'] as const) {
    const line = pub[other(side)];
    await run(rig.guest(side), `grep -qF '${line}' /root/.ssh/authorized_keys 2>/dev/null || echo '${line}' >> /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys`);
  }
  for (const side of ['ep', 'host'] as const) {
    const peer = other(side);
    const label = `${side}-to-${peer}`;
    const ping = await rig.guest(side).exec(`ping -c 2 -w ${Math.ceil(rig.ms(10_000) / 1000)} ${address(peer)}`, { timeoutMs: rig.ms(30_000) });
    out.add('ping', ping.exitCode === 0, { on: side, label, detail: ping.stdout.trim().split('\n').slice(-2).join(' | ') });
    const release = (await run(rig.guest(peer), 'cat /proc/sys/kernel/osrelease')).trim();
    const ssh = await rig.guest(side).exec(`timeout ${Math.ceil(rig.ms(60_000) / 1000)} dbclient -y -i ${KEY} root@${address(peer)} 'cat /proc/sys/kernel/osrelease; hostname'`, { timeoutMs: rig.ms(90_000) });
    const ok = ssh.exitCode === 0 && ssh.stdout.trim().split('\n')[0] === release;
    out.add('ssh', ok, { on: side, label, detail: ok ? `${peer} answered ${release}` : `exit ${ssh.exitCode}: ${(ssh.stderr || ssh.stdout).trim().split('\n').slice(-3).join(' | ')}` });
  }
}

export default defineStep({
  schema,
  appliesTo: ['pci-epf-vntb', 'pci-epf-test'],
  checks: {
    ping: { spec: 'true', doc: "the peer's private address answers", note: 'per direction' },
    ssh: { spec: 'true', doc: "dbclient into the peer runs a command there (it prints the peer's kernel release)", note: 'per direction' },
  },
  run: guestNet,
  budget: () => 300,
});
