package metrics

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imsgate/imsgate/b2bua"
	"github.com/imsgate/imsgate/internal/turnserver"
)

func TestDTMFLabels(t *testing.T) {
	for key, want := range map[string][]string{
		"web info -> core rfc4733":   {"web_to_core", "info", "rfc4733"},
		"core rfc4733 -> web info":   {"core_to_web", "rfc4733", "info"},
		"core inband -> web rfc4733": {"core_to_web", "inband", "rfc4733"},
	} {
		if got := dtmfLabels(key); !slices.Equal(got, want) {
			t.Errorf("dtmfLabels(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestCalls: a call answered after ringing times its post-dial delay at
// the ringing, one answered at once at the answer; ends count by reason,
// side and status.
func TestCalls(t *testing.T) {
	reg := NewRegistry()
	c := NewCalls(reg)
	t0 := time.Unix(1000, 0)
	ringing := b2bua.CallInfo{ID: "a", Origin: b2bua.SideWeb, Started: t0}
	c.CallStateChanged(ringing, b2bua.StateCalling, t0)
	ringing.Ringing = t0.Add(300 * time.Millisecond)
	c.CallStateChanged(ringing, b2bua.StateEarly, ringing.Ringing)
	c.CallStateChanged(ringing, b2bua.StateConfirmed, t0.Add(4*time.Second))
	c.CallEnded(ringing, b2bua.Cause{Reason: b2bua.EndHangup, By: b2bua.SideCore}, t0.Add(time.Minute))
	direct := b2bua.CallInfo{ID: "b", Origin: b2bua.SideCore, Started: t0}
	c.CallStateChanged(direct, b2bua.StateCalling, t0)
	c.CallStateChanged(direct, b2bua.StateConfirmed, t0.Add(700*time.Millisecond))
	c.CallEnded(direct, b2bua.Cause{Reason: b2bua.EndRejected, By: b2bua.SideCore, Status: 486}, t0.Add(time.Second))

	want := `
# HELP imsgate_call_post_dial_delay_seconds Post-dial delay: time from a call's first INVITE to its first provisional response with a To tag (ringing or early media), or to its answer when none came first.
# TYPE imsgate_call_post_dial_delay_seconds histogram
imsgate_call_post_dial_delay_seconds_bucket{le="0.05"} 0
imsgate_call_post_dial_delay_seconds_bucket{le="0.1"} 0
imsgate_call_post_dial_delay_seconds_bucket{le="0.25"} 0
imsgate_call_post_dial_delay_seconds_bucket{le="0.5"} 1
imsgate_call_post_dial_delay_seconds_bucket{le="1"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="2"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="3"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="5"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="8"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="13"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="20"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="30"} 2
imsgate_call_post_dial_delay_seconds_bucket{le="+Inf"} 2
imsgate_call_post_dial_delay_seconds_sum 1
imsgate_call_post_dial_delay_seconds_count 2
# HELP imsgate_calls_ended_total Calls ended, by end reason, the side that ended them and the SIP status that went with it (none when none did).
# TYPE imsgate_calls_ended_total counter
imsgate_calls_ended_total{by="core",reason="hangup",status="none"} 1
imsgate_calls_ended_total{by="core",reason="rejected",status="486"} 1
# HELP imsgate_calls_started_total Calls whose first INVITE reached the gateway, by the side it came from (web, core).
# TYPE imsgate_calls_started_total counter
imsgate_calls_started_total{origin="core"} 1
imsgate_calls_started_total{origin="web"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"imsgate_call_post_dial_delay_seconds", "imsgate_calls_ended_total", "imsgate_calls_started_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c.setup); n != 1 {
		t.Errorf("setup histogram series %d", n)
	}
}

// TestParts: the scrape-time collectors read what they are given and pass
// the linter promtool check metrics runs.
func TestParts(t *testing.T) {
	reg := NewRegistry()
	RegisterGateway(reg, fakeGateway{})
	RegisterWebSockets(reg, fakeWS{})
	RegisterTURN(reg, func() turnserver.Stats {
		return turnserver.Stats{Active: turnserver.PerTransport{UDP: 2}, RefusedPeer: 3, ToPeers: turnserver.Traffic{Packets: 10, Bytes: 1600}}
	})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP imsgate_turn_refusals_total TURN requests and connections refused: auth (401), quota (486), peer (403 by policy), permits (403, too many peers), conns (over the pending bound), timeout (no allocation in time), to_self (a datagram to the server itself, dropped).
# TYPE imsgate_turn_refusals_total counter
imsgate_turn_refusals_total{reason="auth"} 0
imsgate_turn_refusals_total{reason="conns"} 0
imsgate_turn_refusals_total{reason="peer"} 3
imsgate_turn_refusals_total{reason="permits"} 0
imsgate_turn_refusals_total{reason="quota"} 0
imsgate_turn_refusals_total{reason="timeout"} 0
imsgate_turn_refusals_total{reason="to_self"} 0
# HELP imsgate_dtmf_digits_total DTMF digits relayed, by direction and the forms they arrived and left in (info, rfc4733, inband).
# TYPE imsgate_dtmf_digits_total counter
imsgate_dtmf_digits_total{arrived="info",direction="web_to_core",left="rfc4733"} 4
# HELP imsgate_ws_connections_active SIP WebSocket connections open (WS and WSS).
# TYPE imsgate_ws_connections_active gauge
imsgate_ws_connections_active 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"imsgate_turn_refusals_total", "imsgate_dtmf_digits_total", "imsgate_ws_connections_active"); err != nil {
		t.Error(err)
	}
}

type fakeGateway struct{}

func (fakeGateway) Calls() int                  { return 1 }
func (fakeGateway) Bindings() int               { return 2 }
func (fakeGateway) Refusals() map[string]uint64 { return map[string]uint64{"unregistered": 5} }
func (fakeGateway) DTMFCounts() map[string]uint64 {
	return map[string]uint64{"web info -> core rfc4733": 4}
}
func (fakeGateway) MediaPaths() map[string]uint64 { return map[string]uint64{"udp": 3} }

type fakeWS struct{}

func (fakeWS) Len() int                    { return 7 }
func (fakeWS) Upgrades() uint64            { return 9 }
func (fakeWS) Refusals() map[string]uint64 { return map[string]uint64{"upgrade_rate": 1} }
