package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imsgate/imsgate/internal/siptap"
)

// SIPMessages counts every SIP message on both legs (a siptap.Sink).
type SIPMessages struct {
	messages *prometheus.CounterVec
}

// NewSIPMessages registers the SIP message counter in reg.
func NewSIPMessages(reg prometheus.Registerer) *SIPMessages {
	s := &SIPMessages{messages: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imsgate_sip_messages_total",
		Help: "SIP messages received (in) and sent (out) on each leg (web: WebSocket, core: UDP/TCP/TLS), by method (a response's CSeq method; other for methods outside SIP's registered ones) and status (none for requests; uncommon codes by class, 4xx).",
	}, []string{"leg", "direction", "method", "status"})}
	reg.MustRegister(s.messages)
	return s
}

// knownMethods bounds the method label.
var knownMethods = map[string]bool{
	"INVITE": true, "ACK": true, "BYE": true, "CANCEL": true, "OPTIONS": true, "REGISTER": true,
	"PRACK": true, "UPDATE": true, "INFO": true, "REFER": true, "NOTIFY": true, "SUBSCRIBE": true,
	"PUBLISH": true, "MESSAGE": true,
}

// knownStatus are the codes counted as themselves: the ones calls,
// registrations and messages end with; others by class (4xx).
var knownStatus = map[int]bool{
	100: true, 180: true, 181: true, 182: true, 183: true, 199: true, 200: true, 202: true, 204: true,
	301: true, 302: true, 400: true, 401: true, 403: true, 404: true, 405: true, 407: true, 408: true,
	415: true, 420: true, 422: true, 423: true, 480: true, 481: true, 482: true, 483: true, 484: true,
	486: true, 487: true, 488: true, 489: true, 491: true, 500: true, 501: true, 502: true, 503: true,
	504: true, 600: true, 603: true, 604: true, 606: true,
}

// SIPMessage counts m.
func (s *SIPMessages) SIPMessage(m *siptap.Message) {
	h := m.Head
	if !m.HasHead {
		return
	}
	method := h.Method
	if !knownMethods[method] {
		method = "other"
	}
	status := "none"
	switch {
	case knownStatus[h.Status]:
		status = strconv.Itoa(h.Status)
	case h.Status != 0:
		status = strconv.Itoa(h.Status/100) + "xx" // whatever a peer makes up
	}
	s.messages.WithLabelValues(m.Leg.String(), m.Dir.String(), method, status).Inc()
}
