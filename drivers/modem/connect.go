package modem

// The packet data contexts, the uplink interface's addressing, and what is
// reported to the state machine.

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/openmifi/openmifi/drivers/modem/at"
	"github.com/openmifi/openmifi/internal/sharing"
)

// reconcile brings the interface's context to what is wanted.
func (s *session) reconcile(ctx context.Context) {
	if !s.ready || ctx.Err() != nil {
		return
	}
	if reason := s.blocked(); reason != "" {
		s.setDown(ctx, reason)
		return
	}
	t := s.d.target()
	if s.up && s.cur.same(t) {
		return
	}
	if s.up {
		// Said, not only done: the machine must not route through an
		// interface whose address is about to go.
		s.log.Info("switching the uplink context", "from", s.cur.cid, "to", t.cid)
		s.setDown(ctx, ReasonSwitching)
	}
	for _, cid := range []int{defaultCID, sharingCID} {
		if cid != t.cid && s.activated[cid] && (cid == sharingCID || s.d.exclusive()) {
			s.deactivate(ctx, cid)
		}
	}
	if err := s.bringUp(ctx, t); err != nil {
		if ctx.Err() != nil || !s.portAlive() {
			// The loss is reported by itself.
			return
		}
		s.log.Warn("cannot bring the connection up", "cid", t.cid, "err", err, "retry_in", min(max(2*s.retry, minRetry), maxRetry))
		s.setDown(ctx, "activation failed")
		s.retryLater()
		return
	}
	s.retry = 0
	s.up, s.cur = true, t
	s.report()
}

func (s *session) deactivate(ctx context.Context, cid int) {
	cmd := fmt.Sprintf("AT+CGACT=0,%d", cid)
	if s.d.cfg.Dialect == DialectQuectel {
		cmd = fmt.Sprintf("AT+QNETDEVCTL=0,%d,1", cid)
	}
	if _, err := s.do(ctx, cmd); err != nil {
		s.log.Warn("deactivate context", "cid", cid, "err", err)
	}
	delete(s.activated, cid)
}

func ipType(t string) string {
	switch strings.ToUpper(t) {
	case "IPV6", "IPV4V6":
		return strings.ToUpper(t)
	}
	return "IP"
}

// define writes the context's definition and authentication.
func (s *session) define(ctx context.Context, t target) error {
	if t.conn == nil {
		resp, err := s.do(ctx, "AT+CGDCONT?")
		if err == nil {
			for _, l := range resp.Lines {
				if a, ok := args(l, "+CGDCONT"); ok {
					if cid, ok := parseCGDCONTCID(a); ok && cid == t.cid {
						return nil // the modem's own definition stands
					}
				}
			}
		}
		_, err = s.do(ctx, fmt.Sprintf(`AT+CGDCONT=%d,"IPV4V6",""`, t.cid))
		return err
	}
	c := t.conn
	if _, err := s.do(ctx, fmt.Sprintf(`AT+CGDCONT=%d,"%s","%s"`, t.cid, ipType(c.IPType), c.APN)); err != nil {
		return err
	}
	prot := map[string]int{"pap": 1, "chap": 2}[strings.ToLower(c.AuthType)]
	cmd := at.Command{Text: fmt.Sprintf("AT+CGAUTH=%d,0", t.cid)}
	if prot != 0 {
		cmd = at.Command{Text: fmt.Sprintf(`AT+CGAUTH=%d,%d,"%s","%s"`, t.cid, prot, c.UserName, string(c.Password)), Secret: true}
	}
	if _, err := s.cmd(ctx, cmd); err != nil {
		if prot != 0 {
			return err
		}
		// Not every modem knows +CGAUTH; without credentials it is
		// not needed.
		s.log.Debug("AT+CGAUTH refused", "err", err)
	}
	return nil
}

// bringUp defines and activates t, reads its addresses and configures the
// interface.
func (s *session) bringUp(ctx context.Context, t target) error {
	if err := s.define(ctx, t); err != nil {
		return fmt.Errorf("define context %d: %w", t.cid, err)
	}
	act := fmt.Sprintf("AT+CGACT=1,%d", t.cid)
	if s.d.cfg.Dialect == DialectQuectel {
		act = fmt.Sprintf("AT+QNETDEVCTL=1,%d,1", t.cid)
	}
	if _, err := s.do(ctx, act); err != nil {
		return fmt.Errorf("activate context %d: %w", t.cid, err)
	}
	s.activated[t.cid] = true
	want, err := s.addresses(ctx, t.cid)
	if err != nil {
		return err
	}
	s.addr = want
	if s.d.cfg.Addressing != AddressingNone {
		got, err := s.d.cfg.Addresser.Up(ctx, s.d.cfg.Interface, s.d.cfg.Addressing, want)
		if err != nil {
			return fmt.Errorf("address %s: %w", s.d.cfg.Interface, err)
		}
		s.addr = got
	}
	return nil
}

// addresses reads the context's addresses (+CGPADDR) and, where the modem
// has it, their prefixes, gateway and DNS servers (+CGCONTRDP).
func (s *session) addresses(ctx context.Context, cid int) (Addressing, error) {
	resp, err := s.do(ctx, fmt.Sprintf("AT+CGPADDR=%d", cid))
	if err != nil {
		return Addressing{}, fmt.Errorf("addresses of context %d: %w", cid, err)
	}
	var addrs []netip.Addr
	for _, l := range resp.Lines {
		if a, ok := args(l, "+CGPADDR"); ok {
			if c, as, ok := parseCGPADDR(a); ok && c == cid {
				addrs = append(addrs, as...)
			}
		}
	}
	var a Addressing
	bits := map[netip.Addr]int{}
	if resp, err := s.do(ctx, fmt.Sprintf("AT+CGCONTRDP=%d", cid)); err == nil {
		for _, l := range resp.Lines {
			ar, ok := args(l, "+CGCONTRDP")
			if !ok {
				continue
			}
			c, ok := parseCGCONTRDP(ar)
			if !ok || c.cid != cid {
				continue
			}
			if c.addr.IsValid() {
				bits[c.addr.Addr()] = c.addr.Bits()
				if len(addrs) == 0 {
					addrs = append(addrs, c.addr.Addr())
				}
			}
			if c.gateway.Is4() {
				a.Gateway = c.gateway
			}
			a.DNS = append(a.DNS, c.dns...)
		}
	}
	for _, ad := range addrs {
		b, ok := bits[ad]
		if !ok {
			b = ad.BitLen()
			if ad.Is6() {
				b = 64
			}
		}
		a.Addrs = append(a.Addrs, netip.PrefixFrom(ad, b))
	}
	if len(a.Addrs) == 0 {
		return Addressing{}, fmt.Errorf("context %d is active without an address", cid)
	}
	return a, nil
}

// unconfigure takes the addressing off the interface.
func (s *session) unconfigure(ctx context.Context) {
	s.up, s.addrLost = false, ""
	if s.d.cfg.Addressing == AddressingNone {
		return
	}
	if err := s.d.cfg.Addresser.Down(ctx, s.d.cfg.Interface); err != nil {
		s.log.Warn("remove the uplink addresses", "interface", s.d.cfg.Interface, "err", err)
	}
}

// lost is the connection going away by itself.
func (s *session) lost(ctx context.Context, reason string) {
	if s.up {
		delete(s.activated, s.cur.cid)
	}
	s.setDown(ctx, reason)
}

// setDown reports the connection down, once per reason.
func (s *session) setDown(ctx context.Context, reason string) {
	wasUp := s.up
	if s.up {
		s.unconfigure(ctx)
	}
	s.lastInfo = nil
	if wasUp || reason != s.lastDown {
		s.log.Info("public connection down", "reason", reason)
		s.r.PublicDown(reason)
		s.lastDown = reason
	}
}

// report tells the machine about the connection, again when any detail
// changed.
func (s *session) report() {
	if s.addrLost != "" {
		return // down until the Addresser has an address again
	}
	info := sharing.UplinkInfo{
		Interface:  s.d.cfg.Interface,
		Addresses:  s.addr.Addrs,
		DNS:        s.addr.DNS,
		Operator:   s.operator,
		Technology: s.technology(),
		SignalDBm:  s.sig.dbm,
		SignalBars: s.sig.bars(),
	}
	if s.cur.conn != nil {
		info.Connection = s.cur.conn.Name
	}
	if s.lastInfo != nil && reflect.DeepEqual(*s.lastInfo, info) {
		return
	}
	if s.lastInfo == nil {
		s.log.Info("public connection up", "interface", info.Interface, "addresses", info.Addresses, "operator", info.Operator, "technology", info.Technology)
	}
	s.lastInfo = &info
	s.lastDown = ""
	s.r.PublicUp(info)
}
