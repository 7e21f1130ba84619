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
		Help: "SIP messages received (in) and sent (out) on each leg (web: WebSocket, core: UDP/TCP/TLS), by method (a response's CSeq method; other for methods outside SIP's registered ones) and status (none for requests).",
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

// SIPMessage counts m.
func (s *SIPMessages) SIPMessage(m *siptap.Message) {
	h, ok := siptap.ParseHead(m.Raw)
	if !ok {
		return
	}
	method := h.Method
	if !knownMethods[method] {
		method = "other"
	}
	status := "none"
	if h.Status != 0 {
		status = strconv.Itoa(h.Status)
	}
	s.messages.WithLabelValues(m.Leg.String(), m.Dir.String(), method, status).Inc()
}
