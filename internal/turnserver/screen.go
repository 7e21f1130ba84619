package turnserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
)

// screen answers, in pion's place, the authenticated requests pion
// answers wrongly or not at all, and caps the LIFETIME a client asks for.
// It returns the answer to send, or nil to hand msg to pion, in which
// LIFETIME may have been lowered in place (same length, signed again).
//
//   - ChannelBind to a peer the server refuses (by policy, permits, or as
//     the server itself: isLoop, which pion's PermissionHandler, given no
//     port, cannot see): 403 Forbidden (RFC 8656 §12.2). pion's
//     PermissionHandler refusal makes CreatePermission a 403 but
//     ChannelBind a 401 Unauthorized (pion/turn v5.1.3
//     internal/server/turn.go), which tells the client its credentials are
//     wrong.
//   - Refresh, CreatePermission or ChannelBind on a 5-tuple without an
//     allocation: 437 Allocation Mismatch (§7); pion sends no answer, so
//     the client retransmits until it times out.
//   - Allocate of a TCP relay (RFC 6062, not offered): 442 Unsupported
//     Transport Protocol (§7.2), where pion answers 508 for a relay its
//     generator did not make.
//   - Allocate or Refresh asking a LIFETIME above Config.MaxLifetime: pion
//     grants anything under an hour; the request reaches it asking for
//     MaxLifetime.
//
// Only a request that authenticates is answered or changed here, signed
// with the user's key as pion would (its client checks
// MESSAGE-INTEGRITY); anything else goes to pion to be challenged or
// refused. The NONCE is not checked (pion's nonces are its own): a stale
// one gets the refusal here where pion would first have asked for a new
// one with 438, which changes nothing for a request refused either way.
//
// It runs on every datagram and TCP frame that pion sees; all but these
// four requests leave after a two-byte test.
func (s *Server) screen(msg []byte, client, local net.Addr) []byte {
	// A request of methods 0x003, 0x004, 0x008 or 0x009 has the first
	// byte 0 (class bits clear, method < 0x080) and the method second.
	if len(msg) < stunHeaderSize || msg[0] != 0 {
		return nil
	}
	method := stun.Method(msg[1])
	switch method {
	case stun.MethodAllocate, stun.MethodRefresh, stun.MethodCreatePermission, stun.MethodChannelBind:
	default:
		return nil
	}
	if !stun.IsMessage(msg) {
		return nil
	}
	m := &stun.Message{Raw: append([]byte(nil), msg...)}
	if err := m.Decode(); err != nil {
		return nil
	}
	integrity, ok := s.authenticated(m)
	if !ok {
		return nil
	}
	if method != stun.MethodAllocate && !s.hasAllocation(client, local) {
		return s.refusal(m, integrity, stun.CodeAllocMismatch, "Allocation Mismatch")
	}
	switch method {
	case stun.MethodAllocate:
		if v, err := m.Get(stun.AttrRequestedTransport); err == nil && len(v) == 4 && v[0] == protoTCP {
			return s.refusal(m, integrity, stun.CodeUnsupportedTransProto, "Unsupported Transport Protocol")
		}
		if !s.capLifetime(m, integrity, msg) {
			return s.refusal(m, integrity, stun.CodeBadRequest, "Bad Request: LIFETIME over the maximum in a message that cannot be rewritten")
		}
	case stun.MethodRefresh:
		if !s.capLifetime(m, integrity, msg) {
			return s.refusal(m, integrity, stun.CodeBadRequest, "Bad Request: LIFETIME over the maximum in a message that cannot be rewritten")
		}
	case stun.MethodChannelBind:
		return s.screenChannelBind(m, integrity, client, local)
	}
	return nil
}

// protoTCP is REQUESTED-TRANSPORT's protocol number for TCP.
const protoTCP = 6

// authenticated checks m's credentials as pion would (long-term, with the
// key of its USERNAME and REALM) and returns the key.
func (s *Server) authenticated(m *stun.Message) (stun.MessageIntegrity, bool) {
	var username stun.Username
	var realm stun.Realm
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil {
		return nil, false
	}
	_, ik, err := s.auth.credentials(username.String(), realm.String())
	if err != nil {
		return nil, false
	}
	integrity := stun.MessageIntegrity(ik)
	if integrity.Check(m) != nil {
		return nil, false
	}
	return integrity, true
}

func (s *Server) hasAllocation(client, local net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.allocated[keyOf(client, local)]
	return ok
}

// screenChannelBind refuses a ChannelBind whose channel number is out of
// range (400), that would take the allocation past its channels (508),
// or whose peer the server refuses (403).
func (s *Server) screenChannelBind(m *stun.Message, integrity stun.MessageIntegrity, client, local net.Addr) []byte {
	v, err := m.Get(stun.AttrChannelNumber)
	if err != nil || len(v) != 4 {
		return nil // pion answers 400
	}
	if n := binary.BigEndian.Uint16(v); n < minChannel || n > maxChannel {
		return s.refusal(m, integrity, stun.CodeBadRequest, "Bad Request: channel number outside 0x4000-0x7FFF")
	} else if !s.channels.room(clientKeyOf(client, local), n) {
		s.stats.refusedPermits.Add(1)
		return s.refusal(m, integrity, stun.CodeInsufficientCapacity, "Insufficient Capacity: too many channels")
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
	s.refusePeer(client, peerIP, class, "ChannelBind")
	return s.refusal(m, integrity, stun.CodeForbidden, "Forbidden")
}

// refusal is the error response to m, signed as pion signs its answers.
func (s *Server) refusal(m *stun.Message, integrity stun.MessageIntegrity, code stun.ErrorCode, reason string) []byte {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		stun.ErrorCodeAttribute{Code: code, Reason: []byte(reason)},
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

// capLifetime lowers a LIFETIME above MaxLifetime to MaxLifetime in msg,
// signing it again with integrity: the message keeps its length, so pion
// reads it from the same buffer. It reports false for a message asking
// too much that does not rebuild to the same length (bytes after the
// message, attributes after MESSAGE-INTEGRITY): screen refuses it rather
// than let pion grant it.
func (s *Server) capLifetime(m *stun.Message, integrity stun.MessageIntegrity, msg []byte) bool {
	v, err := m.Get(stun.AttrLifetime)
	if err != nil || len(v) != 4 {
		return true
	}
	maxSeconds := uint32(s.cfg.MaxLifetime / time.Second) //nolint:gosec // validated, at most hours
	if binary.BigEndian.Uint32(v) <= maxSeconds {
		return true
	}
	out := &stun.Message{Type: m.Type, TransactionID: m.TransactionID}
	out.WriteHeader()
	for _, a := range m.Attributes {
		if a.Type == stun.AttrMessageIntegrity {
			break
		}
		value := a.Value
		if a.Type == stun.AttrLifetime {
			value = binary.BigEndian.AppendUint32(nil, maxSeconds)
		}
		out.Add(a.Type, value)
	}
	if integrity.AddTo(out) != nil {
		return false
	}
	if m.Contains(stun.AttrFingerprint) && stun.Fingerprint.AddTo(out) != nil {
		return false
	}
	if len(out.Raw) != len(msg) {
		return false
	}
	copy(msg, out.Raw)
	return true
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
