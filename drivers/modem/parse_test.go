package modem

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestParseReg(t *testing.T) {
	for _, c := range []struct {
		in     string
		answer bool
		want   reg
		ok     bool
	}{
		{`1,"1A2D","01A2B3C4",7`, false, reg{stat: 1, lac: "1A2D", ci: "01A2B3C4", act: 7}, true},
		{`2`, false, reg{stat: 2, act: -1}, true},
		{`5,"00C3","0000A13F"`, false, reg{stat: 5, lac: "00C3", ci: "0000A13F", act: -1}, true},
		{`2,1,"1A2D","01A2B3C4",7`, true, reg{stat: 1, lac: "1A2D", ci: "01A2B3C4", act: 7}, true},
		{`0,4`, true, reg{stat: 4, act: -1}, true},
		{`2`, true, reg{}, false},
		{`x`, false, reg{}, false},
		{`12`, false, reg{}, false},
		{``, false, reg{}, false},
	} {
		var got reg
		var ok bool
		if c.answer {
			got, ok = parseRegAnswer(c.in)
		} else {
			got, ok = parseRegURC(c.in)
		}
		if ok != c.ok || got != c.want {
			t.Errorf("%q (answer %v): %+v %v, want %+v %v", c.in, c.answer, got, ok, c.want, c.ok)
		}
	}
}

func TestParseCOPS(t *testing.T) {
	for in, want := range map[string]string{
		`0,0,"Test PLMN 1-1",7`: "{format:0 oper:Test PLMN 1-1 act:7} true",
		`0,2,"00101",7`:         "{format:2 oper:00101 act:7} true",
		`1,2,"310260"`:          "{format:2 oper:310260 act:-1} true",
		`0`:                     "{format:-1 oper: act:-1} true",
		`0,2,"abc",7`:           "{format:0 oper: act:0} false",
		`0,9,"x"`:               "{format:0 oper: act:0} false",
		`x`:                     "{format:0 oper: act:0} false",
	} {
		c, ok := parseCOPS(in)
		if got := fmt.Sprintf("%+v %v", c, ok); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestSignal(t *testing.T) {
	for _, c := range []struct {
		in          string
		cesq        bool
		dbm, bars   int
		ok          bool
		description string
	}{
		{"20,99", false, -73, 4, true, "CSQ 20"},
		{"31,99", false, -51, 5, true, "CSQ top"},
		{"0,0", false, -113, 0, true, "CSQ bottom"},
		{"99,99", false, 0, 0, true, "CSQ unknown"},
		{"32,99", false, 0, 0, false, "CSQ out of range"},
		{"99,99,255,255,20,48", true, -93, 3, true, "LTE RSRP"},
		{"99,99,255,255,20,97", true, -44, 5, true, "LTE RSRP top"},
		{"99,99,62,38,255,255", true, -59, 5, true, "UMTS RSCP"},
		{"40,0,255,255,255,255", true, -71, 4, true, "GSM RXLEV"},
		{"99,99,255,255,255,255", true, 0, 0, true, "CESQ unknown"},
		{"99,99,255", true, 0, 0, false, "CESQ short"},
	} {
		var s signal
		var ok bool
		if c.cesq {
			s, ok = parseCESQ(c.in)
		} else {
			s, ok = parseCSQ(c.in)
		}
		if ok != c.ok || s.dbm != c.dbm || s.bars() != c.bars {
			t.Errorf("%s %q: %d dBm %d bars %v, want %d %d %v", c.description, c.in, s.dbm, s.bars(), ok, c.dbm, c.bars, c.ok)
		}
	}
}

func TestParseCGPADDR(t *testing.T) {
	for in, want := range map[string]string{
		`1,"100.64.1.2","32.1.13.184.0.0.0.1.0.0.0.0.0.0.0.2"`: "1 [100.64.1.2 2001:db8:0:1::2] true",
		`1,100.64.1.2`:            "1 [100.64.1.2] true",
		`1,"0.0.0.0"`:             "1 [] true",
		`2`:                       "2 [] true",
		`1,"2001:db8::1"`:         "1 [2001:db8::1] true",
		`1,"1.2.3"`:               "0 [] false",
		`x,"1.2.3.4"`:             "0 [] false",
		`1,"300.1.1.1"`:           "0 [] false",
		`1,"1.2.3.4.5.6.7.8.9.1"`: "0 [] false",
	} {
		cid, addrs, ok := parseCGPADDR(in)
		if addrs == nil {
			addrs = []netip.Addr{}
		}
		if got := fmt.Sprintf("%d %v %v", cid, addrs, ok); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestParseCGCONTRDP(t *testing.T) {
	for in, want := range map[string]string{
		`1,5,"internet","100.64.1.2.255.255.255.252","100.64.1.1","100.64.0.53","100.64.0.54"`:                                                                                              "1 internet 100.64.1.2/30 100.64.1.1 [100.64.0.53 100.64.0.54] true",
		`1,5,"internet","32.1.13.184.0.0.0.1.0.0.0.0.0.0.0.2.255.255.255.255.255.255.255.255.0.0.0.0.0.0.0.0","32.1.13.184.0.0.0.1.0.0.0.0.0.0.0.1","32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.83"`: "1 internet 2001:db8:0:1::2/64 2001:db8:0:1::1 [2001:db8::53] true",
		`1,5,"internet","2001:db8:0:1::2 ffff:ffff:ffff:ffff::","2001:db8:0:1::1"`:                                                                                                          "1 internet 2001:db8:0:1::2/64 2001:db8:0:1::1 [] true",
		`1,5,"internet","2001:db8:0:1::2/64"`:     "1 internet 2001:db8:0:1::2/64 invalid IP [] true",
		`3,7,"ims"`:                               "3 ims invalid Prefix invalid IP [] true",
		`1,5,"internet","100.64.1.2.255.0.255.0"`: "0  invalid Prefix invalid IP [] false",
		`1,5`: "0  invalid Prefix invalid IP [] false",
	} {
		c, ok := parseCGCONTRDP(in)
		if got := fmt.Sprintf("%d %s %v %v %v %v", c.cid, c.apn, c.addr, c.gateway, fmtAddrs(c.dns), ok); got != want {
			t.Errorf("%q:\n got %s\nwant %s", in, got, want)
		}
	}
}

func fmtAddrs(a []netip.Addr) string {
	if a == nil {
		return "[]"
	}
	return fmt.Sprint(a)
}

func TestParseCGEV(t *testing.T) {
	for in, want := range map[string]string{
		"NW PDN DEACT 1":               "{deact:true network:true detach:false cid:1} true",
		"ME PDN DEACT 3":               "{deact:true network:false detach:false cid:3} true",
		`NW DEACT "IP","100.64.1.2",1`: "{deact:true network:true detach:false cid:1} true",
		`NW DEACT IP, 10.0.0.1, 2`:     "{deact:true network:true detach:false cid:2} true",
		"NW DEACT 1,2,0":               "{deact:true network:true detach:false cid:2} true",
		"ME DETACH":                    "{deact:false network:false detach:true cid:0} true",
		"NW DETACH":                    "{deact:false network:true detach:true cid:0} true",
		"ME PDN ACT 1":                 "{deact:false network:false detach:false cid:0} false",
		"NW PDN DEACT":                 "{deact:true network:true detach:false cid:0} true",
	} {
		e, ok := parseCGEV(in)
		if got := fmt.Sprintf("%+v %v", e, ok); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestTechnology(t *testing.T) {
	for act, want := range map[int]string{0: "GSM", 2: "UMTS", 3: "EDGE", 6: "HSPA", 7: "LTE", 9: "NB-IoT", 11: "5G", 13: "5G NSA", 99: ""} {
		if got := technology(act); got != want {
			t.Errorf("AcT %d: %q, want %q", act, got, want)
		}
	}
}

func TestHomeNetwork(t *testing.T) {
	for imsi, want := range map[string]string{
		"001010123456789": "001 01",
		"310260123456789": "310 260",
		"262011234567890": "262 01",
		"3102":            " ",
		"31026x123456789": " ",
	} {
		mcc, mnc := homeNetwork(imsi)
		if got := mcc + " " + mnc; got != want {
			t.Errorf("%s: %q, want %q", imsi, got, want)
		}
	}
}
