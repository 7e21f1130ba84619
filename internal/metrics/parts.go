package metrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/internal/cdr"
	"github.com/imsgate/imsgate/internal/edge"
	"github.com/imsgate/imsgate/internal/stunserver"
	"github.com/imsgate/imsgate/internal/turnserver"
)

// Gateway is what the B2BUA tells of itself (b2bua.Gateway).
type Gateway interface {
	Calls() int
	Bindings() int
	Refusals() map[string]uint64
	DTMFCounts() map[string]uint64
	MediaPaths() map[string]uint64
}

// RegisterGateway exposes the B2BUA's gauges and counts.
func RegisterGateway(reg prometheus.Registerer, g Gateway) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "imsgate_calls_active",
			Help: "Calls in progress: from the first INVITE to the end.",
		}, func() float64 { return float64(g.Calls()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "imsgate_registrations_active",
			Help: "Browser registrations the core has accepted and that have not expired.",
		}, func() float64 { return float64(g.Bindings()) }),
		snapshot{
			desc: prometheus.NewDesc("imsgate_sip_refusals_total",
				"Browser requests refused before anything was relayed, by reason.", []string{"reason"}, nil),
			kind: prometheus.CounterValue, read: g.Refusals,
		},
		snapshot{
			desc: prometheus.NewDesc("imsgate_dtmf_digits_total",
				"DTMF digits relayed, by direction and the forms they arrived and left in (info, rfc4733, inband).",
				[]string{"direction", "arrived", "left"}, nil),
			kind: prometheus.CounterValue, read: g.DTMFCounts, labels: dtmfLabels,
		},
		snapshot{
			desc: prometheus.NewDesc("imsgate_call_media_paths_total",
				"Calls by the path their browser media took (udp, ice-tcp, turn-udp, turn-tcp, turn-tls).", []string{"path"}, nil),
			kind: prometheus.CounterValue, read: g.MediaPaths,
		},
	)
}

// RegisterRequests exposes what the relay of requests outside calls has
// done: MESSAGEs by direction and outcome, and subscriptions.
func RegisterRequests(reg prometheus.Registerer, stats func() (map[string]uint64, int)) {
	messages := prometheus.NewDesc("imsgate_messages_total",
		"MESSAGEs relayed, by direction (web_to_core, core_to_web) and outcome (the final status class, or no_answer).",
		[]string{"direction", "outcome"}, nil)
	subs := prometheus.NewDesc("imsgate_subscriptions_active", "SUBSCRIBE dialogs relayed between a browser and the core that exist now.", nil, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{messages, subs},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			byKey, active := stats()
			for k, n := range byKey {
				direction, outcome, _ := strings.Cut(k, " ")
				emit(messages, prometheus.CounterValue, float64(n), direction, outcome)
			}
			emit(subs, prometheus.GaugeValue, float64(active))
		},
	})
}

// dtmfLabels splits b2bua's "web info -> core rfc4733" into
// web_to_core, info, rfc4733.
func dtmfLabels(key string) []string {
	in, out, _ := strings.Cut(key, " -> ")
	fromSide, arrived, _ := strings.Cut(in, " ")
	toSide, left, _ := strings.Cut(out, " ")
	return []string{fromSide + "_to_" + toSide, arrived, left}
}

// WebSockets is what the WebSocket intake tells of itself (sipws.Server).
type WebSockets interface {
	Len() int
	Upgrades() uint64
	Refusals() map[string]uint64
}

// RegisterWebSockets exposes the WebSocket intake's gauges and counts.
func RegisterWebSockets(reg prometheus.Registerer, ws WebSockets) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "imsgate_ws_connections_active",
			Help: "SIP WebSocket connections open (WS and WSS).",
		}, func() float64 { return float64(ws.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "imsgate_ws_upgrades_total",
			Help: "WebSocket upgrades accepted (refused ones: imsgate_ws_refusals_total).",
		}, func() float64 { return float64(ws.Upgrades()) }),
		snapshot{
			desc: prometheus.NewDesc("imsgate_ws_refusals_total",
				"Connections, upgrades and messages the WebSocket intake refused, by limit or check.", []string{"reason"}, nil),
			kind: prometheus.CounterValue, read: ws.Refusals,
		},
	)
}

// RegisterTURN exposes the TURN server's counters.
func RegisterTURN(reg prometheus.Registerer, stats func() turnserver.Stats) {
	active := prometheus.NewDesc("imsgate_turn_allocations_active", "TURN allocations that exist, by the client's transport.", []string{"transport"}, nil)
	created := prometheus.NewDesc("imsgate_turn_allocations_total", "TURN allocations made, by the client's transport.", []string{"transport"}, nil)
	refused := prometheus.NewDesc("imsgate_turn_refusals_total",
		"TURN requests and connections refused: auth (401), quota (486), peer (403 by policy), permits (403, too many peers), conns (over the pending bound), timeout (no allocation in time), to_self (a datagram to the server itself, dropped).",
		[]string{"reason"}, nil)
	packets := prometheus.NewDesc("imsgate_turn_relayed_packets_total", "Datagrams relays sent to peers (to_peer) and received from them (from_peer).", []string{"direction"}, nil)
	bytes := prometheus.NewDesc("imsgate_turn_relayed_bytes_total", "Payload bytes of imsgate_turn_relayed_packets_total.", []string{"direction"}, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{active, created, refused, packets, bytes},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			st := stats()
			for _, t := range []struct {
				name            string
				active, created int64
			}{{"udp", st.Active.UDP, st.Created.UDP}, {"tcp", st.Active.TCP, st.Created.TCP}, {"tls", st.Active.TLS, st.Created.TLS}} {
				emit(active, prometheus.GaugeValue, float64(t.active), t.name)
				emit(created, prometheus.CounterValue, float64(t.created), t.name)
			}
			for reason, n := range map[string]uint64{
				"auth": st.RefusedAuth, "quota": st.RefusedQuota, "peer": st.RefusedPeer, "permits": st.RefusedPermits,
				"conns": st.RefusedConns, "timeout": st.TimedOutConns, "to_self": st.DroppedToSelf,
			} {
				emit(refused, prometheus.CounterValue, float64(n), reason)
			}
			emit(packets, prometheus.CounterValue, float64(st.ToPeers.Packets), "to_peer")
			emit(packets, prometheus.CounterValue, float64(st.FromPeers.Packets), "from_peer")
			emit(bytes, prometheus.CounterValue, float64(st.ToPeers.Bytes), "to_peer")
			emit(bytes, prometheus.CounterValue, float64(st.FromPeers.Bytes), "from_peer")
		},
	})
}

// RegisterEdge exposes the shared port's classifications: the
// connections it handed on, by what their first bytes were, and those it
// closed (unrecognised, too slow, over the per-source bound).
func RegisterEdge(reg prometheus.Registerer, counts func() (map[edge.Kind]uint64, uint64)) {
	classified := prometheus.NewDesc("imsgate_edge_connections_total",
		"Connections the shared port (edge.listen) handed on, by kind: ws, wss, tls (WSS whose TLS the edge ended), turn-tcp, turn-tls, ice-tcp.",
		[]string{"kind"}, nil)
	closed := prometheus.NewDesc("imsgate_edge_connections_closed_total",
		"Connections the shared port closed unclassified: unrecognised first bytes, too slow, or over the per-source bound.", nil, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{classified, closed},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			byKind, n := counts()
			for k, v := range byKind {
				emit(classified, prometheus.CounterValue, float64(v), k.String())
			}
			emit(closed, prometheus.CounterValue, float64(n))
		},
	})
}

// RegisterUpstreams exposes the upstreams' health from the OPTIONS
// keepalive (one series per configured upstream).
func RegisterUpstreams(reg prometheus.Registerer, health func() []b2bua.UpstreamHealth) {
	up := prometheus.NewDesc("imsgate_upstream_up", "1 while the upstream answers the OPTIONS keepalive (anything but 503), by its configured URI.", []string{"upstream"}, nil)
	inUse := prometheus.NewDesc("imsgate_upstream_in_use", "1 for the upstream requests outside a dialog go to now.", []string{"upstream"}, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{up, inUse},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			for _, h := range health() {
				emit(up, prometheus.GaugeValue, boolValue(h.Up), h.URI)
				emit(inUse, prometheus.GaugeValue, boolValue(h.Current), h.URI)
			}
		},
	})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// RegisterCDR exposes the call detail records' counters.
func RegisterCDR(reg prometheus.Registerer, stats func() cdr.Stats) {
	records := prometheus.NewDesc("imsgate_cdr_records_total",
		"Call detail records: written to cdr.file, delivered to cdr.webhook, rejected by it for good (moved to spool_dir/rejected), file_error (cdr.file did not take it), lost (neither queued nor spooled); the last two are logged at error in full.",
		[]string{"outcome"}, nil)
	failures := prometheus.NewDesc("imsgate_cdr_webhook_failures_total", "Webhook attempts that failed (an error or a non-2xx answer); each is retried.", nil, nil)
	pending := prometheus.NewDesc("imsgate_cdr_spool_records", "Records in the spool, waiting for the webhook.", nil, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{records, failures, pending},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			st := stats()
			emit(records, prometheus.CounterValue, float64(st.Written), "written")
			emit(records, prometheus.CounterValue, float64(st.Delivered), "delivered")
			emit(records, prometheus.CounterValue, float64(st.Lost), "lost")
			emit(records, prometheus.CounterValue, float64(st.Rejected), "rejected")
			emit(records, prometheus.CounterValue, float64(st.FileErrors), "file_error")
			emit(failures, prometheus.CounterValue, float64(st.Failures))
			emit(pending, prometheus.GaugeValue, float64(st.Pending))
		},
	})
}

// RegisterSTUN exposes the STUN server's counters.
func RegisterSTUN(reg prometheus.Registerer, stats func() stunserver.Stats) {
	requests := prometheus.NewDesc("imsgate_stun_requests_total", "STUN messages received, by transport.", []string{"transport"}, nil)
	outcomes := prometheus.NewDesc("imsgate_stun_outcomes_total",
		"What the STUN server did with a message: answered, refused (400, 420), malformed, ignored, send_error; tcp_refused counts connections over the limit.",
		[]string{"outcome"}, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{requests, outcomes},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			st := stats()
			emit(requests, prometheus.CounterValue, float64(st.UDPRequests), "udp")
			emit(requests, prometheus.CounterValue, float64(st.TCPRequests), "tcp")
			for outcome, n := range map[string]uint64{
				"answered": st.Answered, "refused": st.Refused, "malformed": st.Malformed, "ignored": st.Ignored,
				"send_error": st.SendErrors, "tcp_refused": st.TCPRefused,
			} {
				emit(outcomes, prometheus.CounterValue, float64(n), outcome)
			}
		},
	})
}

// RegisterHEP exposes the HEP export's packet counts: sent to the
// collector, and dropped (queue full, too large, or refused by the network).
func RegisterHEP(reg prometheus.Registerer, sent, dropped func() uint64) {
	packets := prometheus.NewDesc("imsgate_hep_packets_total",
		"HEP packets exported to hep.address: sent, or dropped (the export queue full, a packet too large for a datagram, or the write refused).",
		[]string{"outcome"}, nil)
	reg.MustRegister(values{
		descs: []*prometheus.Desc{packets},
		read: func(emit func(*prometheus.Desc, prometheus.ValueType, float64, ...string)) {
			emit(packets, prometheus.CounterValue, float64(sent()), "sent")
			emit(packets, prometheus.CounterValue, float64(dropped()), "dropped")
		},
	})
}
