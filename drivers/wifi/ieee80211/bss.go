package ieee80211

import (
	"errors"
	"fmt"
)

// BSS is what our access point advertises. It builds every frame the AP
// sends: the beacon head and tail for START_AP, probe responses, the
// answers to authentication and (re)association, and the frames that
// take a station off.
type BSS struct {
	BSSID   Addr
	SSID    []byte
	Hidden  bool  // beacons carry an empty SSID; only probes naming ours are answered
	Channel uint8 // for the DS Parameter Set and HT Operation elements
	// BeaconInterval in TUs; 0 means 100, the usual.
	BeaconInterval uint16
	// Capability bits besides ESS and Privacy, which BSS sets itself
	// (Privacy when RSN is given): e.g. CapShortSlotTime.
	Capability Capability
	Rates      []Rate // with the basic ones marked, see BandRates
	RSN        *RSN   // nil: an open network
	// HT, when the PHY has it: the capabilities as advertised (see
	// HTCapabilities.ForAP). HT needs WMM.
	HT           *HTCapabilities
	HTProtection HTProtection
	WMM          *WMMParams // nil: no QoS (and no HT)
	Country      *Country   // nil: no Country element
	// ERPFlags go in the ERP element, sent on 2.4 GHz channels (1-14)
	// when the rates include OFDM ones.
	ERPFlags uint8
	// ExtCapabilities are the Extended Capabilities bits to advertise;
	// none means no element.
	ExtCapabilities []uint
}

// DefaultBeaconInterval is the beacon interval when BSS leaves it zero.
const DefaultBeaconInterval = 100

// Validate checks the configuration before any frame is built from it.
func (s *BSS) Validate() error {
	var errs []error
	if len(s.SSID) == 0 || len(s.SSID) > MaxSSIDLen {
		errs = append(errs, fmt.Errorf("ssid of %d octets: want 1..%d", len(s.SSID), MaxSSIDLen))
	}
	if s.Channel == 0 {
		errs = append(errs, errors.New("no channel"))
	}
	if len(s.Rates) == 0 || len(s.Rates) > maxSupportedRates+255 {
		errs = append(errs, fmt.Errorf("%d rates: want 1..%d", len(s.Rates), maxSupportedRates+255))
	}
	basic := false
	for _, r := range s.Rates {
		basic = basic || r.IsBasic()
	}
	if len(s.Rates) > 0 && !basic {
		errs = append(errs, errors.New("no basic rate"))
	}
	if s.HT != nil && s.WMM == nil {
		errs = append(errs, errors.New("HT needs WMM"))
	}
	if s.Country != nil {
		if _, err := s.Country.Element(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bss: %w", err)
	}
	return nil
}

func (s *BSS) capability() Capability {
	c := s.Capability | CapESS
	if s.RSN != nil {
		c |= CapPrivacy
	} else {
		c &^= CapPrivacy
	}
	return c
}

func (s *BSS) info(ssid []byte) BSSInfo {
	interval := s.BeaconInterval
	if interval == 0 {
		interval = DefaultBeaconInterval
	}
	supported, _, _ := RateElements(s.Rates)
	return BSSInfo{
		Interval:   interval,
		Capability: s.capability(),
		Elements:   Elements{SSID(ssid), supported, DSParams(s.Channel)},
	}
}

// afterTIM returns the elements that follow the TIM in beacons (and the
// DS Parameter Set in probe responses), in the order 802.11 gives them.
func (s *BSS) afterTIM() Elements {
	var es Elements
	if s.Country != nil {
		if e, err := s.Country.Element(); err == nil {
			es = append(es, e)
		}
	}
	if s.Channel <= 14 && s.hasOFDM() {
		es = append(es, ERP(s.ERPFlags))
	}
	if _, ext, ok := RateElements(s.Rates); ok {
		es = append(es, ext)
	}
	if s.RSN != nil {
		es = append(es, s.RSN.Element())
	}
	es = append(es, s.htElements()...)
	if len(s.ExtCapabilities) > 0 {
		es = append(es, ExtCapabilities(s.ExtCapabilities...))
	}
	if s.WMM != nil {
		es = append(es, s.WMM.Element())
	}
	return es
}

func (s *BSS) htElements() Elements {
	if s.HT == nil {
		return nil
	}
	return Elements{s.HT.Element(), NewHTOperation(s.Channel, s.HTProtection).Element()}
}

func (s *BSS) hasOFDM() bool {
	for _, r := range s.Rates {
		if !r.isDSSS() {
			return true
		}
	}
	return false
}

func (s *BSS) header(da Addr) Header {
	return Header{DA: da, SA: s.BSSID, BSSID: s.BSSID}
}

// Beacon returns the beacon as NL80211_ATTR_BEACON_HEAD and _TAIL want it:
// head is the header, the fixed fields, SSID, Supported Rates and DS
// Parameter Set; the kernel puts the TIM between head and tail.
func (s *BSS) Beacon() (head, tail []byte, err error) {
	if err := s.Validate(); err != nil {
		return nil, nil, err
	}
	ssid := s.SSID
	if s.Hidden {
		ssid = nil
	}
	info := s.info(ssid)
	head, err = (&Mgmt{Header: s.header(Broadcast), Body: &Beacon{BSSInfo: info}}).Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("beacon head: %w", err)
	}
	tail, err = s.afterTIM().Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("beacon tail: %w", err)
	}
	return head, tail, nil
}

// ProbeResponse returns the answer to a probe request from sta (ask
// ProbeRequest.Wants first). It is the beacon without the TIM, and names
// the SSID even when the network is hidden.
func (s *BSS) ProbeResponse(sta Addr) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	info := s.info(s.SSID)
	info.Elements = append(info.Elements, s.afterTIM()...)
	return (&Mgmt{Header: s.header(sta), Body: &ProbeResponse{BSSInfo: info}}).Marshal()
}

// AuthResponse answers an authentication frame req with status: the same
// algorithm, the next transaction sequence number.
func (s *BSS) AuthResponse(req *Mgmt, status StatusCode) ([]byte, error) {
	a, ok := req.Body.(*Auth)
	if !ok {
		return nil, fmt.Errorf("auth response to a %v", req.Body.Subtype())
	}
	resp := &Auth{Algorithm: a.Algorithm, Seq: a.Seq + 1, Status: status}
	return (&Mgmt{Header: s.header(req.SA), Body: resp}).Marshal()
}

// AssocResponse answers the (re)association request req with status and,
// on success, the association ID aid (1..MaxAID). It carries our rates and
// HT elements, and the WMM Parameter element when the station sent WMM.
func (s *BSS) AssocResponse(req *Mgmt, status StatusCode, aid uint16) ([]byte, error) {
	a, ok := req.Body.(*AssocRequest)
	if !ok {
		return nil, fmt.Errorf("association response to a %v", req.Body.Subtype())
	}
	if status == StatusSuccess && (aid == 0 || aid > MaxAID) {
		return nil, fmt.Errorf("association ID %d: want 1..%d", aid, MaxAID)
	}
	if status != StatusSuccess {
		aid = 0
	}
	supported, ext, hasExt := RateElements(s.Rates)
	es := Elements{supported}
	if hasExt {
		es = append(es, ext)
	}
	es = append(es, s.htElements()...)
	if len(s.ExtCapabilities) > 0 {
		es = append(es, ExtCapabilities(s.ExtCapabilities...))
	}
	if _, staWMM := a.Elements.WMM(); staWMM && s.WMM != nil {
		es = append(es, s.WMM.Element())
	}
	resp := &AssocResponse{Reassoc: a.Reassoc, Capability: s.capability(), Status: status, AID: aid, Elements: es}
	return (&Mgmt{Header: s.header(req.SA), Body: resp}).Marshal()
}

// Deauth returns a deauthentication frame to sta (Broadcast: every
// station).
func (s *BSS) Deauth(sta Addr, reason ReasonCode) []byte {
	return s.mustMarshal(sta, &Deauth{Reason: reason})
}

// Disassoc returns a disassociation frame to sta.
func (s *BSS) Disassoc(sta Addr, reason ReasonCode) []byte {
	return s.mustMarshal(sta, &Disassoc{Reason: reason})
}

// mustMarshal marshals bodies without elements, which cannot fail.
func (s *BSS) mustMarshal(da Addr, body Body) []byte {
	b, err := (&Mgmt{Header: s.header(da), Body: body}).Marshal()
	if err != nil {
		panic("ieee80211: " + err.Error())
	}
	return b
}
