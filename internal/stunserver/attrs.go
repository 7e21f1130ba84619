package stunserver

import (
	"encoding/binary"
	"fmt"

	"github.com/pion/stun/v4"
)

// The attributes below are the ones of RFC 5780 that pion/stun names
// (stun.AttrChangeRequest, stun.AttrResponsePort, stun.AttrPadding) but
// has no typed form for. OTHER-ADDRESS and RESPONSE-ORIGIN are pion's
// stun.OtherAddress and stun.ResponseOrigin; RFC 3489's SOURCE-ADDRESS and
// CHANGED-ADDRESS have MAPPED-ADDRESS's format and go through
// stun.MappedAddress.AddToAs.

// The CHANGE-REQUEST flags (RFC 5780 section 7.2, RFC 3489 section 11.2.4).
const (
	changeIPFlag   = 0x4
	changePortFlag = 0x2
)

// ChangeRequest is the CHANGE-REQUEST attribute (RFC 5780 section 7.2):
// the client asks for the answer to come from the server's other IP
// address, its other port, or both. It tells the filtering tests of RFC
// 5780 section 4.4 apart.
type ChangeRequest struct {
	IP   bool
	Port bool
}

// AddTo adds CHANGE-REQUEST to m.
func (c ChangeRequest) AddTo(m *stun.Message) error {
	var flags uint32
	if c.IP {
		flags |= changeIPFlag
	}
	if c.Port {
		flags |= changePortFlag
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], flags)
	m.Add(stun.AttrChangeRequest, v[:])
	return nil
}

// GetFrom decodes CHANGE-REQUEST from m. Bits other than the two flags are
// ignored, as RFC 5780 section 7.2 leaves them unused.
func (c *ChangeRequest) GetFrom(m *stun.Message) error {
	v, err := m.Get(stun.AttrChangeRequest)
	if err != nil {
		return err
	}
	if len(v) != 4 {
		return fmt.Errorf("%w: CHANGE-REQUEST of %d bytes", errAttrLength, len(v))
	}
	flags := binary.BigEndian.Uint32(v)
	c.IP = flags&changeIPFlag != 0
	c.Port = flags&changePortFlag != 0
	return nil
}

// ResponsePort is the RESPONSE-PORT attribute (RFC 5780 section 7.5): the
// port, at the request's source IP, that the answer goes to. The binding
// lifetime test (RFC 5780 section 4.6) sends from one socket and has the
// answer come to another one's mapping.
type ResponsePort uint16

// AddTo adds RESPONSE-PORT to m: the port and two bytes of padding, a
// value of length 4 as RFC 5780 section 7.5 draws it (coturn does the same).
func (p ResponsePort) AddTo(m *stun.Message) error {
	var v [4]byte
	binary.BigEndian.PutUint16(v[:2], uint16(p))
	m.Add(stun.AttrResponsePort, v[:])
	return nil
}

// GetFrom decodes RESPONSE-PORT from m. A value of length 2 is taken too:
// it is the same port with the two padding bytes outside the value, which
// encoders that treat the port as a 16-bit attribute write.
func (p *ResponsePort) GetFrom(m *stun.Message) error {
	v, err := m.Get(stun.AttrResponsePort)
	if err != nil {
		return err
	}
	if len(v) != 2 && len(v) != 4 {
		return fmt.Errorf("%w: RESPONSE-PORT of %d bytes", errAttrLength, len(v))
	}
	*p = ResponsePort(binary.BigEndian.Uint16(v))
	return nil
}

// MaxPadding is the largest PADDING this package writes: RFC 5780 section
// 6.1 pads an answer to a 1500-byte IP datagram, and turnutils_natdiscovery
// -P sends a PADDING of 1500 bytes.
const MaxPadding = 1500

// zeros is the value of every PADDING written; never modified.
var zeros [MaxPadding]byte

// Padding is the PADDING attribute (RFC 5780 section 7.6): that many bytes
// of no meaning, to see whether large (fragmented) datagrams pass.
type Padding int

// AddTo adds a PADDING of p zero bytes to m.
func (p Padding) AddTo(m *stun.Message) error {
	if p < 0 || p > MaxPadding {
		return fmt.Errorf("%w: %d", errPadding, int(p))
	}
	m.Add(stun.AttrPadding, zeros[:p])
	return nil
}

// GetFrom sets p to the length of m's PADDING; its content is ignored.
func (p *Padding) GetFrom(m *stun.Message) error {
	v, err := m.Get(stun.AttrPadding)
	if err != nil {
		return err
	}
	*p = Padding(len(v))
	return nil
}
