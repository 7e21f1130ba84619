package stunserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"

	"github.com/pion/stun/v4"
)

const (
	headerSize  = 20
	magicCookie = 0x2112A442
	// maxUnknown bounds the list in one UNKNOWN-ATTRIBUTES, so a request
	// of many unknown types gets an error response of fixed largest size.
	maxUnknown = 16
)

// transport is how a request came in.
type transport uint8

const (
	transportUnknown transport = iota
	transportUDP
	transportTCP
)

func (t transport) String() string {
	switch t {
	case transportUDP:
		return "udp"
	case transportTCP:
		return "tcp"
	default:
		return "unknown"
	}
}

// action is what the server does with one message.
type action uint8

const (
	actionUnknown action = iota
	// actionAnswer: a Binding success response is in out.
	actionAnswer
	// actionRefuse: a Binding error response (400, 420) is in out.
	actionRefuse
	// actionDrop: not a well-formed STUN message; silently discarded
	// (RFC 8489 section 6.3) and counted as malformed.
	actionDrop
	// actionIgnore: well-formed STUN that gets no answer: indications
	// (a Binding indication is a keepalive), responses, and methods other
	// than Binding (section 6.3 discards an unsupported method too).
	actionIgnore
)

func (a action) String() string {
	switch a {
	case actionAnswer:
		return "answer"
	case actionRefuse:
		return "refuse"
	case actionDrop:
		return "drop"
	case actionIgnore:
		return "ignore"
	default:
		return "unknown"
	}
}

// decision is the outcome of one message.
type decision struct {
	action action
	// from is the socket that sends the answer and to where it goes (UDP;
	// over TCP the answer goes back on the connection). to's IP is always
	// the request's source IP: RESPONSE-PORT changes only the port, and
	// RFC 3489's RESPONSE-ADDRESS is refused, so the server reflects
	// nothing to a third party.
	from role
	to   netip.AddrPort
	// code is the ERROR-CODE of actionRefuse.
	code int
	// legacy is an RFC 3489 request (no magic cookie).
	legacy bool
	// err is why, for actionRefuse, actionDrop and actionIgnore.
	err error
}

// Reason phrases (RFC 8489 section 14.8). RFC 3489 section 11.2.9 wants
// the phrase a multiple of 4 bytes long, so its versions are padded with
// spaces.
var (
	reasonBadRequest           = []byte("Bad Request")
	reasonUnknownAttribute     = []byte("Unknown Attribute")
	reasonBadRequest3489       = []byte("Bad Request ")
	reasonUnknownAttribute3489 = []byte("Unknown Attribute   ")
)

// handler turns one message into one decision. It holds only the server's
// fixed addresses, so one handler serves every socket and connection at
// once; in and out belong to the caller (one pair per read loop).
type handler struct {
	// own are the bound addresses by role, in pion's form; concrete says
	// which are known IPs (not a wildcard) and so can be named.
	own      [numRoles]stun.MappedAddress
	concrete [numRoles]bool
	// rfc5780: all four roles are bound and CHANGE-REQUEST is served.
	rfc5780 bool
	// software is the SOFTWARE value, empty for none; software3489 is the
	// same padded with spaces to a multiple of 4 for RFC 3489 clients
	// (RFC 3489 section 11.1; stund's client rejects any other length).
	software     stun.Software
	software3489 stun.Software
}

func newHandler(addrs [numRoles]netip.AddrPort, rfc5780 bool, software string) *handler {
	h := &handler{rfc5780: rfc5780}
	for r, a := range addrs {
		if !a.IsValid() {
			continue
		}
		h.own[r] = stun.MappedAddress{IP: net.IP(a.Addr().Unmap().AsSlice()), Port: int(a.Port())}
		h.concrete[r] = !a.Addr().IsUnspecified()
	}
	if software != "" {
		h.software = stun.NewSoftware(software)
		padded := software
		for len(padded)%4 != 0 {
			padded += " "
		}
		h.software3489 = stun.NewSoftware(padded)
	}
	return h
}

// understood says whether the server knows a comprehension-required
// attribute; any other in a request gets a 420 (RFC 8489 section 6.3.1).
// Known but ignored: the authentication attributes (this server answers
// everyone and checks no credentials) and ICE's PRIORITY and
// USE-CANDIDATE. Left out on purpose: RFC 3489's RESPONSE-ADDRESS (0x0002),
// which would have the server send to any address; RFC 5780 section 7.5
// replaced it with RESPONSE-PORT for that reason.
func understood(t stun.AttrType) bool {
	switch t {
	case stun.AttrMappedAddress, stun.AttrChangeRequest, stun.AttrSourceAddress,
		stun.AttrChangedAddress, stun.AttrUsername, stun.AttrMessageIntegrity,
		stun.AttrErrorCode, stun.AttrUnknownAttributes, stun.AttrRealm, stun.AttrNonce,
		stun.AttrMessageIntegritySHA256, stun.AttrPasswordAlgorithm, stun.AttrUserhash,
		stun.AttrXORMappedAddress, stun.AttrPriority, stun.AttrUseCandidate,
		stun.AttrPadding, stun.AttrResponsePort:
		return true
	}
	return false
}

// handle decides what to do with one STUN message b that came in on the
// socket of role local from src, and writes any answer into out.
func (h *handler) handle(b []byte, tr transport, local role, src netip.AddrPort, in, out *stun.Message) decision {
	// RFC 8489 section 6.3: the first two bits are 0 and the length is
	// sensible (a multiple of 4, section 5, and all of the packet).
	if len(b) < headerSize || b[0]&0xC0 != 0 {
		return decision{action: actionDrop, err: errNotSTUN}
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || headerSize+n != len(b) {
		return decision{action: actionDrop, err: errLength}
	}
	// RFC 8489 section 12 (RFC 5389 section 12.2): a request without the
	// magic cookie is from an RFC 3489 client, whose transaction ID is the
	// 16 bytes after the length. pion decodes only with the cookie, so it
	// is put in for decoding and the 16 bytes go back into the answer.
	legacy := binary.BigEndian.Uint32(b[4:8]) != magicCookie
	var id3489 [16]byte
	in.Raw = append(in.Raw[:0], b...)
	if legacy {
		copy(id3489[:], b[4:headerSize])
		binary.BigEndian.PutUint32(in.Raw[4:8], magicCookie)
	}
	if err := in.Decode(); err != nil {
		return decision{action: actionDrop, err: errDecode}
	}
	// RFC 8489 section 14.7: a FINGERPRINT that does not match (or is not
	// last) means this is not STUN. RFC 3489 had no FINGERPRINT, and its
	// CRC would cover the header we changed.
	if !legacy && in.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(in); err != nil {
			return decision{action: actionDrop, err: errFingerprint}
		}
	}
	if in.Type.Class != stun.ClassRequest {
		return decision{action: actionIgnore, err: errNotRequest}
	}
	if in.Type.Method != stun.MethodBinding {
		return decision{action: actionIgnore, err: errMethod}
	}

	d := decision{from: local, to: src, legacy: legacy}
	var unknown [maxUnknown]stun.AttrType
	nu := 0
	for _, a := range in.Attributes {
		if a.Type.Required() && !understood(a.Type) && nu < maxUnknown && !slices.Contains(unknown[:nu], a.Type) {
			unknown[nu] = a.Type
			nu++
		}
	}
	if nu > 0 {
		return h.refuse(in, out, d, &id3489, 420, errUnknownAttrs, unknown[:nu])
	}

	var cr ChangeRequest
	if in.Contains(stun.AttrChangeRequest) {
		if err := cr.GetFrom(in); err != nil {
			return h.refuse(in, out, d, &id3489, 400, errBadAttr, nil)
		}
	}
	var rp ResponsePort
	hasRP := in.Contains(stun.AttrResponsePort)
	if hasRP {
		if err := rp.GetFrom(in); err != nil {
			return h.refuse(in, out, d, &id3489, 400, errBadAttr, nil)
		}
	}
	var pad Padding
	hasPad := in.Contains(stun.AttrPadding)
	if hasPad {
		_ = pad.GetFrom(in) // cannot fail: Contains said it is there
	}
	changes := cr.IP || cr.Port
	switch {
	case hasRP && hasPad:
		// RFC 5780 section 6.1: the padded answer is for the path back
		// to the requester; elsewhere it would be an amplifier.
		return h.refuse(in, out, d, &id3489, 400, errPaddingAndPort, nil)
	case hasRP && tr == transportTCP:
		// RFC 5780 section 7.5: RESPONSE-PORT is for UDP; a stream has
		// one way back.
		return h.refuse(in, out, d, &id3489, 400, errResponsePortOverTCP, nil)
	case hasRP && rp == 0:
		return h.refuse(in, out, d, &id3489, 400, errResponsePortZero, nil)
	case changes && !h.rfc5780:
		// RFC 5780 section 6.1: without an alternate address the server
		// cannot do what CHANGE-REQUEST asks, and says so with a 420.
		unknown[0] = stun.AttrChangeRequest
		return h.refuse(in, out, d, &id3489, 420, errChangeNoAlternate, unknown[:1])
	case changes && tr == transportTCP:
		// A TCP answer can only come back on the connection it answers.
		return h.refuse(in, out, d, &id3489, 400, errChangeOverTCP, nil)
	}
	d.from = local.change(cr.IP, cr.Port)
	if hasRP {
		d.to = netip.AddrPortFrom(src.Addr(), uint16(rp))
	}
	// RFC 5780 section 6.1 pads the answer toward a 1500-byte datagram.
	// We pad as much as the request did, up to MaxPadding: a small
	// request with a spoofed source then cannot draw a large answer
	// (section 9), and turnutils_natdiscovery -P asks with 1500.
	if pad > MaxPadding {
		pad = MaxPadding
	}
	if err := h.answer(in, out, &d, &id3489, src, local, pad, hasPad); err != nil {
		return decision{action: actionDrop, err: err}
	}
	d.action = actionAnswer
	return d
}

// answer writes the Binding success response for d into out.
func (h *handler) answer(in, out *stun.Message, d *decision, id3489 *[16]byte, src netip.AddrPort, local role, pad Padding, hasPad bool) error {
	out.Reset()
	out.Type = stun.BindingSuccess
	out.TransactionID = in.TransactionID
	out.WriteHeader()
	ip := net.IP(src.Addr().Unmap().AsSlice())
	mapped := stun.MappedAddress{IP: ip, Port: int(src.Port())}
	w := writer{m: out}
	if d.legacy {
		// RFC 3489 section 8.2, in the order Vovida's stund writes them:
		// MAPPED-ADDRESS, SOURCE-ADDRESS (where the answer comes from),
		// CHANGED-ADDRESS (where CHANGE-REQUEST answers would). No
		// XOR-MAPPED-ADDRESS (0x0020 would be an unknown mandatory
		// attribute to such a client) and no FINGERPRINT.
		w.err = mapped.AddTo(out)
		if h.concrete[d.from] {
			w.addressAs(h.own[d.from], stun.AttrSourceAddress)
		}
		if h.rfc5780 {
			w.addressAs(h.own[local.other()], stun.AttrChangedAddress)
		}
		if hasPad {
			w.add(pad)
		}
		if len(h.software3489) > 0 {
			w.add(h.software3489)
		}
		copy(out.Raw[4:headerSize], id3489[:])
		return w.err
	}
	// RFC 8489 section 14.2 XOR-MAPPED-ADDRESS, and MAPPED-ADDRESS too
	// for clients that read only that (section 14.1).
	w.add(stun.XORMappedAddress{IP: ip, Port: int(src.Port())})
	w.add(&mapped)
	// RFC 5780 section 7.3 and 7.4.
	if h.concrete[d.from] {
		w.addressAs(h.own[d.from], stun.AttrResponseOrigin)
	}
	if h.rfc5780 {
		w.addressAs(h.own[local.other()], stun.AttrOtherAddress)
	}
	if hasPad {
		w.add(pad)
	}
	if len(h.software) > 0 {
		w.add(h.software)
	}
	w.add(stun.Fingerprint)
	return w.err
}

// refuse writes a Binding error response to the request's source, from
// the socket it came in on.
func (h *handler) refuse(in, out *stun.Message, d decision, id3489 *[16]byte, code int, why error, unknown []stun.AttrType) decision {
	out.Reset()
	out.Type = stun.BindingError
	out.TransactionID = in.TransactionID
	out.WriteHeader()
	reason := reasonBadRequest
	switch {
	case code == 420 && d.legacy:
		reason = reasonUnknownAttribute3489
	case code == 420:
		reason = reasonUnknownAttribute
	case d.legacy:
		reason = reasonBadRequest3489
	}
	w := writer{m: out}
	w.add(stun.ErrorCodeAttribute{Code: stun.ErrorCode(code), Reason: reason})
	if len(unknown) > 0 {
		if d.legacy && len(unknown)%2 == 1 {
			// RFC 3489 section 11.2.10: repeat one so the list is a
			// multiple of 4 bytes.
			unknown = append(unknown[:len(unknown):len(unknown)], unknown[0])
		}
		w.add(stun.UnknownAttributes(unknown))
	}
	if d.legacy {
		if len(h.software3489) > 0 {
			w.add(h.software3489)
		}
		copy(out.Raw[4:headerSize], id3489[:])
	} else {
		if len(h.software) > 0 {
			w.add(h.software)
		}
		w.add(stun.Fingerprint)
	}
	if w.err != nil {
		return decision{action: actionDrop, err: w.err}
	}
	d.action = actionRefuse
	d.code = code
	d.err = why
	return d
}

// writer adds attributes to a message and keeps the first error.
type writer struct {
	m   *stun.Message
	err error
}

func (w *writer) add(s stun.Setter) {
	if w.err == nil {
		w.err = s.AddTo(w.m)
	}
}

func (w *writer) addressAs(a stun.MappedAddress, t stun.AttrType) {
	if w.err == nil {
		w.err = a.AddToAs(w.m, t)
	}
}
