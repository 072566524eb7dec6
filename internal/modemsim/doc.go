// Package modemsim simulates a cellular modem's AT command port, so that
// the modem driver, hotspotd and the QEMU boards can be tested against
// something that behaves like the real thing: stateful, noisy, slow when
// asked to be, and able to lose coverage, drop contexts or vanish from the
// USB bus on a script.
//
// A Modem is made by New and served with Serve over any stream (a pty
// master, a net.Conn, a net.Pipe), ListenPTY (a pseudo-terminal behind a
// stable symlink), ListenUnix or ListenTCP (for QEMU's serial chardev).
// Its state is shared by every stream it serves.
//
// # What it speaks
//
// V.250: AT, E, V, Q0, Z, &F, &W, &C, &D, I, S<n>, D and A (NO CARRIER),
// A/, command lines with several commands ("AT+CMEE=2;+CREG=2"), echo on
// by default, backspace editing, text before "AT" ignored, lines longer
// than 1024 bytes answered ERROR. An unknown command or a malformed line
// is ERROR whatever +CMEE says; a known command with bad parameters, or
// one the SIM or network state refuses, is a 27.007 error printed as
// +CMEE asks: ERROR, "+CME ERROR: 10" or "+CME ERROR: SIM not inserted".
//
// 3GPP TS 27.007: +CGMI/+GMI, +CGMM/+GMM, +CGMR/+GMR, +CGSN/+GSN, +CIMI,
// +GCAP, +CPAS, +CSCS, +IPR, +IFC, +CMEE, +CPIN (PIN, three tries, then
// PUK and a new PIN, ten tries, then a blocked SIM), +CPINR, +CFUN (0, 1,
// 4; AT+CFUN=1,1 resets the modem: OK, then the port is gone for
// Config.ResetTime), +CREG, +CGREG and +CEREG (n = 0, 1, 2: stat, then
// "lac","ci",AcT), +COPS (read; set modes 0 to 4 with formats 0 to 2;
// "=?" lists the network and a forbidden one and takes Config.ScanTime),
// +CSQ, +CESQ, +CGATT, +CGDCONT, +CGAUTH, +CGACT, +CGPADDR, +CGCONTRDP
// (address.mask, gateway, two DNS servers, one line per address family),
// +CGPIAF, +CGEREP and its +CGEV URCs as release 10 and later print them:
// "ME PDN ACT <cid>", "ME PDN DEACT <cid>", "NW PDN DEACT <cid>",
// "ME DETACH"; on a GSM or UMTS network a network deactivation is the
// older "NW DEACT <PDP_type>,<PDP_addr>,<cid>". Registration URCs follow
// +CREG/+CGREG/+CEREG n on every change; on GSM and UMTS +CEREG reports 0.
//
// # Dialects
//
// generic: the commands above; identity openmifi / modemsim; +CCID and
// +ICCID; +CMEE 0 at power-on; no URC on boot, SIM unlock or removal; no
// context defined out of the box; the data path of a context follows
// +CGACT.
//
// quectel (EC25/EG25): Quectel / EC25 / EC25EFAR06A06M4G; +CMEE 1 at
// power-on; cid 1 (IPV4V6, empty APN) defined; +QCCID;
// AT+QCFG="usbnet"[,0-3] (1, ECM, by default) and "nwscanmode";
// AT+QNETDEVCTL=<op>,<cid>[,<urc_en>] (0 disconnect, 1 connect, 3
// auto-connect, which dials again when service returns and 5 s after a
// network deactivation) with +QNETDEVSTATUS: <cid>,<state>,"<type>",0
// URCs; the data path follows QNETDEVCTL, not +CGACT alone; +QINDCFG
// ("csq" gives +QIND: "csq",<rssi>,<ber> on a change); +QNWINFO; +QCSQ;
// +QPINC; +QICSGP. Boot after a reset: RDY, +CFUN: 1, +CPIN: <state>,
// +QUSIM: 1, +QIND: SMS DONE, +QIND: PB DONE (the last two also after the
// PIN); a pulled SIM: +CPIN: NOT READY.
//
// simcom (SIM7600): SIMCOM INCORPORATED / SIMCOM_SIM7600E-H, +CGMR with
// its "+CGMR: " prefix, ATI with IMEI; cid 1 defined; AT+CICCID (answered
// +ICCID:); AT+CNMP (2 automatic, 13 GSM, 14 WCDMA, 38 LTE...); AT+CPSI?;
// AT$QCRMCALL; AT+SPIC; +CGPADDR addresses unquoted. Boot: RDY,
// +CPIN: <state>, SMS DONE, PB DONE; a pulled SIM: +CPIN: SIM REMOVED.
//
// # The network
//
// One cell of the 3GPP test network 001/01 ("Test PLMN 1-1"), LAC/TAC
// 1A2D, on the technology of Config.Tech (LTE by default); +COPS=? also
// lists a forbidden network, 001/02. Registration is home (or roaming,
// Config.Roaming) as soon as the SIM is ready and the radio on, or after
// Config.RegisterDelay of searching. Context cid gets the addresses of
// Config.Lease (DefaultLease: 100.64.cid.2/30, gateway 100.64.cid.1, DNS
// 100.64.0.53 and .54; 2001:db8:0:cid::2/64, DNS 2001:db8::53) and the
// APN it asked for, or "internet". Config.MaxActive makes a modem limited
// to that many active contexts.
//
// # Data path
//
// Config.DataUp is told when a context's data path comes up or goes down
// (activation, deactivation by command, by the network, by coverage loss
// or reset); cmd/modemsim turns it into "ip link set IFACE up|down".
//
// # Scenarios
//
// A scenario is a text file, one step a line; '#' starts a comment line
// (or a trailing comment after a space). A step is an event, optionally
// preceded by a time:
//
//	EVENT                 the state at power-on (no time)
//	at DURATION EVENT     once, DURATION after New
//	every DURATION EVENT  repeatedly (also written "EVENT every DURATION")
//
// Durations are Go durations: 500ms, 90s, 10m, 1h30m. Times run on
// Config.Clock, so a test with a clock.Fake plays "coverage lost at
// 10 minutes" in microseconds. Events:
//
//	coverage lost|back     no network (searching, +CSQ 99,99; contexts
//	                       deactivated with +CGEV: NW PDN DEACT, data
//	                       path down) / network back (registered again;
//	                       contexts stay down until the host, or quectel
//	                       auto-connect, brings them up)
//	nw-deact CID           the network deactivates context CID
//	sim locked|puk|ready   the SIM's state at power-on (locked uses
//	                       Config.PIN, or 1234)
//	sim absent|inserted    the SIM pulled out / put back
//	slow DURATION [CMD]    commands take DURATION; CMD is a prefix of
//	                       "+COPS", "+COPS?", "+COPS=", "+COPS=?" forms;
//	                       the longest matching rule wins
//	garbage                binary noise on the line
//	echo on|off|stuck      echo turned on or off behind the host's back
//	                       (without a time: the power-on default); stuck:
//	                       ATE0 answers OK and echo stays on
//	port gone DURATION     the port disappears (the pty closes and its
//	                       link goes away) and comes back after DURATION,
//	                       powered on afresh, with the dialect's boot URCs
//	reset                  the same, for Config.ResetTime
//	hang DURATION          the modem reads and ignores everything
//	signal RSSI            +CSQ rssi 0..31
//	act gsm|umts|lte       the network's technology
//	roaming on|off         registered as roaming (5) or home (1)
//	urc TEXT               an unsolicited line, as it is
//
// Built-in scenarios (see Builtins): sim-locked, no-coverage,
// coverage-flap (lost at 10m, back at 12m), nw-deact (cid 1 at 5m), slow
// (1s for everything, 10s for +CGACT=, 30s for +COPS=?), garbage (every
// 30s), echo (stuck), port-flap (gone at 20m for 5s), hang (at 5m for 1m).
package modemsim
