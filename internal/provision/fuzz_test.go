package provision

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes through the whole reading path: whatever
// an operator file holds must give entries or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data string) {
		entries, _ := Parse("fuzz.xml", strings.NewReader(data))
		p, warnings, err := Build(entries, "00101")
		if p == nil {
			t.Fatal("Build returned no provisioning")
		}
		for _, w := range warnings {
			if !w.Warning {
				t.Errorf("warning not marked as one: %v", w)
			}
		}
		if err == nil {
			if _, err := p.SharingConnections(); err != nil && len(warnings) == 0 {
				t.Errorf("unresolvable connections without a warning: %v", err)
			}
		}
	})
}
