package modemsim

import (
	"slices"
	"testing"
	"time"
)

func TestGenericIdentity(t *testing.T) {
	c := start(t, Config{}).c
	c.want("AT+CGMI", "OK", "openmifi")
	c.want("AT+GMI", "OK", "openmifi")
	c.want("AT+CGMM", "OK", "modemsim")
	c.want("AT+CGMR", "OK", "modemsim-1.0")
	c.want("AT+CGSN", "OK", "356938035643809")
	c.want("AT+GSN", "OK", "356938035643809")
	c.want("AT+CGSN=1", "OK", `+CGSN: "356938035643809"`)
	c.want("AT+CIMI", "OK", "001010123456789")
	c.want("AT+CCID", "OK", "+CCID: 89001010123456789015")
	c.want("AT+ICCID", "OK", "+ICCID: 89001010123456789015")
	c.want("AT+QCCID", "ERROR")
	c.want("AT+CICCID", "ERROR")
	c.want("AT+QNETDEVCTL=1,1,1", "ERROR")
	c.want("ATI", "OK", "openmifi", "modemsim", "Revision: modemsim-1.0")
	c.want("AT+GCAP", "OK", "+GCAP: +CGSM")
}

func TestQuectel(t *testing.T) {
	r := start(t, Config{Dialect: "quectel", IMEI: "866758042166286"})
	c := r.c
	c.want("AT+CGMI", "OK", "Quectel")
	c.want("AT+CGMM", "OK", "EC25")
	c.want("AT+CGMR", "OK", "EC25EFAR06A06M4G")
	c.want("AT+CGSN", "OK", "866758042166286")
	c.want("ATI", "OK", "Quectel", "EC25", "Revision: EC25EFAR06A06M4G")
	c.want("AT+QCCID", "OK", "+QCCID: 89001010123456789015")
	c.want("AT+CICCID", "ERROR")
	c.want("AT+CMEE?", "OK", "+CMEE: 1")

	c.want(`AT+QCFG="usbnet"`, "OK", `+QCFG: "usbnet",1`)
	c.ok(`AT+QCFG="usbnet",0`)
	c.want(`AT+QCFG="usbnet"`, "OK", `+QCFG: "usbnet",0`)
	c.want(`AT+QCFG="usbnet",7`, "+CME ERROR: 50")
	c.want(`AT+QCFG="nosuch"`, "ERROR")

	c.want("AT+CGDCONT?", "OK", `+CGDCONT: 1,"IPV4V6","","0.0.0.0",0,0,0,0`)
	c.ok(`AT+CGDCONT=1,"IP","apn.example"`)
	c.want("AT+CGPADDR=1", "OK", `+CGPADDR: 1,"0.0.0.0"`)
	c.ok("AT+CGEREP=2,1")

	// +CGACT alone does not bring the data interface up on an EC25.
	c.ok("AT+CGACT=1,1")
	c.expect("+CGEV: ME PDN ACT 1")
	if got := r.data.take(); len(got) != 0 {
		t.Errorf("DataUp after +CGACT: %q", got)
	}
	c.want("AT+QNETDEVCTL=?", "OK", "+QNETDEVCTL: (0,1,3),(1-15),(0,1)")
	c.want("AT+QNETDEVCTL?", "OK", "+QNETDEVCTL: 0,1,0,0")
	c.ok("AT+QNETDEVCTL=1,1,1")
	c.expect(`+QNETDEVSTATUS: 1,1,"IP",0`)
	if got := r.data.take(); !slices.Equal(got, []string{"up 1"}) {
		t.Errorf("DataUp after QNETDEVCTL: %q", got)
	}
	c.want("AT+QNETDEVCTL?", "OK", "+QNETDEVCTL: 1,1,1,1")
	c.want("AT+CGPADDR=1", "OK", `+CGPADDR: 1,"100.64.1.2"`)
	c.ok("AT+QNETDEVCTL=0,1,1")
	if got, want := c.urcs(), []string{"+CGEV: ME PDN DEACT 1", `+QNETDEVSTATUS: 1,0,"IP",0`}; !slices.Equal(got, want) {
		t.Errorf("disconnect URCs %q, want %q", got, want)
	}
	// QNETDEVCTL dials: it activates the context itself.
	c.ok("AT+QNETDEVCTL=1,1,0")
	c.expect("+CGEV: ME PDN ACT 1")
	if got := r.data.take(); !slices.Equal(got, []string{"down 1", "up 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
	c.want("AT+QNETDEVCTL=1,9,0", "+CME ERROR: 50")

	c.ok(`AT+QICSGP=2,3,"web","u","p",2`)
	c.want("AT+QICSGP=2", "OK", `+QICSGP: 3,"web","u","p",2`)
	c.want("AT+CGDCONT?", "OK", `+CGDCONT: 1,"IP","apn.example","0.0.0.0",0,0,0,0`, `+CGDCONT: 2,"IPV4V6","web","0.0.0.0",0,0,0,0`)
	c.want("AT+CGAUTH?", "OK", `+CGAUTH: 1,0,""`, `+CGAUTH: 2,2,"u"`)

	c.want("AT+QNWINFO", "OK", `+QNWINFO: "FDD LTE","00101","LTE BAND 3",1300`)
	c.want("AT+QCSQ", "OK", `+QCSQ: "LTE",-73,-93,150,-10`)
	c.ok(`AT+QCFG="nwscanmode",2,1`)
	c.want(`AT+QCFG="nwscanmode"`, "OK", `+QCFG: "nwscanmode",2`)
	c.want("AT+QNWINFO", "OK", `+QNWINFO: "WCDMA","00101","WCDMA 2100",10700`)
	c.want("AT+CEREG?", "OK", "+CEREG: 0,0")
	c.want("AT+CGREG?", "OK", "+CGREG: 0,1")
}

func TestQuectelSignalURC(t *testing.T) {
	sc := mustScenario(t, "at 1m signal 5\nat 2m coverage lost")
	r := start(t, Config{Dialect: "quectel", Scenario: sc})
	c := r.c
	c.ok(`AT+QINDCFG="csq",1`)
	c.want(`AT+QINDCFG="csq"`, "OK", `+QINDCFG: "csq",1`)
	r.clk.Advance(time.Minute)
	c.expect(`+QIND: "csq",5,99`)
	c.want("AT+CSQ", "OK", "+CSQ: 5,99")
	r.clk.Advance(time.Minute)
	c.expect(`+QIND: "csq",99,99`)
	c.want("AT+QCSQ", "OK", `+QCSQ: "NOSERVICE"`)
	c.want("AT+QNWINFO", "OK", "+QNWINFO: No Service")
}

// TestQuectelAutoConnect: QNETDEVCTL=3 dials again when coverage is back.
func TestQuectelAutoConnect(t *testing.T) {
	r := start(t, Config{Dialect: "quectel", Scenario: builtin(t, "coverage-flap")})
	c := r.c
	c.ok("AT+CGEREP=2,1")
	c.ok("AT+QNETDEVCTL=3,1,1")
	if got, want := c.urcs(), []string{"+CGEV: ME PDN ACT 1", `+QNETDEVSTATUS: 1,1,"IPV4V6",0`}; !slices.Equal(got, want) {
		t.Errorf("connect URCs %q, want %q", got, want)
	}
	r.clk.Advance(10 * time.Minute)
	if got, want := c.urcs(), []string{"+CGEV: NW PDN DEACT 1", `+QNETDEVSTATUS: 1,0,"IPV4V6",0`}; !slices.Equal(got, want) {
		t.Errorf("coverage lost URCs %q, want %q", got, want)
	}
	c.want("AT+QNETDEVCTL?", "OK", "+QNETDEVCTL: 3,1,1,0")
	r.clk.Advance(2 * time.Minute)
	if got, want := c.urcs(), []string{"+CGEV: ME PDN ACT 1", `+QNETDEVSTATUS: 1,1,"IPV4V6",0`}; !slices.Equal(got, want) {
		t.Errorf("coverage back URCs %q, want %q", got, want)
	}
	if got := r.data.take(); !slices.Equal(got, []string{"up 1", "down 1", "up 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
}

func TestSIMCom(t *testing.T) {
	r := start(t, Config{Dialect: "simcom"})
	c := r.c
	c.want("AT+CGMI", "OK", "SIMCOM INCORPORATED")
	c.want("AT+CGMM", "OK", "SIMCOM_SIM7600E-H")
	c.want("AT+CGMR", "OK", "+CGMR: LE20B04SIM7600M22")
	c.want("ATI", "OK", "Manufacturer: SIMCOM INCORPORATED", "Model: SIMCOM_SIM7600E-H",
		"Revision: LE20B04SIM7600M22", "IMEI: 356938035643809", "+GCAP: +CGSM")
	c.want("AT+CICCID", "OK", "+ICCID: 89001010123456789015")
	c.want("AT+QCCID", "ERROR")
	c.want("AT+SPIC", "OK", "+SPIC: 3,10,3,10")

	c.want("AT+CNMP?", "OK", "+CNMP: 2")
	c.want("AT+CPSI?", "OK", "+CPSI: LTE,Online,001-01,0x1A2D,27446255,257,EUTRAN-BAND3,1300,5,5,-100,-930,-730,15")
	c.ok("AT+CNMP=14")
	c.want("AT+CNMP?", "OK", "+CNMP: 14")
	c.want("AT+CPSI?", "OK", "+CPSI: WCDMA,Online,001-01,0x1A2D,27446255,WCDMA IMT 2000,123,10700,0,1.5,-73,33,52,500")
	c.want("AT+CEREG?", "OK", "+CEREG: 0,0")
	c.ok("AT+CNMP=13")
	c.want("AT+COPS?", "OK", `+COPS: 0,0,"Test PLMN 1-1",0`)
	c.want("AT+CNMP=99", "ERROR")
	c.ok("AT+CNMP=2")
	c.ok("AT+CFUN=4")
	c.want("AT+CPSI?", "OK", "+CPSI: NO SERVICE,Low Power Mode")
	c.ok("AT+CFUN=1")

	// The data call: the context comes up with its data path.
	c.want("AT$QCRMCALL=1,1", "OK", "$QCRMCALL: 1,V4", "$QCRMCALL: 1,V6")
	if got := r.data.take(); !slices.Equal(got, []string{"up 1"}) {
		t.Errorf("DataUp calls %q", got)
	}
	c.want("AT$QCRMCALL?", "OK", "$QCRMCALL: 1,V4", "$QCRMCALL: 1,V6")
	c.want("AT+CGPADDR=1", "OK", "+CGPADDR: 1,100.64.1.2,32.1.13.184.0.0.0.1.0.0.0.0.0.0.0.2")
	c.ok("AT$QCRMCALL=0,1")
	c.want("AT+CGACT?", "OK", "+CGACT: 1,0")
	c.ok(`AT+CGDCONT=2,"IP","b"`)
	c.ok("AT+CGACT=1,2")
	if got := r.data.take(); !slices.Equal(got, []string{"down 1", "up 2"}) {
		t.Errorf("DataUp calls %q", got)
	}
}

func TestSIMComSIMRemoved(t *testing.T) {
	sc := mustScenario(t, "at 1m sim absent\nat 2m sim inserted")
	r := start(t, Config{Dialect: "simcom", Scenario: sc})
	c := r.c
	c.ok("AT+CREG=1;+CGEREP=1")
	c.ok("AT+CGACT=1,1")
	c.expect("+CGEV: ME PDN ACT 1")
	r.clk.Advance(time.Minute)
	if got, want := c.urcs(), []string{"+CPIN: SIM REMOVED", "+CREG: 0", "+CGEV: ME DETACH"}; !slices.Equal(got, want) {
		t.Errorf("SIM removed: %q, want %q", got, want)
	}
	c.want("AT+CPIN?", "ERROR")
	r.clk.Advance(time.Minute)
	if got, want := c.urcs(), []string{"+CPIN: READY", "SMS DONE", "PB DONE", "+CREG: 1"}; !slices.Equal(got, want) {
		t.Errorf("SIM inserted: %q, want %q", got, want)
	}
}

func TestQuectelSIMRemovedWithPIN(t *testing.T) {
	sc := mustScenario(t, "at 1m sim absent\nat 2m sim inserted")
	r := start(t, Config{Dialect: "quectel", PIN: "4321", Scenario: sc})
	c := r.c
	c.ok(`AT+CPIN="4321"`)
	c.urcs()
	r.clk.Advance(time.Minute)
	c.expect("+CPIN: NOT READY")
	c.want("AT+CPIN?", "+CME ERROR: 10")
	r.clk.Advance(time.Minute)
	c.expect("+CPIN: SIM PIN")
	c.want("AT+CPIN?", "OK", "+CPIN: SIM PIN")
}
