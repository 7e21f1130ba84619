package cdr

import (
	"time"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/mediabridge"
)

// Record is one call's detail record, as written and POSTed (JSON).
type Record struct {
	// ID is the gateway's own id of the call (its log lines' call_id).
	ID string `json:"id"`
	// WebCallID and CoreCallID are the SIP Call-IDs of the two legs.
	WebCallID  string `json:"web_call_id"`
	CoreCallID string `json:"core_call_id"`
	// Origin is the leg the call came from: web or core.
	Origin string `json:"origin"`
	// Caller and Callee are the origin INVITE's From URI and Request-URI.
	Caller string `json:"caller"`
	Callee string `json:"callee"`

	Start   time.Time  `json:"start"`
	Ringing *time.Time `json:"ringing,omitempty"` // the first provisional with a To tag
	Answer  *time.Time `json:"answer,omitempty"`
	End     time.Time  `json:"end"`
	// PostDialDelayMs runs from Start to Ringing, or to Answer without one;
	// absent when neither came.
	PostDialDelayMs *int64 `json:"post_dial_delay_ms,omitempty"`
	// DurationMs is the talk time, Answer to End; 0 when not answered.
	DurationMs int64 `json:"duration_ms"`

	// EndReason is b2bua's EndReason (hangup, rejected, canceled,
	// no_answer, flow_closed, ...); EndedBy the side it came from (web,
	// core, gateway); Status the SIP status that went with it, 0 for none.
	EndReason string `json:"end_reason"`
	EndedBy   string `json:"ended_by"`
	Status    int    `json:"status,omitempty"`

	Codec     string  `json:"codec,omitempty"`
	MediaPath string  `json:"media_path,omitempty"` // udp, ice-tcp, turn-udp, turn-tcp, turn-tls
	WebToCore Traffic `json:"web_to_core"`
	CoreToWeb Traffic `json:"core_to_web"`
	// DTMFDigits counts the digits relayed either way.
	DTMFDigits int `json:"dtmf_digits"`
	// QoS is each leg's quality at the end (mediabridge.LegQoS: loss,
	// jitter, the far end's reports, RTT, R and MOS); absent when no media
	// flowed.
	QoS *mediabridge.QoS `json:"qos,omitempty"`
}

// Traffic is the RTP relayed one way.
type Traffic struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// recordOf is call's record at its end.
func recordOf(call b2bua.CallInfo, cause b2bua.Cause, at time.Time) Record {
	r := Record{
		ID: call.ID, WebCallID: call.WebCallID, CoreCallID: call.CoreCallID,
		Origin: call.Origin.String(), Caller: call.Caller, Callee: call.Callee,
		Start: call.Started.UTC(), End: at.UTC(),
		EndReason: cause.Reason.String(), EndedBy: cause.By.String(), Status: cause.Status,
	}
	if !call.Ringing.IsZero() {
		t := call.Ringing.UTC()
		r.Ringing = &t
	}
	if !call.Answered.IsZero() {
		t := call.Answered.UTC()
		r.Answer = &t
		r.DurationMs = at.Sub(call.Answered).Milliseconds()
	}
	switch {
	case r.Ringing != nil:
		pdd := call.Ringing.Sub(call.Started).Milliseconds()
		r.PostDialDelayMs = &pdd
	case r.Answer != nil:
		pdd := call.Answered.Sub(call.Started).Milliseconds()
		r.PostDialDelayMs = &pdd
	}
	if s := call.Summary; s != nil {
		r.Codec, r.MediaPath, r.DTMFDigits = s.Codec, s.MediaPath, s.DTMFDigits
		r.WebToCore = Traffic{Packets: s.WebToCore.Packets, Bytes: s.WebToCore.Bytes}
		r.CoreToWeb = Traffic{Packets: s.CoreToWeb.Packets, Bytes: s.CoreToWeb.Bytes}
		if q := s.QoS; q.Web.MOS != 0 || q.Core.MOS != 0 {
			r.QoS = &q
		}
	}
	return r
}
