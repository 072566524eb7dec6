package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/openmifi/openmifi/board"
)

// moduleDeps is a parsed modules.dep: module name to its file and the
// files of everything it depends on, the one to load last first.
type moduleDeps map[string]depLine

type depLine struct {
	file string
	deps []string // files
}

// modName is the kernel's name for a module file (as kmod derives it).
func modName(file string) string {
	base := path.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func parseModulesDep(r io.Reader) (moduleDeps, error) {
	deps := moduleDeps{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		file, rest, ok := strings.Cut(line, ":")
		if !ok || file == "" {
			return nil, fmt.Errorf("modules.dep:%d: %q is not \"file: deps\"", n, line)
		}
		deps[modName(file)] = depLine{file: file, deps: strings.Fields(rest)}
	}
	return deps, sc.Err()
}

// loadOrder returns the module files to insert for the board's modules,
// each after its dependencies, none twice.
func (d moduleDeps) loadOrder(want []board.Module) ([]modLoad, error) {
	var (
		order []modLoad
		seen  = map[string]bool{}
		errs  []error
	)
	add := func(file string, params []string) {
		if !seen[file] {
			seen[file] = true
			order = append(order, modLoad{file: file, params: strings.Join(params, " ")})
		}
	}
	for _, m := range want {
		l, ok := d[m.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("module %s: not in modules.dep", m.Name))
			continue
		}
		// modules.dep lists the dependencies to load last first.
		for i := len(l.deps) - 1; i >= 0; i-- {
			add(l.deps[i], nil)
		}
		add(l.file, m.Params)
	}
	return order, errors.Join(errs...)
}

type modLoad struct {
	file   string // relative to /lib/modules/VERSION
	params string
}
