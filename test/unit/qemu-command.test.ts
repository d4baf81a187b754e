import t from 'tap';
import { qemuArgs, shellQuote } from '../../harness/qemu/command.ts';

const base = { kernel: '/k', initrd: '/i', cmdline: ['console=ttyS0'], memoryMiB: 512, cpus: 1, sshPort: 2222, qmpSocket: '/s/q', accel: 'tcg' as const, extra: [] };

t.test('x86_64 guests get q35, interrupt remapping and SSH on loopback only', async (t) => {
  const args = qemuArgs({ ...base, arch: 'x86_64', ramFile: '/dev/shm/x/host.ram' });
  const joined = args.join(' ');
  t.match(joined, /-machine q35,accel=tcg/);
  t.match(joined, /-device intel-iommu,intremap=on/);
  t.match(joined, /hostfwd=tcp:127\.0\.0\.1:2222-:22/);
  t.match(joined, /memory-backend-file,id=ram0,size=512M,mem-path=\/dev\/shm\/x\/host\.ram,share=on/);
  t.ok(args.includes('-no-reboot'));
});

t.test('arm64 guests get virt with GICv3 and a 64-bit CPU', async (t) => {
  const joined = qemuArgs({ ...base, arch: 'arm64' }).join(' ');
  t.match(joined, /-machine virt,gic-version=3,accel=tcg/);
  t.match(joined, /-cpu max/);
  t.notMatch(joined, /intel-iommu/);
});

t.test('recorded command lines can be pasted into a shell', async (t) => {
  t.equal(shellQuote(['qemu', '-append', "console=ttyS0 it's"]), `qemu -append 'console=ttyS0 it'\\''s'`);
});
