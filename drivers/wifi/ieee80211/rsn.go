package ieee80211

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Suite is a cipher or AKM suite selector: the OUI in the top three
// octets, the suite type in the low one, as it reads on the wire.
type Suite uint32

// Cipher suites (00-0F-AC:n).
const (
	CipherWEP40           Suite = 0x000fac01
	CipherTKIP            Suite = 0x000fac02
	CipherCCMP            Suite = 0x000fac04
	CipherWEP104          Suite = 0x000fac05
	CipherBIPCMAC128      Suite = 0x000fac06
	CipherGroupNotAllowed Suite = 0x000fac07
	CipherGCMP128         Suite = 0x000fac08
)

// AKM suites (00-0F-AC:n).
const (
	AKM8021X     Suite = 0x000fac01
	AKMPSK       Suite = 0x000fac02
	AKMPSKSHA256 Suite = 0x000fac06
	AKMSAE       Suite = 0x000fac08
)

func (s Suite) String() string {
	return fmt.Sprintf("%02X-%02X-%02X:%d", byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}

// RSN capability bits.
const (
	RSNCapPreauth = 1 << 0
	// RSNCapPTKSAReplay16 says 16 PTKSA replay counters, one per
	// 802.1D priority; hostapd advertises it with WMM.
	RSNCapPTKSAReplay16 = 3 << 2
	RSNCapMFPRequired   = 1 << 6
	RSNCapMFPCapable    = 1 << 7
)

// PMKIDLen is the length of a PMKID.
const PMKIDLen = 16

// RSN is the body of the RSN element. Fields a sender left off take the
// defaults 802.11 gives them when parsed (CCMP, CCMP, 802.1X), so a parsed
// RSN is always complete.
type RSN struct {
	Version         uint16
	GroupCipher     Suite
	PairwiseCiphers []Suite
	AKMs            []Suite
	Capabilities    uint16
	PMKIDs          [][PMKIDLen]byte
	// GroupMgmtCipher is the management frame protection cipher; 0 when
	// the element does not carry one.
	GroupMgmtCipher Suite
}

// WPA2PSK is the RSN element of a WPA2-Personal network with CCMP for
// both pairwise and group traffic. With WMM it advertises 16 PTKSA replay
// counters, as hostapd does.
func WPA2PSK(wmm bool) *RSN {
	r := &RSN{
		Version:         1,
		GroupCipher:     CipherCCMP,
		PairwiseCiphers: []Suite{CipherCCMP},
		AKMs:            []Suite{AKMPSK},
	}
	if wmm {
		r.Capabilities |= RSNCapPTKSAReplay16
	}
	return r
}

// rsnReader reads an RSN element body, remembering whether it has ended
// on a field boundary (fields may be left off only at the end).
type rsnReader struct {
	b   []byte
	err error
}

func (r *rsnReader) done() bool { return r.err != nil || len(r.b) == 0 }

func (r *rsnReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("rsn %s: want %d octets, have %d: %w", what, n, len(r.b), ErrTruncated)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *rsnReader) u16(what string) uint16 {
	if v := r.take(2, what); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *rsnReader) suite(what string) Suite {
	if v := r.take(4, what); v != nil {
		return Suite(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *rsnReader) suites(what string) []Suite {
	n := int(r.u16(what + " count"))
	if r.err != nil {
		return nil
	}
	if len(r.b) < 4*n {
		r.err = fmt.Errorf("rsn %s: %d suites need %d octets, have %d: %w", what, n, 4*n, len(r.b), ErrTruncated)
		return nil
	}
	s := make([]Suite, n)
	for i := range s {
		s[i] = r.suite(what)
	}
	return s
}

// ParseRSN parses an RSN element body. The version is not checked (so that
// a refusal can say which status applies); trailing octets are an error.
func ParseRSN(data []byte) (*RSN, error) {
	r := &rsnReader{b: data}
	rsn := &RSN{
		Version:         r.u16("version"),
		GroupCipher:     CipherCCMP,
		PairwiseCiphers: []Suite{CipherCCMP},
		AKMs:            []Suite{AKM8021X},
	}
	if !r.done() {
		rsn.GroupCipher = r.suite("group cipher")
	}
	if !r.done() {
		rsn.PairwiseCiphers = r.suites("pairwise cipher")
	}
	if !r.done() {
		rsn.AKMs = r.suites("akm")
	}
	if !r.done() {
		rsn.Capabilities = r.u16("capabilities")
	}
	if !r.done() {
		n := int(r.u16("pmkid count"))
		for i := 0; i < n && r.err == nil; i++ {
			if v := r.take(PMKIDLen, "pmkid"); v != nil {
				rsn.PMKIDs = append(rsn.PMKIDs, [PMKIDLen]byte(v))
			}
		}
	}
	if !r.done() {
		rsn.GroupMgmtCipher = r.suite("group management cipher")
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("rsn: %d octets after the last field", len(r.b))
	}
	return rsn, nil
}

// Marshal returns the element body. Every field up to the capabilities is
// written; the PMKID count only when PMKIDs or a group management cipher
// follow.
func (r *RSN) Marshal() []byte {
	b := binary.LittleEndian.AppendUint16(nil, r.Version)
	b = binary.BigEndian.AppendUint32(b, uint32(r.GroupCipher))
	for _, list := range [][]Suite{r.PairwiseCiphers, r.AKMs} {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(list)))
		for _, s := range list {
			b = binary.BigEndian.AppendUint32(b, uint32(s))
		}
	}
	b = binary.LittleEndian.AppendUint16(b, r.Capabilities)
	if len(r.PMKIDs) > 0 || r.GroupMgmtCipher != 0 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(r.PMKIDs)))
		for _, p := range r.PMKIDs {
			b = append(b, p[:]...)
		}
	}
	if r.GroupMgmtCipher != 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(r.GroupMgmtCipher))
	}
	return b
}

// Element returns the RSN element.
func (r *RSN) Element() Element {
	return Element{ID: IDRSN, Data: r.Marshal()}
}

// CheckRSN decides whether a station's RSN element body (theirs, from its
// (re)association request) fits ours. It accepts only CCMP pairwise and
// PSK key management, each also in ours, with our group cipher, and no
// management frame protection requirement we cannot meet. A refusal is a
// *StatusError whose Code goes into the association response.
func CheckRSN(ours, theirs []byte) error {
	o, err := ParseRSN(ours)
	if err != nil {
		return &StatusError{Code: StatusUnspecified, Reason: fmt.Sprintf("our RSN element: %v", err)}
	}
	if len(theirs) == 0 {
		return &StatusError{Code: StatusInvalidElement, Reason: "station sent no RSN element"}
	}
	t, err := ParseRSN(theirs)
	if err != nil {
		return &StatusError{Code: StatusInvalidElement, Reason: fmt.Sprintf("station RSN element: %v", err)}
	}
	switch {
	case t.Version != 1:
		return &StatusError{Code: StatusUnsupportedRSNVersion, Reason: fmt.Sprintf("station RSN version %d", t.Version)}
	case t.GroupCipher != o.GroupCipher:
		return &StatusError{Code: StatusInvalidGroupCipher, Reason: fmt.Sprintf("station group cipher %v, ours %v", t.GroupCipher, o.GroupCipher)}
	case !slices.Contains(t.PairwiseCiphers, CipherCCMP) || !slices.Contains(o.PairwiseCiphers, CipherCCMP):
		return &StatusError{Code: StatusInvalidPairwiseCipher, Reason: fmt.Sprintf("station pairwise ciphers %v", t.PairwiseCiphers)}
	case !slices.Contains(t.AKMs, AKMPSK) || !slices.Contains(o.AKMs, AKMPSK):
		return &StatusError{Code: StatusInvalidAKMP, Reason: fmt.Sprintf("station AKMs %v", t.AKMs)}
	case t.Capabilities&RSNCapMFPRequired != 0 && o.Capabilities&RSNCapMFPCapable == 0:
		return &StatusError{Code: StatusMFPPolicyViolation, Reason: "station requires management frame protection"}
	}
	return nil
}
