#!/bin/sh
# PID 1 of every ntbh guest: mount what the tests need, bring up the network, start sshd, say ready.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /tmp /run /var /root
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ln -sf /run /var/run
mount -t debugfs debugfs /sys/kernel/debug
mount -t configfs configfs /sys/kernel/config
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
[ -f /etc/hostname ] && hostname "$(cat /etc/hostname)"
# Modules the kernel has as modules need modules.dep from depmod on the build host.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
# The guests' private network (harness/qemu/command.ts guestNetArgs): found by its MAC prefix, the
# MAC's last byte is the address on 192.168.76.0/24.
for d in /sys/class/net/*; do
  case "$(cat "$d/address" 2>/dev/null)" in
    52:54:00:76:00:*) a=$(cut -d: -f6 "$d/address"); ip link set "${d##*/}" up; ip addr add "192.168.76.$((0x$a))/24" dev "${d##*/}";;
  esac
done
# -s: keys only; -r: the image's host key; -p 22 on all addresses (QEMU forwards to it). -F -E: in
# the foreground with its log on stderr, here the console, so a dropped connection says why in
# console.log (there is no syslog daemon; daemonized, dropbear would log nowhere).
dropbear -F -E -s -r /etc/dropbear/dropbear_ed25519_host_key -p 22 </dev/null >/dev/console 2>&1 &
# The ready line means "SSH answers": wait until port 22 (0016) is in LISTEN (0A), as a daemonizing
# dropbear guaranteed by returning only then.
n=0
while ! grep -q ':0016 0\{8,32\}:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null && [ $n -lt 1000 ]; do
  sleep 0.01; n=$((n+1))
done
echo "ntbh-ready $(cat /proc/sys/kernel/osrelease)" > /dev/console
# PID 1 must never exit.
while :; do sleep 3600; done
