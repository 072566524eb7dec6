#!/bin/sh
# qemu.sh BOARD [qemuboot flags]: build BOARD's image and boot it in QEMU
# with the serial console on this terminal (Ctrl-A X quits QEMU, Ctrl-A C
# is QEMU's monitor). The kernel and busybox packages are fetched into
# .cache once; the persistent state disk is .cache/qemu/BOARD/state.img.
#
# No network leaves the machine: QEMU gets no NIC at all for now (its
# defaults, which include a user-mode NIC to the outside, are off). The
# simulated cellular network (a tap in a network namespace this script
# will create and remove) and the modem simulator on the second serial
# port come with their issues.
#
#   scripts/qemu.sh qemu-x86_64
#   scripts/qemu.sh qemu-x86_64 -accel tcg                 # no KVM
#   scripts/qemu.sh qemu-x86_64 -console-socket /tmp/con   # console on a socket
set -eu
usage="usage: scripts/qemu.sh BOARD [-accel auto|kvm|tcg] [-console-socket PATH] [-disk PATH|none] [-no-reboot]
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

exec go run ./rootfs/qemuboot -board "$board" $add_arch "$@"
