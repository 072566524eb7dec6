package rootfs

// applets are the busybox applets linked into /bin: a shell and the tools
// a person at the serial console or a test expects, checked against
// Debian's busybox-static by the tests. Left out: busybox's init (ours is
// /init), its syslog reader (hotspotd's log is read with hotspotd-log), package managers,
// and servers nobody should start on a hotspot's LAN (telnetd, httpd).
var applets = []string{
	"[", "[[", "ash", "awk", "base64", "basename", "cat", "chgrp", "chmod", "chown",
	"clear", "cmp", "cp", "cut", "date", "dd", "df", "diff", "dirname", "dmesg",
	"du", "echo", "egrep", "env", "expr", "false", "fgrep", "find", "free", "grep",
	"gunzip", "gzip", "halt", "head", "hexdump", "hostname", "hwclock", "id",
	"ifconfig", "insmod", "ip", "ipneigh", "kill", "killall", "less", "ln", "ls",
	"lsmod", "md5sum", "microcom", "mkdir", "mke2fs", "mkfifo", "mknod", "mktemp",
	"modinfo", "modprobe", "more", "mount", "mv", "nc", "netstat", "nslookup", "od",
	"pidof", "ping", "ping6", "poweroff", "printf", "ps", "pwd", "readlink",
	"realpath", "reboot", "reset", "rm", "rmdir", "rmmod", "route", "sed", "seq",
	"setsid", "sh", "sha256sum", "sleep", "sort", "stat", "strings", "stty", "sync",
	"sysctl", "tail", "tar", "tee", "test", "time", "timeout", "top", "touch", "tr",
	"traceroute", "true", "tty", "udhcpc", "umount", "uname", "uniq", "unxz",
	"uptime", "usleep", "vi", "watch", "wc", "wget", "which", "xargs", "xxd", "xz",
	"xzcat", "yes", "zcat",
}
