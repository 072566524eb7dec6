package wpa

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// MaxAttempts is how many times a message of a handshake is sent, first
// transmission included, before the station is given up (the default of
// dot11RSNAConfigPairwiseUpdateCount and GroupUpdateCount).
const MaxAttempts = 4

// Errors of Handle, RekeyGroup and NewHandshake; test them with errors.Is.
var (
	// ErrMIC: the frame's MIC does not verify. After message 1 this is
	// what a station with the wrong passphrase sends.
	ErrMIC = errors.New("EAPOL-Key MIC mismatch")
	// ErrReplay: the replay counter is not the one of the message
	// outstanding (a replayed, stale or forged frame).
	ErrReplay = errors.New("EAPOL-Key replay counter mismatch")
	// ErrUnexpected: the frame is not the message this state waits for.
	ErrUnexpected = errors.New("unexpected EAPOL-Key frame")
	// ErrRSNE: message 2 carries an RSN element that differs from the
	// association request's. It ends the handshake (Step.Deauth).
	ErrRSNE = errors.New("RSN element of message 2 differs from the association request")
	// ErrFailed: the handshake has ended in failure; nothing is accepted.
	ErrFailed = errors.New("handshake failed")
	// ErrConfig: NewHandshake or RekeyGroup got unusable keys or elements.
	ErrConfig = errors.New("invalid handshake configuration")
)

// Config is what the AP knows before a station arrives. The Handshake keeps
// its own copies of the slices.
type Config struct {
	PMK  []byte           // 32 bytes (see PMK)
	AA   net.HardwareAddr // the AP's (BSSID) address
	RSNE []byte           // our RSN element with its header, exactly as in the beacon
	GTK  []byte           // current group key: 16 bytes (CCMP)
	// GTKIndex is the key ID of GTK, 1 to 3.
	GTKIndex int
	// GTKRSC is the current transmit packet number of GTK, sent in
	// message 3 so the station accepts no older group frame; 0 for a
	// fresh key.
	GTKRSC uint64
	// Rand supplies the ANonce; nil means crypto/rand. Tests pass fixed
	// bytes.
	Rand io.Reader
}

// State is where a Handshake stands.
type State int

// States of a Handshake, in the order a successful one goes through them.
const (
	StateIdle       State = iota // created; Start not called yet
	StateWaitMsg2                // message 1 sent
	StateWaitMsg4                // message 3 sent
	StateDone                    // pairwise key installed, station authorized
	StateWaitGroup2              // group message 1 sent (station stays authorized)
	StateFailed                  // given up; deauthenticate
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateWaitMsg2:
		return "wait-msg2"
	case StateWaitMsg4:
		return "wait-msg4"
	case StateDone:
		return "done"
	case StateWaitGroup2:
		return "wait-group-msg2"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Step tells the AP what to do after Handle; see the package doc for the
// order.
type Step struct {
	Send            []byte // EAPOL frame to send to the station
	InstallPairwise bool   // install TK() as the station's pairwise key
	Authorize       bool   // mark the station authorized
	GroupDone       bool   // the station has the current GTK
	Deauth          bool   // deauthenticate the station
}

// Handshake is the authenticator's key state for one station: its 4-way
// handshake and then its group key handshakes. It is not safe for
// concurrent use; the AP calls it from the goroutine that owns the station.
type Handshake struct {
	cfg     Config // slices copied
	spa     net.HardwareAddr
	staRSNE []byte

	state    State
	replay   uint64 // counter of the last message sent
	attempts int    // transmissions of the outstanding message
	anonce   [NonceLen]byte
	ptk      PTK
	havePTK  bool
	micFails int

	gtk     []byte // current group key
	gtkIdx  int
	gtkRSC  uint64
	sentGTK []byte // the group key the station has been sent last
	sentIdx int
}

// NewHandshake prepares the handshake with station spa, which associated
// with the RSN element staRSNE (with its 2-byte header).
func NewHandshake(cfg Config, spa net.HardwareAddr, staRSNE []byte) (*Handshake, error) {
	switch {
	case len(cfg.PMK) != PMKLen:
		return nil, fmt.Errorf("%w: PMK is %d bytes, want %d", ErrConfig, len(cfg.PMK), PMKLen)
	case len(cfg.AA) != 6 || len(spa) != 6:
		return nil, fmt.Errorf("%w: addresses must be 6 bytes", ErrConfig)
	case !isRSNE(cfg.RSNE):
		return nil, fmt.Errorf("%w: our RSN element is not one", ErrConfig)
	case !isRSNE(staRSNE):
		return nil, fmt.Errorf("%w: the station's RSN element is not one", ErrConfig)
	}
	if err := checkGTK(cfg.GTK, cfg.GTKIndex); err != nil {
		return nil, err
	}
	h := &Handshake{
		cfg:     cfg,
		spa:     append(net.HardwareAddr(nil), spa...),
		staRSNE: bytes.Clone(staRSNE),
		gtk:     bytes.Clone(cfg.GTK),
		gtkIdx:  cfg.GTKIndex,
		gtkRSC:  cfg.GTKRSC,
	}
	h.cfg.PMK = bytes.Clone(cfg.PMK)
	h.cfg.AA = append(net.HardwareAddr(nil), cfg.AA...)
	h.cfg.RSNE = bytes.Clone(cfg.RSNE)
	h.cfg.GTK = nil
	if h.cfg.Rand == nil {
		h.cfg.Rand = rand.Reader
	}
	return h, nil
}

// isRSNE reports whether b is exactly one element with the RSN element ID.
func isRSNE(b []byte) bool {
	return len(b) >= 4 && b[0] == elemRSN && int(b[1]) == len(b)-2
}

func checkGTK(gtk []byte, idx int) error {
	if len(gtk) != GTKLen {
		return fmt.Errorf("%w: GTK is %d bytes, want %d", ErrConfig, len(gtk), GTKLen)
	}
	if idx < 1 || idx > 3 {
		return fmt.Errorf("%w: GTK index %d, want 1 to 3", ErrConfig, idx)
	}
	return nil
}

// State returns where the handshake stands.
func (h *Handshake) State() State { return h.state }

// MICFailures counts the frames dropped for a bad MIC; the AP can tell a
// likely wrong passphrase from a silent station by it.
func (h *Handshake) MICFailures() int { return h.micFails }

// TK returns the pairwise temporal key (CCMP) to install, or nil before
// message 2 was accepted.
func (h *Handshake) TK() []byte {
	if !h.havePTK {
		return nil
	}
	return bytes.Clone(h.ptk.TK[:])
}

// Start begins the 4-way handshake: it draws the ANonce and returns
// message 1.
func (h *Handshake) Start() ([]byte, error) {
	if h.state != StateIdle {
		return nil, fmt.Errorf("start handshake in state %s: %w", h.state, ErrUnexpected)
	}
	if _, err := io.ReadFull(h.cfg.Rand, h.anonce[:]); err != nil {
		return nil, fmt.Errorf("draw ANonce: %w", err)
	}
	h.state = StateWaitMsg2
	h.attempts = 0
	return h.send()
}

// Retransmit returns the outstanding message again with a new replay
// counter; the AP calls it when its retry timer fires. It returns false
// when MaxAttempts transmissions went unanswered (the handshake has then
// failed, State() is StateFailed, and the AP deauthenticates the station)
// or when no message is outstanding (State() is idle or done: nothing to do).
func (h *Handshake) Retransmit() ([]byte, bool) {
	switch h.state {
	case StateWaitMsg2, StateWaitMsg4, StateWaitGroup2:
	default:
		return nil, false
	}
	if h.attempts >= MaxAttempts {
		h.fail()
		return nil, false
	}
	b, err := h.send()
	if err != nil {
		h.fail()
		return nil, false
	}
	return b, true
}

// RekeyGroup hands the station a new group key gtk with key ID idx (1 to 3),
// which the AP has already installed. In states done and wait-group-msg2
// it returns group message 1, to be sent with the retry timer armed; before
// the 4-way handshake has completed it returns nil and the key goes with
// message 3 or right after message 4. The key is announced with receive
// sequence counter 0, as a fresh key starts.
func (h *Handshake) RekeyGroup(gtk []byte, idx int) ([]byte, error) {
	if err := checkGTK(gtk, idx); err != nil {
		return nil, err
	}
	if h.state == StateFailed {
		return nil, ErrFailed
	}
	h.gtk, h.gtkIdx, h.gtkRSC = bytes.Clone(gtk), idx, 0
	if h.state != StateDone && h.state != StateWaitGroup2 {
		return nil, nil
	}
	h.state = StateWaitGroup2
	h.attempts = 0
	return h.send()
}

// Handle processes an EAPOL frame received from the station.
func (h *Handshake) Handle(frame []byte) (Step, error) {
	if h.state == StateFailed {
		return Step{}, ErrFailed
	}
	k, err := ParseEAPOL(frame)
	if err != nil {
		return Step{}, err
	}
	switch h.state {
	case StateWaitMsg2:
		return h.handleMsg2(frame, k)
	case StateWaitMsg4:
		return h.handleMsg4(frame, k)
	case StateWaitGroup2:
		return h.handleGroup2(frame, k)
	}
	return Step{}, fmt.Errorf("EAPOL-Key frame in state %s: %w", h.state, ErrUnexpected)
}

// Key information of the frames a station sends (12.7.6.3, 12.7.6.5,
// 12.7.7.3). Only the reserved bits 4 and 5 and bits 14 and 15 may differ.
const (
	checkedBits = InfoVersionMask | InfoPairwise | InfoInstall | InfoAck | InfoMIC |
		InfoSecure | InfoError | InfoRequest | InfoEncryptedData | InfoSMK
	msg2Info   = DescriptorVersionAESSHA1 | InfoPairwise | InfoMIC
	msg4Info   = DescriptorVersionAESSHA1 | InfoPairwise | InfoMIC | InfoSecure
	group2Info = DescriptorVersionAESSHA1 | InfoMIC | InfoSecure
)

func (h *Handshake) check(k *KeyFrame, want KeyInfo, name string) error {
	if k.Info&checkedBits != want {
		return fmt.Errorf("%s: key information %#04x: %w", name, uint16(k.Info), ErrUnexpected)
	}
	if k.ReplayCounter != h.replay {
		return fmt.Errorf("%s: replay counter %d, want %d: %w", name, k.ReplayCounter, h.replay, ErrReplay)
	}
	return nil
}

func (h *Handshake) handleMsg2(frame []byte, k *KeyFrame) (Step, error) {
	if err := h.check(k, msg2Info, "message 2"); err != nil {
		return Step{}, err
	}
	ptk, err := DerivePTK(h.cfg.PMK, h.cfg.AA, h.spa, h.anonce[:], k.Nonce[:])
	if err != nil {
		return Step{}, fmt.Errorf("message 2: %w", err)
	}
	if !VerifyMIC(ptk.KCK[:], frame) {
		h.micFails++
		return Step{}, fmt.Errorf("message 2: %w", ErrMIC)
	}
	kd, err := ParseKeyData(k.KeyData)
	if err != nil {
		return Step{}, fmt.Errorf("message 2: %w", err)
	}
	if !bytes.Equal(kd.RSNE, h.staRSNE) {
		h.fail()
		return Step{Deauth: true}, fmt.Errorf("message 2: %w", ErrRSNE)
	}
	h.ptk, h.havePTK = ptk, true
	h.state = StateWaitMsg4
	h.attempts = 0
	b, err := h.send()
	if err != nil {
		h.fail()
		return Step{Deauth: true}, err
	}
	return Step{Send: b}, nil
}

func (h *Handshake) handleMsg4(frame []byte, k *KeyFrame) (Step, error) {
	if err := h.check(k, msg4Info, "message 4"); err != nil {
		return Step{}, err
	}
	if !VerifyMIC(h.ptk.KCK[:], frame) {
		h.micFails++
		return Step{}, fmt.Errorf("message 4: %w", ErrMIC)
	}
	step := Step{InstallPairwise: true, Authorize: true}
	h.state = StateDone
	if !bytes.Equal(h.gtk, h.sentGTK) || h.gtkIdx != h.sentIdx {
		// The group key changed while message 3 was out.
		h.state = StateWaitGroup2
		h.attempts = 0
		b, err := h.send()
		if err != nil {
			h.fail()
			return Step{Deauth: true}, err
		}
		step.Send = b
	}
	return step, nil
}

func (h *Handshake) handleGroup2(frame []byte, k *KeyFrame) (Step, error) {
	if err := h.check(k, group2Info, "group message 2"); err != nil {
		return Step{}, err
	}
	if !VerifyMIC(h.ptk.KCK[:], frame) {
		h.micFails++
		return Step{}, fmt.Errorf("group message 2: %w", ErrMIC)
	}
	h.state = StateDone
	return Step{GroupDone: true}, nil
}

func (h *Handshake) fail() { h.state = StateFailed }

// send builds the message the current state sends, with the next replay
// counter, and counts the attempt.
func (h *Handshake) send() ([]byte, error) {
	h.replay++
	h.attempts++
	k := &KeyFrame{ProtocolVersion: 2, ReplayCounter: h.replay}
	switch h.state {
	case StateWaitMsg2:
		k.Info = DescriptorVersionAESSHA1 | InfoPairwise | InfoAck
		k.KeyLength = TKLen
		k.Nonce = h.anonce
		return k.Marshal(), nil
	case StateWaitMsg4:
		k.Info = DescriptorVersionAESSHA1 | InfoPairwise | InfoInstall | InfoAck | InfoMIC | InfoSecure | InfoEncryptedData
		k.KeyLength = TKLen
		k.Nonce = h.anonce
		h.sentGTK, h.sentIdx = bytes.Clone(h.gtk), h.gtkIdx
		data := append(bytes.Clone(h.cfg.RSNE), gtkKDE(h.sentGTK, h.sentIdx)...)
		return h.seal(k, data)
	case StateWaitGroup2:
		k.Info = DescriptorVersionAESSHA1 | InfoAck | InfoMIC | InfoSecure | InfoEncryptedData
		h.sentGTK, h.sentIdx = bytes.Clone(h.gtk), h.gtkIdx
		return h.seal(k, gtkKDE(h.sentGTK, h.sentIdx))
	}
	return nil, fmt.Errorf("nothing to send in state %s", h.state)
}

// seal wraps key data with the KEK, puts the GTK's RSC in the frame and
// signs it with the KCK.
func (h *Handshake) seal(k *KeyFrame, data []byte) ([]byte, error) {
	binary.LittleEndian.PutUint64(k.RSC[:], h.gtkRSC)
	padded := padKeyData(data)
	wrapped, err := KeyWrap(h.ptk.KEK[:], padded)
	clear(padded)
	if err != nil {
		return nil, fmt.Errorf("wrap key data: %w", err)
	}
	k.KeyData = wrapped
	b := k.Marshal()
	mic, err := MIC(h.ptk.KCK[:], b)
	if err != nil {
		return nil, err
	}
	copy(b[micOffset:], mic)
	return b, nil
}
