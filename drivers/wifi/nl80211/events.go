package nl80211

import (
	"context"
	"net"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// notification is what one nl80211 message from the kernel says, before
// the AP decides whether it is an Event.
type notification struct {
	cmd       uint8
	ifindex   int
	mac       net.HardwareAddr
	frame     []byte
	signalDBm int
	cookie    uint64
	ack       bool
	ethertype uint16
}

// parseNotification reads the attributes of an nl80211 message the kernel
// sent on its own (multicast, or unicast to the socket that registered for
// frames or owns the control port).
func parseNotification(cmd uint8, b []byte) (notification, error) {
	n := notification{cmd: cmd}
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return n, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NL80211_ATTR_IFINDEX:
			n.ifindex = int(ad.Uint32())
		case unix.NL80211_ATTR_MAC:
			if d := ad.Bytes(); len(d) == 6 {
				n.mac = net.HardwareAddr(d)
			}
		case unix.NL80211_ATTR_FRAME:
			n.frame = ad.Bytes()
		case unix.NL80211_ATTR_RX_SIGNAL_DBM:
			n.signalDBm = int(int32(ad.Uint32()))
		case unix.NL80211_ATTR_COOKIE:
			n.cookie = ad.Uint64()
		case unix.NL80211_ATTR_ACK:
			n.ack = true
		case unix.NL80211_ATTR_CONTROL_PORT_ETHERTYPE:
			n.ethertype = ad.Uint16()
		}
	}
	return n, ad.Err()
}

// event turns a notification for our interface into an Event; ok is false
// for what the access point logic does not hear about.
func (n notification) event() (e Event, ok bool) {
	switch n.cmd {
	case unix.NL80211_CMD_FRAME:
		if len(n.frame) < 24 {
			return e, false
		}
		return Event{Kind: EventFrame, MAC: addr2(n.frame), Frame: n.frame, SignalDBm: n.signalDBm}, true
	case unix.NL80211_CMD_CONTROL_PORT_FRAME:
		if n.ethertype != ethPAE || n.mac == nil {
			return e, false
		}
		return Event{Kind: EventEAPOL, MAC: n.mac, Frame: n.frame}, true
	case unix.NL80211_CMD_FRAME_TX_STATUS:
		return Event{Kind: EventTxStatus, Cookie: n.cookie, Ack: n.ack, Frame: n.frame}, true
	case unix.NL80211_CMD_DEL_STATION:
		if n.mac == nil {
			return e, false
		}
		return Event{Kind: EventStationGone, MAC: n.mac}, true
	case unix.NL80211_CMD_STOP_AP, unix.NL80211_CMD_DEL_INTERFACE:
		return Event{Kind: EventStopped}, true
	}
	return e, false
}

// addr2 is the transmitter address of an 802.11 frame.
func addr2(frame []byte) net.HardwareAddr {
	return net.HardwareAddr(append([]byte(nil), frame[10:16]...))
}

// maxQueued bounds the frames waiting for the access point logic: a flood
// of probe requests must not eat memory. Events that change state
// (stations gone, AP stopped, tx status) are never dropped.
const maxQueued = 1024

// queue hands events to the access point logic without ever blocking the
// socket reader: the reader must keep reading for command replies even
// while the AP logic, busy with a command, is not taking events.
type queue struct {
	mu      sync.Mutex
	q       []Event
	dropped int
	wake    chan struct{}
	out     chan Event
}

func newQueue() *queue {
	return &queue{wake: make(chan struct{}, 1), out: make(chan Event)}
}

// push queues e and reports false if it was dropped.
func (q *queue) push(e Event) bool {
	q.mu.Lock()
	if len(q.q) >= maxQueued && (e.Kind == EventFrame || e.Kind == EventEAPOL) {
		q.dropped++
		q.mu.Unlock()
		return false
	}
	q.q = append(q.q, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// run delivers queued events until ctx is done, then closes the channel.
func (q *queue) run(ctx context.Context) {
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.q) == 0 {
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		e := q.q[0]
		q.q[0] = Event{}
		q.q = q.q[1:]
		q.mu.Unlock()
		select {
		case q.out <- e:
		case <-ctx.Done():
			return
		}
	}
}
