// Package wpa is the key management of our WPA2-PSK (CCMP) access point: the
// authenticator side of the IEEE 802.11 4-way handshake and group key
// handshake, the EAPOL-Key frames they exchange, and the cryptography under
// them (PSK to PMK, the 802.11 PRF, PTK derivation, EAPOL-Key MIC, AES key
// wrap).
//
// It does no I/O, starts no goroutine and owns no timer: the AP drives one
// Handshake per associated station and does what each Step says.
//
// # Driving a Handshake
//
// After a station associates with an RSN element (staRSNE):
//
//	h, err := wpa.NewHandshake(cfg, sta, staRSNE)
//	frame, err := h.Start()        // message 1: send it, arm the retry timer
//
// For every EAPOL frame received from that station:
//
//	step, err := h.Handle(frame)
//
// and then, in this order:
//   - step.InstallPairwise: install h.TK() as the station's pairwise CCMP key
//     (NEW_KEY with the station's address, key index 0);
//   - step.Authorize: mark the station authorized; the 4-way handshake is
//     done, disarm the retry timer;
//   - step.Send != nil: send it to the station and (re)arm the retry timer
//     (after message 4 this is a group message 1, which must go out under
//     the pairwise key just installed; messages 1 and 3 go out before the
//     station has a key, unprotected);
//   - step.GroupDone: a group key handshake finished; disarm the timer;
//   - step.Deauth: deauthenticate the station and drop the Handshake.
//
// An error without step.Deauth means "drop this frame and keep waiting": the
// frame was malformed, forged, replayed or out of sequence. Frames come from
// the air, so such errors are expected and are no reason to act; errors.Is
// with ErrMIC tells a bad MIC apart, which after a message 1 most often means
// the station has the wrong passphrase (log it, never the key). Error texts
// never contain key material.
//
// When the retry timer fires, call h.Retransmit(): it returns the outstanding
// message again with a fresh replay counter, or false once MaxAttempts
// transmissions went unanswered, and then the AP deauthenticates the station,
// logging for instance
//
//	slog.Warn("wpa: 4-way handshake failed", "sta", sta, "mic_failures", h.MICFailures())
//
// (a MIC failure count above zero points at a wrong passphrase; no key or
// passphrase is ever part of a message or an error of this package).
//
// To rotate the group key, install the new GTK in the kernel, then call
// h.RekeyGroup(gtk, idx) for each station and send the frame it returns, if
// any; a station still in its 4-way handshake gets the new key in message 3,
// or right after message 4 (as step.Send together with step.Authorize).
//
// # What is checked
//
// No station is authorized without a message 4 whose MIC verifies under the
// KCK of the PTK this handshake derived. Message 2 is accepted only with a
// valid MIC under the PTK derived from its own SNonce, the replay counter of
// the message 1 outstanding, and an RSN element identical, byte for byte, to
// the one of the association request (a mismatch is a downgrade attempt and
// ends the handshake). Every received frame must have the replay counter of
// the last message we sent and the key information bits the standard gives
// that message; anything else is dropped without changing state.
//
// Only key descriptor version 2 (HMAC-SHA1-128 MIC, AES key wrap) with CCMP
// and the PSK AKM is supported: that is what WPA2-PSK uses.
package wpa
