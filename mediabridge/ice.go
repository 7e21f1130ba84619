package mediabridge

import (
	"crypto/rand"
	"net/netip"
	"strings"

	"github.com/pion/stun/v4"
)

// ICE-lite (RFC 8445 §2.5): the gateway never checks, it answers. A
// Binding request whose USERNAME starts with a session's ufrag and whose
// MESSAGE-INTEGRITY verifies with that session's password is answered with
// the source as XOR-MAPPED-ADDRESS, and its source then reaches the session.
// Checks that come before the browser's answer reaches us (calls to the
// web) are answered the same way: only our own credentials are needed.
// A check from an address another session has heard from within the
// consent timeout is not answered (webrtcSocket.learn).

const (
	iceUfragLen = 8  // RFC 8839 §5.4: at least 4 characters
	icePwdLen   = 24 // RFC 8839 §5.4: at least 22 characters
)

const iceChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"

// randomICEString draws n ice-chars (RFC 8839 §5.4) from crypto/rand.
func randomICEString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = iceChars[int(b[i])%len(iceChars)]
	}
	return string(b)
}

// handleSTUN answers a Binding request for one of our sessions; anything
// else (responses, indications, checks for nobody) is dropped.
func (s *webrtcSocket) handleSTUN(pkt []byte, from netip.AddrPort) {
	if !stun.IsMessage(pkt) {
		s.unknown.Add(1)
		return
	}
	msg := &stun.Message{Raw: append([]byte(nil), pkt...)}
	if err := msg.Decode(); err != nil || msg.Type != stun.BindingRequest {
		s.unknown.Add(1)
		return
	}
	var user stun.Username
	if err := user.GetFrom(msg); err != nil {
		s.unknown.Add(1)
		return
	}
	ours, _, ok := strings.Cut(user.String(), ":")
	ep, pwd := s.endpoint(ours)
	if !ok || ep == nil {
		s.unknown.Add(1)
		return
	}
	integrity := stun.NewShortTermIntegrity(pwd)
	if integrity.Check(msg) != nil || stun.Fingerprint.Check(msg) != nil {
		s.unknown.Add(1)
		return
	}
	mapped, tcp := from, isTCPAddr(from)
	if tcp {
		// The browser's end of the connection, not its synthetic
		// address (RFC 8445 §7.3.1.2: the request's source).
		if mapped, ok = s.tcp.remoteOf(from); !ok {
			s.unknown.Add(1) // closed meanwhile
			return
		}
	}
	res, err := stun.Build(msg, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())},
		integrity, stun.Fingerprint)
	if err != nil {
		return
	}
	if !s.learn(from, ep) {
		s.unknown.Add(1) // another session's live address, or closed
		return
	}
	if tcp {
		s.tcp.verify(from) // the connection stays past its check timeout
	}
	// RFC 8445 §7.3.1.5: a controlled agent takes USE-CANDIDATE as the
	// nomination; the first valid check stands in until then.
	ep.setRemote(from, msg.Contains(stun.AttrUseCandidate))
	_ = s.writeTo(res.Raw, from)
}
