package sharing

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// State is what the user sees of internet sharing.
type State int

const (
	Unavailable State = iota // the operator has not enabled sharing (Enabled=0)
	Off
	CheckingEntitlement
	Starting
	On
	Stopping
)

var stateNames = [...]string{"unavailable", "off", "checking entitlement", "starting", "on", "stopping"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// Reason says why sharing is off.
type Reason int

const (
	ReasonNone                   Reason = iota // not turned on since start
	ReasonUser                                 // the user turned it off
	ReasonPeerless                             // no client for PeerlessTimeout
	ReasonNoPublicConnection                   // uplink down for PublicConnectionTimeout
	ReasonEntitlementFailed                    // ENTITLEMENT_FAILED
	ReasonEntitlementUnavailable               // ENTITLEMENT_UNAVAILABLE, or the plugin could not answer
	ReasonStartFailure                         // a driver failed, or no connection to share
	ReasonInvalidProvisioning                  // the operator provisioning does not validate
	ReasonShutdown                             // hotspotd is stopping
)

var reasonNames = [...]string{
	"", "user", "peerless timeout", "no public connection", "entitlement failed",
	"entitlement unavailable", "start failure", "invalid provisioning", "shutdown",
}

func (r Reason) String() string {
	if r < 0 || int(r) >= len(reasonNames) {
		return fmt.Sprintf("Reason(%d)", int(r))
	}
	return reasonNames[r]
}

func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Reason) UnmarshalText(b []byte) error {
	for i, n := range reasonNames {
		if n == string(b) {
			*r = Reason(i)
			return nil
		}
	}
	return fmt.Errorf("unknown reason %q", b)
}

// Help is the operator's help for the user, chosen for the situation.
type Help struct {
	Number   string `json:"number,omitempty"`    // MOHelpNumber: "call <number> for help"
	InfoLink string `json:"info_link,omitempty"` // MOInfoLink
	AppLink  string `json:"app_link,omitempty"`  // MOAppLink
	Message  string `json:"message,omitempty"`   // MOHelpMessage, resolved
}

// Station is a Wi-Fi client associated with the access point.
type Station struct {
	MAC        net.HardwareAddr
	SignalDBm  int
	RxRateKbps int // rate we receive from it
	TxRateKbps int // rate we send to it
}

// Client is one row of the client list: a station, its lease and its
// traffic.
type Client struct {
	MAC       string     `json:"mac"`
	Addr      netip.Addr `json:"addr,omitzero"`
	Hostname  string     `json:"hostname,omitempty"`
	Joined    time.Time  `json:"joined,omitzero"`
	SignalDBm int        `json:"signal_dbm,omitempty"`
	Counters
}

// UplinkStatus is the public connection as last reported.
type UplinkStatus struct {
	Up         bool   `json:"up"`
	DownReason string `json:"down_reason,omitempty"`
	UplinkInfo
}

// Status is a snapshot for hotspotctl and any other UI.
type Status struct {
	State  State     `json:"state"`
	Reason Reason    `json:"reason"`          // why off; ReasonNone otherwise
	Error  string    `json:"error,omitempty"` // detail of the last failure
	Help   *Help     `json:"help,omitempty"`
	Since  time.Time `json:"since"`

	SSID     string       `json:"ssid"`
	MaxUsers int          `json:"max_users"`
	Uplink   UplinkStatus `json:"uplink"`
	Clients  []Client     `json:"clients"`
	Total    Counters     `json:"total"`
	// Warnings are problems that do not stop sharing: a user settings
	// file that was corrupt and set aside, counters that could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// String renders the status for a person at the serial console.
func (s Status) String() string {
	var b []byte
	line := func(format string, args ...any) { b = fmt.Appendf(b, format+"\n", args...) }
	state := s.State.String()
	if s.State == Off && s.Reason != ReasonNone {
		state += " (" + s.Reason.String() + ")"
	}
	line("sharing:  %s since %s", state, s.Since.Format(time.RFC3339))
	if s.Error != "" {
		line("error:    %s", s.Error)
	}
	if h := s.Help; h != nil {
		if h.Message != "" {
			line("operator: %s", h.Message)
		}
		if h.Number != "" {
			line("help:     call %s for help", h.Number)
		}
		if h.InfoLink != "" {
			line("info:     %s", h.InfoLink)
		}
		if h.AppLink != "" {
			line("app:      %s", h.AppLink)
		}
	}
	if s.State == Unavailable {
		return string(b)
	}
	line("wifi:     %q, at most %d clients", s.SSID, s.MaxUsers)
	u := s.Uplink
	if u.Up {
		sig := ""
		if u.SignalDBm != 0 {
			sig = fmt.Sprintf(", %d dBm (%d/5)", u.SignalDBm, u.SignalBars)
		}
		line("uplink:   up on %s, %s %s%s", u.Interface, u.Operator, u.Technology, sig)
	} else {
		reason := u.DownReason
		if reason == "" {
			reason = "no public connection"
		}
		line("uplink:   down (%s)", reason)
	}
	if s.State == On {
		line("clients:  %d, %s up, %s down", len(s.Clients), bytes(s.Total.UpBytes), bytes(s.Total.DownBytes))
	}
	for _, w := range s.Warnings {
		line("warning:  %s", w)
	}
	return string(b)
}

func bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// MarshalJSON keeps the client list an array even when empty, which is
// kinder to scripts.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	if s.Clients == nil {
		s.Clients = []Client{}
	}
	return json.Marshal(plain(s))
}
