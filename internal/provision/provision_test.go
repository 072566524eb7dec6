package provision

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSeedHotSpotSample(t *testing.T) {
	p, warnings, err := Load("310260", "testdata/seed-hotspot.xml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := HotSpot{
		Enabled:                 true,
		EntitlementRequired:     true,
		EntitlementDll:          `c:\windows\system32\MOEntitlement.dll`,
		EntitlementInterval:     86400 * time.Second,
		MaxUsers:                5,
		MaxBluetoothUsers:       7,
		PeerlessTimeout:         5 * time.Minute,
		PublicConnectionTimeout: 20 * time.Minute,
		MOHelpNumber:            "611",
		MOInfoLink:              "contoso.com/help",
		MOAppLink:               "app://12345678-9012-3456-7890-123456789012",
		MOHelpMessage:           "@HotSpotMOHelp.dll,-101",
		DedicatedConnections:    []string{"zzzConn1 310260", "zzzConn2 310260"},
	}
	if !reflect.DeepEqual(p.HotSpot, want) {
		t.Errorf("HotSpot =\n%+v\nwant\n%+v", p.HotSpot, want)
	}
	if len(p.Set) != 13 {
		t.Errorf("%d settings recorded as written, want 13", len(p.Set))
	}
	// The sample names connections it does not define: a warning offline.
	if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), `"zzzConn1 310260", "zzzConn2 310260" is not defined`) {
		t.Errorf("warnings = %v", warnings)
	}
	if _, err := p.SharingConnections(); err == nil {
		t.Error("SharingConnections with undefined dedicated connections: no error")
	}
}

func TestSeedCDMASample(t *testing.T) {
	p, warnings, err := Load("310260", "testdata/seed-cdma.xml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}
	if !p.HotSpot.Enabled || p.HotSpot.EntitlementRequired {
		t.Errorf("Enabled=%v EntitlementRequired=%v, want true false", p.HotSpot.Enabled, p.HotSpot.EntitlementRequired)
	}
	if got := p.HotSpot.TetheringNAIConnection; got != "TetheringNAIConn 310260" {
		t.Errorf("TetheringNAIConnection = %q", got)
	}
	want := Connection{
		Name: "TetheringNAIConn 310260", Version: 1, TetheringNAI: true,
		IPType: "IP", AuthType: "none", Pos: Pos{"testdata/seed-cdma.xml", 2},
	}
	if got := p.Connections["TetheringNAIConn 310260"]; !reflect.DeepEqual(got, want) {
		t.Errorf("connection =\n%+v\nwant\n%+v", got, want)
	}
	conns, err := p.SharingConnections()
	if err != nil || len(conns) != 1 || conns[0].Name != "TetheringNAIConn 310260" {
		t.Errorf("SharingConnections = %v, %v", conns, err)
	}
}

func TestMVIDLeftAsWrittenWhenUnknown(t *testing.T) {
	p, _, err := Load("", "testdata/seed-cdma.xml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SharingConnections(); err != nil {
		t.Errorf("names with an unexpanded $(__MVID) still match each other: %v", err)
	}
}

func TestTwoFilesMakeOneProvisioning(t *testing.T) {
	dir := t.TempDir()
	conns := write(t, dir, "conns.xml", `<Settings Path="Connections">
  <Setting Name="Cellular/zzzConn1 $(__MVID)/APN" Value="internet.contoso" />
  <Setting Name="Cellular/zzzConn1 $(__MVID)/UserName" Value="web" />
  <Setting Name="Cellular/zzzConn1 $(__MVID)/Password" Value="s3cret" />
  <Setting Name="Cellular/zzzConn2 $(__MVID)/APN" Value="tether.contoso" />
  <Setting Name="Cellular/zzzConn2 $(__MVID)/IPType" Value="ipv4v6" />
  <Setting Name="Cellular/zzzConn2 $(__MVID)/AuthType" Value="PAP" />
  <Setting Name="Cellular/zzzConn2 $(__MVID)/UserName" Value="t" />
</Settings>`)
	p, warnings, err := Load("00101", "testdata/seed-hotspot.xml", conns)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Load: %v, warnings %v", err, warnings)
	}
	got, err := p.SharingConnections()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "zzzConn1 00101" || got[1].Name != "zzzConn2 00101" {
		t.Fatalf("SharingConnections = %+v", got)
	}
	if got[0].AuthType != "chap" || got[0].Password != "s3cret" || got[0].APN != "internet.contoso" {
		t.Errorf("conn1 = %+v", got[0])
	}
	if got[1].AuthType != "pap" || got[1].IPType != "IPV4V6" {
		t.Errorf("conn2 = %+v", got[1])
	}
	if s := fmt.Sprintf("%v %+v %#v", got[0], got[0], got[0]); strings.Contains(s, "s3cret") {
		t.Errorf("password printed: %s", s)
	}
}

// base is a valid provisioning with every HotSpot setting, one per line,
// so that a test case can replace line n.
var base = []string{
	`<Settings Path="HotSpot">`,
	`<Setting Name="Enabled" Value="1" />`,
	`<Setting Name="EntitlementRequired" Value="1" />`,
	`<Setting Name="EntitlementDll" Value="/usr/lib/openmifi/entitlement" />`,
	`<Setting Name="EntitlementInterval" Value="3600" />`,
	`<Setting Name="MaxUsers" Value="8" />`,
	`<Setting Name="MaxBluetoothUsers" Value="1" />`,
	`<Setting Name="PeerlessTimeout" Value="120" />`,
	`<Setting Name="PublicConnectionTimeout" Value="60" />`,
	`<Setting Name="MOHelpNumber" Value="+1 (800) 555-0100" />`,
	`<Setting Name="MOInfoLink" Value="https://contoso.com/help" />`,
	`<Setting Name="MOAppLink" Value="app://12345678-9012-3456-7890-123456789012" />`,
	`<Setting Name="MOHelpMessage" Value="@HotSpotMOHelp.dll,-101" />`,
	`<Setting Name="EntitlementURL" Value="https://entitlement.contoso.com/check" />`,
	`</Settings>`,
}

func TestBaseIsValid(t *testing.T) {
	p, warnings, err := Load("", write(t, t.TempDir(), "base.xml", strings.Join(base, "\n")))
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Load: %v %v", err, warnings)
	}
	if p.HotSpot.MaxUsers != 8 || p.HotSpot.PeerlessTimeout != 2*time.Hour || p.HotSpot.EntitlementInterval != time.Hour {
		t.Errorf("HotSpot = %+v", p.HotSpot)
	}
}

func TestRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		line    int    // line of base to replace (1-based), 0 to append before </Settings>
		text    string // the replacement
		want    string // the whole expected first error
		wantErr bool
	}{
		{"out of range high", 6, `<Setting Name="MaxUsers" Value="9" />`,
			`f.xml:6: HotSpot/MaxUsers: "9" is out of range (allowed: 1 to 8)`, true},
		{"out of range low", 6, `<Setting Name="MaxUsers" Value="0" />`,
			`f.xml:6: HotSpot/MaxUsers: "0" is out of range (allowed: 1 to 8)`, true},
		{"bluetooth", 7, `<Setting Name="MaxBluetoothUsers" Value="8" />`,
			`f.xml:7: HotSpot/MaxBluetoothUsers: "8" is out of range (allowed: 1 to 7)`, true},
		{"interval", 5, `<Setting Name="EntitlementInterval" Value="604801" />`,
			`f.xml:5: HotSpot/EntitlementInterval: "604801" is out of range (allowed: 0 to 604800 seconds)`, true},
		{"malformed number", 6, `<Setting Name="MaxUsers" Value="five" />`,
			`f.xml:6: HotSpot/MaxUsers: "five" is not a whole number (allowed: 1 to 8)`, true},
		{"signed number", 6, `<Setting Name="MaxUsers" Value="+5" />`,
			`f.xml:6: HotSpot/MaxUsers: "+5" is not a whole number (allowed: 1 to 8)`, true},
		{"huge number", 5, `<Setting Name="EntitlementInterval" Value="99999999999999999999999" />`,
			`f.xml:5: HotSpot/EntitlementInterval: "99999999999999999999999" is out of range (allowed: 0 to 604800 seconds)`, true},
		{"empty number", 6, `<Setting Name="MaxUsers" Value="" />`,
			`f.xml:6: HotSpot/MaxUsers: "" is empty, not a whole number (allowed: 1 to 8)`, true},
		{"bool", 2, `<Setting Name="Enabled" Value="yes" />`,
			`f.xml:2: HotSpot/Enabled: "yes" is not 0 or 1 (allowed: 0 or 1)`, true},
		{"peerless zero", 8, `<Setting Name="PeerlessTimeout" Value="0" />`,
			`f.xml:8: HotSpot/PeerlessTimeout: "0" is not supported: a time-out is required (allowed: 1 to 120 minutes)`, true},
		{"public zero", 9, `<Setting Name="PublicConnectionTimeout" Value="0" />`,
			`f.xml:9: HotSpot/PublicConnectionTimeout: "0" is not supported: a time-out is required (allowed: 1 to 60 minutes)`, true},
		{"public high", 9, `<Setting Name="PublicConnectionTimeout" Value="61" />`,
			`f.xml:9: HotSpot/PublicConnectionTimeout: "61" is out of range (allowed: 1 to 60 minutes)`, true},
		{"unknown name", 0, `<Setting Name="MaxUser" Value="5" />`,
			`f.xml:15: HotSpot/MaxUser: unknown setting (known: DedicatedConnections, Enabled, EntitlementDll, EntitlementInterval, EntitlementRequired, EntitlementURL, MOAppLink, MOHelpMessage, MOHelpNumber, MOInfoLink, MaxBluetoothUsers, MaxUsers, PeerlessTimeout, PublicConnectionTimeout, TetheringNAIConnection)`, true},
		{"duplicate", 0, `<Setting Name="MaxUsers" Value="5" />`,
			`f.xml:15: HotSpot/MaxUsers: duplicate setting (first written at f.xml:6)`, true},
		{"entitlement dll missing", 4, ``,
			`f.xml:3: HotSpot/EntitlementDll: required when EntitlementRequired is 1 (its default); set EntitlementRequired to 0 for unlocked devices (allowed: a path to the entitlement plugin)`, true},
		{"entitlement dll empty", 4, `<Setting Name="EntitlementDll" Value=" " />`,
			`f.xml:4: HotSpot/EntitlementDll: required when EntitlementRequired is 1 (its default); set EntitlementRequired to 0 for unlocked devices (allowed: a path to the entitlement plugin)`, true},
		{"app link", 12, `<Setting Name="MOAppLink" Value="app://not-a-guid" />`,
			`f.xml:12: HotSpot/MOAppLink: "app://not-a-guid" is not an app:// link with a GUID (allowed: app://<GUID>, e.g. app://12345678-9012-3456-7890-123456789012)`, true},
		{"help message", 13, `<Setting Name="MOHelpMessage" Value="HotSpotMOHelp.dll,101" />`,
			`f.xml:13: HotSpot/MOHelpMessage: "HotSpotMOHelp.dll,101" is not a string reference`, true},
		{"info link", 11, `<Setting Name="MOInfoLink" Value="ftp://contoso.com" />`,
			`f.xml:11: HotSpot/MOInfoLink: "ftp://contoso.com" is not an http or https URL (allowed: an http(s) link, e.g. contoso.com/help or https://contoso.com/help)`, true},
		{"phone", 10, `<Setting Name="MOHelpNumber" Value="call us" />`,
			`f.xml:10: HotSpot/MOHelpNumber: "call us" is not a phone number (allowed: a phone number: digits, spaces and + * # - ( ), at most 32 characters)`, true},
		{"entitlement url", 14, `<Setting Name="EntitlementURL" Value="entitlement.contoso.com" />`,
			`f.xml:14: HotSpot/EntitlementURL: "entitlement.contoso.com" is not an http or https URL (allowed: an http:// or https:// URL)`, true},
		{"dedicated empty entry", 0, `<Setting Name="DedicatedConnections" Value="a;;b" />`,
			`f.xml:15: HotSpot/DedicatedConnections: "a;;b" has an empty name between ';' (allowed: connection names separated by ';')`, true},
		{"unknown macro", 0, `<Setting Name="DedicatedConnections" Value="a $(__IMSI)" />`,
			`f.xml:15: HotSpot/DedicatedConnections: unknown macro $(__IMSI) (the only one defined is $(__MVID))`, true},
		{"unknown path", 0, `</Settings><Settings Path="Wifi"><Setting Name="x" Value="1"/>`,
			`f.xml:15: unknown settings path "Wifi" (allowed: HotSpot, Connections)`, true},
		{"setting outside", 0, `</Settings><Setting Name="MaxUsers" Value="5"/><Settings Path="HotSpot">`,
			`f.xml:15: <Setting> outside a <Settings> block`, true},
		{"extra attribute", 0, `<Setting Name="MaxUsers" Value="5" Default="3"/>`,
			`f.xml:15: <Setting> takes exactly the attributes Name and Value`, true},
		{"missing value attribute", 0, `<Setting Name="MaxUsers"/>`,
			`f.xml:15: <Setting> takes exactly the attributes Name and Value`, true},
		{"text inside", 0, `MaxUsers=5`,
			`f.xml:15: unexpected text "MaxUsers=5" inside <Settings>`, true},
		{"nested element", 0, `<Setting Name="MaxUsers" Value="5"><Value>3</Value></Setting>`,
			`f.xml:15: unexpected element <Value> inside <Settings>`, true},
		{"malformed xml", 0, `<Setting Name="MaxUsers" Value="5">`,
			`f.xml:16: malformed XML: element <Setting> closed by </Settings>`, true},
		{"connection field", 0, `</Settings><Settings Path="Connections"><Setting Name="Cellular/a/Apn" Value="x"/>`,
			`f.xml:15: Connections/Cellular/a/Apn: unknown connection field "Apn" (known: Version, UserName, Password, TetheringNAI, APN, IPType, AuthType)`, true},
		{"connection shape", 0, `</Settings><Settings Path="Connections"><Setting Name="Wifi/a/APN" Value="x"/>`,
			`f.xml:15: Connections/Wifi/a/APN: unknown connection setting (allowed: Cellular/<connection name>/<field>)`, true},
		{"apn", 0, `</Settings><Settings Path="Connections"><Setting Name="Cellular/a/APN" Value="bad apn"/>`,
			`f.xml:15: Connections/Cellular/a/APN: "bad apn" is not an APN (allowed: at most 100 characters: labels of letters, digits and '-' separated by '.')`, true},
		{"ip type", 0, `</Settings><Settings Path="Connections"><Setting Name="Cellular/a/IPType" Value="IPv5"/>`,
			`f.xml:15: Connections/Cellular/a/IPType: "IPv5" is not an IP type (allowed: IP, IPV6, IPV4V6)`, true},
		{"password hidden", 0, `</Settings><Settings Path="Connections"><Setting Name="Cellular/a/Password" Value="pa"ss"/>`,
			`f.xml:15: Connections/Cellular/a/Password: not a valid password (allowed: at most 127 characters, no quotes or line breaks)`, true},
		{"chap without user", 0, `</Settings><Settings Path="Connections"><Setting Name="Cellular/a/AuthType" Value="chap"/>`,
			`f.xml:15: Connections/Cellular/a/AuthType: authentication chap needs a UserName`, true},
		{"dedicated undefined is a warning", 0, `<Setting Name="DedicatedConnections" Value="zzzConn1" />`,
			`f.xml:15: warning: HotSpot/DedicatedConnections: dedicated connection "zzzConn1" is not defined: sharing would have no connection to use`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := append([]string(nil), base...)
			if tc.line == 0 {
				lines = append(lines[:len(lines)-1], tc.text, lines[len(lines)-1])
			} else {
				lines[tc.line-1] = tc.text
			}
			text := strings.Join(lines, "\n")
			if tc.name == "password hidden" {
				text = strings.Replace(text, `Value="pa"ss"`, `Value="pa&quot;ss"`, 1)
			}
			f := write(t, t.TempDir(), "f.xml", text)
			_, warnings, err := Load("", f)
			var got string
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error; warnings %v", warnings)
				}
				var p *Problem
				if !errors.As(err, &p) {
					t.Fatalf("error %v is not a *Problem", err)
				}
				got = p.Error()
			} else {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if len(warnings) != 1 {
					t.Fatalf("warnings = %v", warnings)
				}
				got = warnings[0].Error()
			}
			got = strings.ReplaceAll(got, f, "f.xml")
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if strings.Contains(err2s(err), "pa\"ss") {
				t.Errorf("password in error: %v", err)
			}
		})
	}
}

func TestEveryErrorIsReported(t *testing.T) {
	f := write(t, t.TempDir(), "f.xml", `<Settings Path="HotSpot">
<Setting Name="MaxUsers" Value="0" />
<Setting Name="PeerlessTimeout" Value="0" />
<Setting Name="Bogus" Value="1" />
</Settings>`)
	_, _, err := Load("", f)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{":2: HotSpot/MaxUsers", ":3: HotSpot/PeerlessTimeout", ":4: HotSpot/Bogus", "HotSpot/EntitlementDll: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestMissingFile(t *testing.T) {
	_, _, err := Load("", filepath.Join(t.TempDir(), "nope.xml"))
	if err == nil || !strings.Contains(err.Error(), "nope.xml") {
		t.Errorf("err = %v", err)
	}
}

func TestOversizedFile(t *testing.T) {
	big := `<Settings Path="HotSpot">` + strings.Repeat(" ", maxFileSize) + `</Settings>`
	_, err := Parse("big.xml", strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}

func TestWrapperElement(t *testing.T) {
	entries, err := Parse("w.xml", strings.NewReader(`<?xml version="1.0"?>
<CustomSettings><Settings Path="HotSpot"><Setting Name="Enabled" Value="0"/></Settings></CustomSettings>`))
	if err != nil || len(entries) != 1 || entries[0].Name != "Enabled" || entries[0].Pos.Line != 2 {
		t.Errorf("entries %+v, err %v", entries, err)
	}
}

func err2s(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
