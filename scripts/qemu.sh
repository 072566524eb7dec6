#!/bin/sh
# qemu.sh BOARD [qemuboot flags]: build BOARD's image and boot it in QEMU
# with the serial console on this terminal (Ctrl-A X quits QEMU, Ctrl-A C
# is QEMU's monitor). The kernel and busybox packages are fetched into
# .cache once; the persistent state disk is .cache/qemu/BOARD/state.img.
#
# The modem simulator (cmd/modemsim) runs on the board's modem port
# (ttyS1, or hvc0 on the ARM virt boards). As root, the board's uplink NIC
# (eth0) is a tap in a network namespace made for this run, omcell-PID:
# the simulated cellular network, with DHCP, DNS and a test server on
# 100.64.0.1 and no route anywhere else, so nothing leaves the machine.
# qemuboot removes it all when QEMU exits (also on Ctrl-C or kill); its
# logs stay in .cache/qemu/BOARD/ (modemsim.log, dnsmasq.log).
#
#   scripts/qemu.sh qemu-x86_64
#   scripts/qemu.sh qemu-x86_64 -accel tcg                 # no KVM
#   scripts/qemu.sh qemu-x86_64 -console-socket /tmp/con   # console on a socket
#   scripts/qemu.sh qemu-x86_64 -modem-scenario coverage-flap   # lose coverage now and then
set -eu
usage="usage: scripts/qemu.sh BOARD [-accel auto|kvm|tcg] [-console-socket PATH] [-disk PATH|none] [-no-reboot]
       [-modem=false] [-modem-scenario NAME|FILE] [-modem-v] [-network=false]
boards: qemu-x86_64 qemu-armv7 qemu-arm64 qemu-mipsel"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
board=$1
shift
case $board in
-h|--help) echo "$usage"; exit 0 ;;
esac
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

# A foreign board's busybox and kernel are Debian packages of another
# architecture: as root, let apt know that architecture.
add_arch=
[ "$(id -u)" = 0 ] && add_arch=-add-arch

# Built rather than go run, so that signals reach qemuboot itself (it
# tears the network down) and the modem simulator's hook has a program
# that stays put.
go build -o .cache/bin/qemuboot ./rootfs/qemuboot
exec .cache/bin/qemuboot -board "$board" $add_arch "$@"
