// hotspotctl manages hotspotd from the serial console.
package main

import (
	"os"

	"github.com/openmifi/openmifi/internal/ctl"
)

func main() {
	os.Exit(ctl.Main(os.Args[1:], os.Stdout, os.Stderr))
}
