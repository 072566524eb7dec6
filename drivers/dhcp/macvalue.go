package dhcp

import (
	"log/slog"
	"net"
)

// macValue logs a hardware address in its usual form, formatted only when
// the line is written.
type macValue []byte

func (m macValue) LogValue() slog.Value { return slog.StringValue(net.HardwareAddr(m).String()) }
