// Package ieee80211 parses and builds the 802.11 management frames and
// information elements an access point with its own management plane
// needs: the beacon head and tail that nl80211's START_AP takes, probe
// responses, and the authentication, (re)association, disassociation and
// deauthentication exchanges with stations.
//
// Everything here is pure: no I/O, no goroutines, no clock. Frames come
// from the air, so every parser treats its input as hostile: lengths are
// checked before every read, an element running past the end of its frame
// is an error, and parsed values alias the input instead of trusting it to
// describe allocations.
//
// Frames are given and returned without the FCS, as nl80211 passes them.
package ieee80211
