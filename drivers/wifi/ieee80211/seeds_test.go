package ieee80211

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz from the seeds in seeds_test.go")

// seedCorpus is every fuzz target's seed corpus, kept under testdata/fuzz
// in the format go test reads; TestSeedCorpus keeps the files in sync.
func seedCorpus(t testing.TB) map[string]map[string][]byte {
	beacon := unhex(t, stripComments(hostapdBeacon))
	assoc := unhex(t, stripComments(supplicantAssocReq))
	probe := unhex(t, stripComments(supplicantProbeReq))
	reassoc := unhex(t, stripComments(`
		20 00 3a 01 02 00 00 00 01 00 02 00 00 00 00 00 02 00 00 00 01 00 30 00
		31 04 05 00 02 00 00 00 02 00
		00 08 6f 70 65 6e 6d 69 66 69 01 04 02 04 0b 16
		30 14 01 00 00 0f ac 04 01 00 00 0f ac 04 01 00 00 0f ac 02 00 00`))
	auth := unhex(t, stripComments(`
		b0 00 3a 01 02 00 00 00 01 00 02 00 00 00 00 00 02 00 00 00 01 00 00 00
		00 00 01 00 00 00`))
	sae := unhex(t, stripComments(`
		b0 00 3a 01 02 00 00 00 01 00 02 00 00 00 00 00 02 00 00 00 01 00 00 00
		03 00 01 00 00 00 13 00 01 02 03 04 05 06 07 08`))
	deauth := unhex(t, stripComments(`
		c0 00 3a 01 02 00 00 00 01 00 02 00 00 00 00 00 02 00 00 00 01 00 40 00 03 00`))
	disassoc := unhex(t, stripComments(`
		a0 00 3a 01 02 00 00 00 01 00 02 00 00 00 00 00 02 00 00 00 01 00 50 00 08 00`))
	assocResp := unhex(t, stripComments(`
		10 00 3a 01 02 00 00 00 00 00 02 00 00 00 01 00 02 00 00 00 01 00 00 00
		11 04 00 00 01 c0 01 08 82 84 8b 96 0c 12 18 24 32 04 30 48 60 6c`))
	action := unhex(t, stripComments(`
		d0 00 3a 01 02 00 00 00 01 00 02 00 00 00 00 00 02 00 00 00 01 00 60 00 03 00 01 02`))
	rsnPSK := WPA2PSK(false).Marshal()
	rsnFull := (&RSN{
		Version: 1, GroupCipher: CipherCCMP,
		PairwiseCiphers: []Suite{CipherCCMP, CipherTKIP}, AKMs: []Suite{AKMPSK, AKMSAE},
		Capabilities: RSNCapMFPCapable, PMKIDs: [][PMKIDLen]byte{{1, 2, 3}},
		GroupMgmtCipher: CipherBIPCMAC128,
	}).Marshal()
	return map[string]map[string][]byte{
		"FuzzParseMgmt": {
			"hostapd-beacon":       beacon,
			"supplicant-assoc-req": assoc,
			"supplicant-probe-req": probe,
			"reassoc-req":          reassoc,
			"auth-open":            auth,
			"auth-sae":             sae,
			"deauth":               deauth,
			"disassoc":             disassoc,
			"assoc-resp":           assocResp,
			"action":               action,
			"truncated-header":     beacon[:20],
			"element-past-end":     assoc[:len(assoc)-1],
			"protected":            append([]byte{0xb0, 0x40}, auth[2:]...),
		},
		"FuzzParseElements": {
			"beacon-elements": beacon[36:],
			"assoc-elements":  assoc[28:],
			"lone-octet":      {0x00},
			"length-past-end": {0x00, 0x05, 'a'},
			"empty-elements":  {0x00, 0x00, 0xdd, 0x00},
		},
		"FuzzParseRSN": {
			"wpa2-psk":      rsnPSK,
			"full":          rsnFull,
			"version-only":  {0x01, 0x00},
			"count-too-big": {0x01, 0x00, 0x00, 0x0f, 0xac, 0x04, 0x05, 0x00, 0x00, 0x0f, 0xac, 0x04},
		},
	}
}

func TestSeedCorpus(t *testing.T) {
	corpus := seedCorpus(t)
	// The well-formed frame seeds must parse, or the fuzzer would start
	// from nothing but rejects.
	for name, b := range corpus["FuzzParseMgmt"] {
		_, err := ParseMgmt(b)
		bad := name == "truncated-header" || name == "element-past-end" || name == "protected"
		if (err != nil) != bad {
			t.Errorf("seed %s: parse error %v", name, err)
		}
	}
	for target, seeds := range corpus {
		dir := filepath.Join("testdata", "fuzz", target)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range seeds {
			path := filepath.Join(dir, name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if *updateSeeds {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale (err %v); run go test -run TestSeedCorpus -update-seeds", path, err)
			}
		}
	}
}
