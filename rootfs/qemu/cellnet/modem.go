package cellnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ModemConfig is one modem simulator (cmd/modemsim) for a QEMU board.
type ModemConfig struct {
	// Bin is the modemsim program (BuildModemsim).
	Bin string
	// Socket is the unix socket it listens on; QEMU's modem port
	// connects to it.
	Socket string
	// Dialect is the board's AT dialect.
	Dialect string
	// Scenario is a built-in scenario or a scenario file; "" for none
	// (coverage all along).
	Scenario string
	// Hook is run as "HOOK up|down CID" when the data path changes, to
	// flip the uplink NIC's link (qemuboot set-link); "" for none.
	Hook string
	// Verbose logs every AT command.
	Verbose bool
	// Log receives the simulator's log.
	Log io.Writer
}

// Modem is a running modem simulator.
type Modem struct {
	cmd  *exec.Cmd
	done chan error
}

// modemArgs is modemsim's command line: its contexts get the addresses
// the network's DHCP server hands out, so that the modem's report
// (+CGCONTRDP) and the uplink NIC agree.
func modemArgs(cfg ModemConfig) []string {
	gw := Gateway.Addr().String()
	args := []string{"-dialect", cfg.Dialect, "-unix", cfg.Socket,
		"-addr", netip.PrefixFrom(GuestAddr, Gateway.Bits()).String(), "-gw", gw, "-dns", gw}
	if cfg.Scenario != "" {
		args = append(args, "-scenario", cfg.Scenario)
	}
	if cfg.Hook != "" {
		args = append(args, "-hook", cfg.Hook)
	}
	if cfg.Verbose {
		args = append(args, "-v")
	}
	return args
}

// StartModem starts the simulator and returns once it listens on its
// socket (it prints the path when it does).
func StartModem(ctx context.Context, cfg ModemConfig) (*Modem, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	cmd := exec.Command(cfg.Bin, modemArgs(cfg)...)
	cmd.Stderr = cfg.Log
	cmd.SysProcAttr = DieWithParent()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("modem simulator: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("modem simulator: %w", err)
	}
	m := &Modem{cmd: cmd, done: make(chan error, 1)}
	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && sc.Text() == cfg.Socket {
				ok = true
				listening <- true
			}
		}
		if !ok {
			listening <- false
		}
		m.done <- cmd.Wait()
	}()
	select {
	case ok := <-listening:
		if !ok {
			err := <-m.done
			return nil, fmt.Errorf("modem simulator %s exited before listening: %v", cfg.Bin, err)
		}
	case <-ctx.Done():
		m.Close()
		return nil, fmt.Errorf("modem simulator: %w", ctx.Err())
	}
	return m, nil
}

// Close stops the simulator (SIGTERM, then SIGKILL after a grace
// period); it removes its socket itself.
func (m *Modem) Close() error {
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("modem simulator: %w", err)
		}
		return nil
	case <-time.After(stopGrace):
		m.cmd.Process.Kill()
		<-m.done
		return errors.New("modem simulator: killed after not stopping on SIGTERM")
	}
}

// BuildModemsim builds cmd/modemsim of the repository at repo into dir
// (for this machine, the host) and returns the program's path.
func BuildModemsim(ctx context.Context, repo, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build modemsim: %w", err)
	}
	bin := filepath.Join(dir, "modemsim")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/modemsim")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build modemsim: %w: %s", err, out)
	}
	return bin, nil
}
