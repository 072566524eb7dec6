#!/bin/sh
# The main job until the QEMU board lands: check the image's provisioning,
# run hotspotd on this host (state and socket in a temporary directory) and
# drive it with hotspotctl over its real control socket.
set -eu
bin=${1:?usage: run-host.sh BINDIR}
dir=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

prov=rootfs/etc/openmifi/provisioning.xml
echo "== hotspotd -check $prov"
"$bin/hotspotd" -check "$prov"

echo "== hotspotd"
"$bin/hotspotd" -provisioning "$prov" -state "$dir/state" -socket "$dir/ctl.sock" \
	-keys "$dir/keys" -strings "$dir/strings" &
pid=$!
i=0
while [ ! -S "$dir/ctl.sock" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "hotspotd did not start" >&2; exit 1; }
	sleep 0.1
done

ctl() {
	echo "== hotspotctl $*"
	"$bin/hotspotctl" -socket "$dir/ctl.sock" "$@" || echo "(exit $?)"
}
ctl status
ctl get
ctl set ssid=openmifi-demo channel=11
# No driver for modem, radio, DHCP or NAT has landed yet: this shows the
# start failure naming the first missing one.
ctl on
ctl status --json
