package turnserver

import (
	"net"
	"net/netip"

	"github.com/pion/stun/v4"
)

// channelBindRequest is the STUN message type of a ChannelBind request
// (method 0x009, class request), as its first two bytes.
const channelBindRequest = 0x0009

// screen answers, in pion's place, a ChannelBind request whose peer the
// server refuses (by policy, permits, or as the server itself: isLoop,
// which pion's PermissionHandler, given no port, cannot see). pion's
// PermissionHandler refusal makes CreatePermission
// a 403 Forbidden but ChannelBind a 401 Unauthorized (pion/turn v5.1.3
// internal/server/turn.go), which tells the client its credentials are
// wrong; RFC 8656 §12.2 says 403. It returns the answer to send, or nil to
// hand msg to pion unchanged, as it does with everything else.
//
// Only a request that authenticates is answered here, signed with the
// user's key as pion would (its client checks MESSAGE-INTEGRITY); anything
// else goes to pion to be challenged or refused. The NONCE is not checked
// (pion's nonces are its own): a stale one is refused 403 here where pion
// would first have asked for a new one with 438, which changes nothing for
// a peer the client may not reach either way.
//
// It runs on every datagram and TCP frame; all but ChannelBind requests
// leave after a two-byte compare.
func (s *Server) screen(msg []byte, client, local net.Addr) []byte {
	if len(msg) < stunHeaderSize || msg[0] != channelBindRequest>>8 || msg[1] != channelBindRequest&0xff {
		return nil
	}
	if !stun.IsMessage(msg) {
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), msg...)}
	if err := m.Decode(); err != nil {
		return nil
	}
	var peer stun.XORMappedAddress
	if err := peer.GetFromAs(m, stun.AttrXORPeerAddress); err != nil {
		return nil // pion answers 400
	}
	peerIP, ok := netip.AddrFromSlice(peer.IP)
	if !ok {
		return nil
	}
	peerIP = peerIP.Unmap()
	class, ok := s.peerAllowed(clientKeyOf(client, local), peerIP)
	if ok && s.policy.isLoop(netip.AddrPortFrom(peerIP, uint16(peer.Port))) { //nolint:gosec // a port
		class, ok = peerOwn, false
	}
	if ok {
		return nil
	}
	var username stun.Username
	var realm stun.Realm
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil {
		return nil
	}
	_, ik, err := s.auth.credentials(username.String(), realm.String())
	if err != nil {
		return nil
	}
	integrity := stun.MessageIntegrity(ik)
	if integrity.Check(m) != nil {
		return nil
	}
	s.refusePeer(client, peerIP, class, "ChannelBind")
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(stun.MethodChannelBind, stun.ClassErrorResponse),
		stun.ErrorCodeAttribute{Code: stun.CodeForbidden, Reason: []byte("Forbidden")},
	}
	if s.software != nil {
		setters = append(setters, s.software)
	}
	setters = append(setters, integrity)
	if m.Contains(stun.AttrFingerprint) {
		setters = append(setters, stun.Fingerprint)
	}
	res, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return res.Raw
}

// decorate adds SOFTWARE (RFC 8489 §14.14) to a response pion sends
// without MESSAGE-INTEGRITY (the 401 and 438 challenges, Binding answers).
// After MESSAGE-INTEGRITY a receiver must ignore it (§14.5), and in front
// of it the response would need signing again, so signed responses go as
// pion made them. Everything but responses (ChannelData, Data indications:
// the packet path) leaves after a one-byte test.
func (s *Server) decorate(msg []byte) []byte {
	// A response has the class bit C1 (0x0100 of the type) set.
	if s.software == nil || len(msg) < stunHeaderSize || msg[0]&0xc1 != 0x01 || !stun.IsMessage(msg) {
		return msg
	}
	m := &stun.Message{Raw: append(make([]byte, 0, len(msg)+32), msg...)}
	if m.Decode() != nil || m.Contains(stun.AttrMessageIntegrity) || m.Contains(stun.AttrSoftware) {
		return msg
	}
	fp := m.Contains(stun.AttrFingerprint)
	if fp {
		// FINGERPRINT must stay last (RFC 8489 §14.7): rebuild without it.
		m2 := &stun.Message{TransactionID: m.TransactionID, Type: m.Type}
		m2.WriteHeader()
		for _, a := range m.Attributes {
			if a.Type != stun.AttrFingerprint {
				m2.Add(a.Type, a.Value)
			}
		}
		m = m2
	}
	s.software.AddTo(m) //nolint:errcheck // Software.AddTo checks only the length, checked in New
	if fp {
		stun.Fingerprint.AddTo(m) //nolint:errcheck // cannot fail
	}
	return m.Raw
}

const stunHeaderSize = 20
