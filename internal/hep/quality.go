package hep

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/mediabridge"
)

// qualityReport is one leg's quality at a call's end, as a HEP JSON report.
type qualityReport struct {
	Type   string `json:"type"` // "call-quality"
	CallID string `json:"call_id"`
	Leg    string `json:"leg"` // web or core
	mediabridge.LegQoS
}

// CallStateChanged is nothing to HEP.
func (e *Exporter) CallStateChanged(b2bua.CallInfo, b2bua.CallState, time.Time) {}

// CallEnded exports each leg's quality, correlated to that leg's Call-ID,
// when media flowed.
func (e *Exporter) CallEnded(call b2bua.CallInfo, _ b2bua.Cause, at time.Time) {
	if call.Summary == nil {
		return
	}
	for _, leg := range []struct {
		name, callID string
		q            mediabridge.LegQoS
	}{
		{"web", call.WebCallID, call.Summary.QoS.Web},
		{"core", call.CoreCallID, call.Summary.QoS.Core},
	} {
		if leg.q.MOS == 0 || leg.callID == "" {
			continue
		}
		body, err := json.Marshal(qualityReport{Type: "call-quality", CallID: leg.callID, Leg: leg.name, LegQoS: leg.q})
		if err != nil {
			continue
		}
		none := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
		e.enqueue(packet{at: at, src: none, dst: none, ipProto: ipProtoUDP, protoType: protoQoSJSON,
			correlation: leg.callID, payload: body})
	}
}
