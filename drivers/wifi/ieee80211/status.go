package ieee80211

import "fmt"

// StatusCode is the status of an authentication or (re)association
// response (802.11-2020 table 9-80).
type StatusCode uint16

// Status codes an AP answers with.
const (
	StatusSuccess                  StatusCode = 0
	StatusUnspecified              StatusCode = 1
	StatusCapabilitiesUnsupported  StatusCode = 10
	StatusReassocNoAssociation     StatusCode = 11
	StatusAssocDeniedUnspecified   StatusCode = 12
	StatusAuthAlgUnsupported       StatusCode = 13
	StatusAuthSequenceUnexpected   StatusCode = 14
	StatusChallengeFailure         StatusCode = 15
	StatusAuthTimeout              StatusCode = 16
	StatusTooManyStations          StatusCode = 17
	StatusBasicRatesUnsupported    StatusCode = 18
	StatusShortPreambleUnsupported StatusCode = 19
	StatusHTUnsupported            StatusCode = 27
	StatusRejectedTemporarily      StatusCode = 30
	StatusMFPPolicyViolation       StatusCode = 31
	StatusQoSUnspecified           StatusCode = 32
	StatusRequestDeclined          StatusCode = 37
	StatusInvalidParameters        StatusCode = 38
	StatusInvalidElement           StatusCode = 40
	StatusInvalidGroupCipher       StatusCode = 41
	StatusInvalidPairwiseCipher    StatusCode = 42
	StatusInvalidAKMP              StatusCode = 43
	StatusUnsupportedRSNVersion    StatusCode = 44
	StatusInvalidRSNCapabilities   StatusCode = 45
	StatusCipherRejectedByPolicy   StatusCode = 46
	StatusInvalidPMKID             StatusCode = 53
)

var statusNames = map[StatusCode]string{
	StatusSuccess:                  "success",
	StatusUnspecified:              "unspecified failure",
	StatusCapabilitiesUnsupported:  "cannot support all requested capabilities",
	StatusReassocNoAssociation:     "reassociation denied: no association exists",
	StatusAssocDeniedUnspecified:   "association denied",
	StatusAuthAlgUnsupported:       "authentication algorithm not supported",
	StatusAuthSequenceUnexpected:   "authentication transaction sequence number out of sequence",
	StatusChallengeFailure:         "challenge failure",
	StatusAuthTimeout:              "authentication timeout",
	StatusTooManyStations:          "AP unable to handle additional associated stations",
	StatusBasicRatesUnsupported:    "station does not support all basic rates",
	StatusShortPreambleUnsupported: "station does not support short preamble",
	StatusHTUnsupported:            "station does not support HT",
	StatusRejectedTemporarily:      "association rejected temporarily",
	StatusMFPPolicyViolation:       "robust management frame policy violation",
	StatusQoSUnspecified:           "unspecified QoS failure",
	StatusRequestDeclined:          "request declined",
	StatusInvalidParameters:        "invalid parameters",
	StatusInvalidElement:           "invalid element",
	StatusInvalidGroupCipher:       "invalid group cipher",
	StatusInvalidPairwiseCipher:    "invalid pairwise cipher",
	StatusInvalidAKMP:              "invalid AKMP",
	StatusUnsupportedRSNVersion:    "unsupported RSN element version",
	StatusInvalidRSNCapabilities:   "invalid RSN capabilities",
	StatusCipherRejectedByPolicy:   "cipher suite rejected by policy",
	StatusInvalidPMKID:             "invalid PMKID",
}

func (s StatusCode) String() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("%s (%d)", n, uint16(s))
	}
	return fmt.Sprintf("status %d", uint16(s))
}

// StatusError is a refusal that maps to a status code in the response.
type StatusError struct {
	Code   StatusCode
	Reason string // what was wrong, for the log
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return e.Code.String()
	}
	return e.Reason + ": " + e.Code.String()
}

// ReasonCode says why a station is deauthenticated or disassociated
// (802.11-2020 table 9-49).
type ReasonCode uint16

// Reason codes an AP sends or receives.
const (
	ReasonUnspecified            ReasonCode = 1
	ReasonPrevAuthNotValid       ReasonCode = 2
	ReasonDeauthLeaving          ReasonCode = 3
	ReasonInactivity             ReasonCode = 4
	ReasonAPBusy                 ReasonCode = 5
	ReasonClass2FromNonauth      ReasonCode = 6
	ReasonClass3FromNonassoc     ReasonCode = 7
	ReasonDisassocLeaving        ReasonCode = 8
	ReasonAssocWithoutAuth       ReasonCode = 9
	ReasonInvalidElement         ReasonCode = 13
	ReasonMICFailure             ReasonCode = 14
	ReasonFourWayTimeout         ReasonCode = 15
	ReasonGroupKeyTimeout        ReasonCode = 16
	ReasonIEInFourWayDiffers     ReasonCode = 17
	ReasonInvalidGroupCipher     ReasonCode = 18
	ReasonInvalidPairwiseCipher  ReasonCode = 19
	ReasonInvalidAKMP            ReasonCode = 20
	ReasonUnsupportedRSNVersion  ReasonCode = 21
	ReasonInvalidRSNCapabilities ReasonCode = 22
	Reason8021XAuthFailed        ReasonCode = 23
	ReasonCipherRejectedByPolicy ReasonCode = 24
	ReasonDisassocLowAck         ReasonCode = 34
)

var reasonNames = map[ReasonCode]string{
	ReasonUnspecified:            "unspecified",
	ReasonPrevAuthNotValid:       "previous authentication no longer valid",
	ReasonDeauthLeaving:          "station is leaving",
	ReasonInactivity:             "inactivity",
	ReasonAPBusy:                 "AP unable to handle all associated stations",
	ReasonClass2FromNonauth:      "class 2 frame from nonauthenticated station",
	ReasonClass3FromNonassoc:     "class 3 frame from nonassociated station",
	ReasonDisassocLeaving:        "station has left the BSS",
	ReasonAssocWithoutAuth:       "association request without authentication",
	ReasonInvalidElement:         "invalid element",
	ReasonMICFailure:             "MIC failure",
	ReasonFourWayTimeout:         "4-way handshake timeout",
	ReasonGroupKeyTimeout:        "group key handshake timeout",
	ReasonIEInFourWayDiffers:     "element in 4-way handshake differs",
	ReasonInvalidGroupCipher:     "invalid group cipher",
	ReasonInvalidPairwiseCipher:  "invalid pairwise cipher",
	ReasonInvalidAKMP:            "invalid AKMP",
	ReasonUnsupportedRSNVersion:  "unsupported RSN element version",
	ReasonInvalidRSNCapabilities: "invalid RSN capabilities",
	Reason8021XAuthFailed:        "IEEE 802.1X authentication failed",
	ReasonCipherRejectedByPolicy: "cipher suite rejected by policy",
	ReasonDisassocLowAck:         "too many frames not acknowledged",
}

func (r ReasonCode) String() string {
	if n, ok := reasonNames[r]; ok {
		return fmt.Sprintf("%s (%d)", n, uint16(r))
	}
	return fmt.Sprintf("reason %d", uint16(r))
}
