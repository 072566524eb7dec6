package main

import (
	"log/slog"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Grace periods at shutdown: hotspotd needs a moment to stop sharing and
// remove its firewall rules; after that, everything left is killed.
const (
	termGrace = 5 * time.Second
	killGrace = 2 * time.Second
)

// shutdown stops every process, flushes and unmounts the persistent
// storage, and powers off or reboots (cmd is a LINUX_REBOOT_CMD_*). It
// does not return.
func shutdown(cmd int, stopServices func(), log *slog.Logger) {
	stopServices()
	log.Info("stopping all processes")
	// kill(-1) signals every process but the init itself.
	unix.Kill(-1, unix.SIGTERM)
	if !waitNoProcesses(termGrace) {
		log.Warn("processes left after SIGTERM: killing them", "grace", termGrace)
		unix.Kill(-1, unix.SIGKILL)
		waitNoProcesses(killGrace)
	}
	unix.Sync()
	if err := unix.Unmount(stateDir, 0); err != nil {
		// Something still holds it: read-only keeps it consistent.
		log.Warn("unmount state", "err", err)
		if err := unix.Mount("", stateDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			log.Error("remount state read-only", "err", err)
		}
	}
	unix.Sync()
	what := map[int]string{unix.LINUX_REBOOT_CMD_POWER_OFF: "power off", unix.LINUX_REBOOT_CMD_RESTART: "reboot"}[cmd]
	log.Info("system halted: " + what)
	if err := unix.Reboot(cmd); err != nil {
		log.Error("reboot syscall", "cmd", what, "err", err)
	}
	// The kernel panics if PID 1 exits: wait for the power to go.
	select {}
}

// waitNoProcesses waits until no user process but the init is left (the
// reaper collects them as they exit), or d has passed.
func waitNoProcesses(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if len(userProcesses()) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// userProcesses lists the pids of the processes other than the init that
// run a program: kernel threads have an empty command line, and so have
// zombies, which the reaper takes.
func userProcesses() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && len(cmdline) > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}
