package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/imsgate/imsgate/interop-tests/webua"
)

func TestFailureReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"sip status", fmt.Errorf("result: %w", &webua.StatusError{Code: 503, Reason: "Service Unavailable"}), "invite: status 503"},
		{"deadline", fmt.Errorf("result: %w", context.DeadlineExceeded), "invite: timeout"},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "invite: connection refused"},
		{"out of ports", fmt.Errorf("dial: %w", syscall.EADDRNOTAVAIL), "invite: no free source port"},
		{"numbers blanked", errors.New("port 40123 on 127.0.0.1"), "invite: port NNNNN on NNN.N.N.N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := failureReason("invite", tt.err); got != tt.want {
				t.Errorf("failureReason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLevelVerdict(t *testing.T) {
	tests := []struct {
		name string
		r    CallsResult
		held bool
	}{
		{"clean", CallsResult{OK: 50, LossPct: 0.1, RTT: Percentiles{P99: 3}}, true},
		{"failed call", CallsResult{OK: 49, Failed: 1}, false},
		{"loss", CallsResult{OK: 50, LossPct: 0.6}, false},
		{"rtt", CallsResult{OK: 50, RTT: Percentiles{P99: 51}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := levelVerdict(&tt.r); (got == "") != tt.held {
				t.Errorf("verdict %q, want held=%v", got, tt.held)
			}
		})
	}
}

func TestRunCallsOptions(t *testing.T) {
	good := CallsOptions{WS: "ws://127.0.0.1:1/", Target: "sip:echo@imsgate.test", Domain: "imsgate.test", Calls: 1, Rate: 1, Duration: time.Second}
	tests := []struct {
		name   string
		change func(o *CallsOptions)
	}{
		{"no ws", func(o *CallsOptions) { o.WS = "" }},
		{"no target", func(o *CallsOptions) { o.Target = "" }},
		{"no calls", func(o *CallsOptions) { o.Calls = 0 }},
		{"no rate", func(o *CallsOptions) { o.Rate = 0 }},
		{"hold shorter than the loss window", func(o *CallsOptions) { o.Duration = 100 * time.Millisecond }},
		{"missing gateway pid", func(o *CallsOptions) { o.GatewayPids = []int{1 << 30} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := good
			tt.change(&o)
			if _, err := RunCalls(context.Background(), o); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestRunCallsCountsFailures points the generator at a closed port: every
// call fails at the dial, counted under one reason, and the run ends.
func TestRunCallsCountsFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := RunCalls(ctx, CallsOptions{WS: "ws://" + addr + "/", Target: "sip:echo@imsgate.test", Domain: "imsgate.test",
		Calls: 3, Rate: 100, Duration: time.Second})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.OK != 0 || res.Failed != 3 || res.Failures["dial: connection refused"] != 3 {
		t.Errorf("ok %d failed %d reasons %v: want 3 x dial: connection refused", res.OK, res.Failed, res.Failures)
	}
	if res.Setup.Count != 0 || res.PacketsSent != 0 {
		t.Errorf("setup samples %d, packets %d: want none", res.Setup.Count, res.PacketsSent)
	}
}
