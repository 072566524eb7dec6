package lan

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/openmifi/openmifi/internal/sharing"
)

func TestUpstreams(t *testing.T) {
	dns := []netip.Addr{netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("2001:db8::53")}
	up := sharing.UplinkStatus{Up: true, UplinkInfo: sharing.UplinkInfo{DNS: dns}}
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.53:53"), netip.MustParseAddrPort("[2001:db8::53]:53")}
	if got := upstreams(up); !reflect.DeepEqual(got, want) {
		t.Errorf("up: %v", got)
	}
	up.Up = false // the servers of a connection that is down are no use
	if got := upstreams(up); got != nil {
		t.Errorf("down: %v", got)
	}
}
