package modem

import "testing"

// FuzzParsers feeds arbitrary modem output to every parser of this
// package: whatever a modem sends must give a value or ok=false, never a
// panic, and what is accepted must be sane.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{
		`1,"1A2D","01A2B3C4",7`, `2,1,"1A2D","01A2B3C4",7`, `0,0,"Test PLMN 1-1",7`, `0,2,"00101",7`,
		"20,99", "99,99,255,255,20,48", `1,"100.64.1.2","32.1.13.184.0.0.0.1.0.0.0.0.0.0.0.2"`,
		`1,5,"internet","100.64.1.2.255.255.255.252","100.64.1.1","100.64.0.53","100.64.0.54"`,
		`1,5,"internet","2001:db8:0:1::2 ffff:ffff:ffff:ffff::","2001:db8:0:1::1"`,
		"NW PDN DEACT 1", `NW DEACT "IP","100.64.1.2",1`, "ME DETACH", `1,1,"IPV4V6",0`, "SIM PIN",
		`1,"IPV4V6","internet","0.0.0.0",0,0`, `"(1,2)",x,,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r, ok := parseRegURC(s); ok && (r.stat < 0 || r.stat > 11) {
			t.Errorf("stat %d", r.stat)
		}
		parseRegAnswer(s)
		if c, ok := parseCOPS(s); ok && c.format == 2 && !validPLMN(c.oper) {
			t.Errorf("numeric operator %q", c.oper)
		}
		for _, p := range []func(string) (signal, bool){parseCSQ, parseCESQ} {
			if sg, ok := p(s); ok {
				if b := sg.bars(); b < 0 || b > 5 {
					t.Errorf("bars %d", b)
				}
				if sg.dbm > 0 {
					t.Errorf("dBm %d", sg.dbm)
				}
			}
		}
		if _, addrs, ok := parseCGPADDR(s); ok {
			for _, a := range addrs {
				if !a.IsValid() || a.IsUnspecified() {
					t.Errorf("address %v", a)
				}
			}
		}
		if c, ok := parseCGCONTRDP(s); ok && c.addr.IsValid() && c.addr.Bits() < 0 {
			t.Errorf("prefix %v", c.addr)
		}
		parseCGEV(s)
		_ = parseCPIN(s)
		parseQNETDEVSTATUS(s)
		parseCGDCONTCID(s)
		parseAddr(s)
	})
}
