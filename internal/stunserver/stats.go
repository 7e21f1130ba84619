package stunserver

import "sync/atomic"

// Stats are the server's counters since New. Each is read atomically; the
// set is not one instant's.
type Stats struct {
	UDPRequests uint64 // datagrams received
	TCPRequests uint64 // messages read from TCP connections
	Answered    uint64 // Binding success responses sent
	Refused     uint64 // Binding error responses sent (400, 420)
	ChangedIP   uint64 // answers sent from the other IP (CHANGE-REQUEST)
	ChangedPort uint64 // answers sent from the other port (CHANGE-REQUEST)
	Malformed   uint64 // dropped: not STUN, bad length, bad attributes or FINGERPRINT, TCP frame too long
	Ignored     uint64 // dropped by rule: indications, responses, methods other than Binding
	SendErrors  uint64 // answers the socket would not send
	TCPRefused  uint64 // connections closed at once, over the connection limit
}

// counters is Stats, written by the read loops.
type counters struct {
	udpRequests, tcpRequests                   atomic.Uint64
	answered, refused, changedIP, changedPort  atomic.Uint64
	malformed, ignored, sendErrors, tcpRefused atomic.Uint64
}

// count records one decision on a message that came in on role local.
func (c *counters) count(d decision, local role) {
	switch d.action {
	case actionAnswer:
		c.answered.Add(1)
		changed := d.from ^ local
		if changed&roleAltIP != 0 {
			c.changedIP.Add(1)
		}
		if changed&roleAltPort != 0 {
			c.changedPort.Add(1)
		}
	case actionRefuse:
		c.refused.Add(1)
	case actionDrop:
		c.malformed.Add(1)
	case actionIgnore:
		c.ignored.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		UDPRequests: c.udpRequests.Load(),
		TCPRequests: c.tcpRequests.Load(),
		Answered:    c.answered.Load(),
		Refused:     c.refused.Load(),
		ChangedIP:   c.changedIP.Load(),
		ChangedPort: c.changedPort.Load(),
		Malformed:   c.malformed.Load(),
		Ignored:     c.ignored.Load(),
		SendErrors:  c.sendErrors.Load(),
		TCPRefused:  c.tcpRefused.Load(),
	}
}
