package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/timeline"
)

// TestLoopbackCallTimeline: after an echo call the browser hangs up and a
// call the core refuses, /api/calls on the admin listener lists both as
// ended, and /api/calls/{id} (by the gateway's id or either Call-ID) tells
// each one's story in time order: the browser's INVITE in, the core leg's
// INVITE out, the answers back, ACK and BYE on both legs, the states and
// the end with its reason and quality.
func TestLoopbackCallTimeline(t *testing.T) {
	noLeaks(t)
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answeredThenRefused(t, ctx, r.browser(ctx, "alice"))
	base := "http://" + r.gw.AdminAddr()
	var list struct{ Active, Ended []timeline.Call }
	waitFor(t, ctx, "both calls to end", func() bool {
		if err := json.Unmarshal([]byte(get(t, base+"/api/calls", http.StatusOK)), &list); err != nil {
			t.Fatal(err)
		}
		return len(list.Ended) == 2
	})
	time.Sleep(200 * time.Millisecond) // the last 200 for BYE on the core leg
	if len(list.Active) != 0 || len(list.Ended) != 2 {
		t.Fatalf("/api/calls: %d active, %d ended; want 0 and 2", len(list.Active), len(list.Ended))
	}
	// Latest first; the answered call may well end after the refused one
	// began, as its media takes a moment to close.
	refused, answered := list.Ended[0], list.Ended[1]
	if refused.EndReason == "hangup" {
		refused, answered = answered, refused
	}
	if refused.EndReason != "rejected" || refused.Status != 486 || answered.EndReason != "hangup" || answered.EndedBy != "web" {
		t.Fatalf("ended calls: %+v / %+v", refused, answered)
	}
	if len(answered.Events) != 0 {
		t.Errorf("the list carries events")
	}

	for _, id := range []string{answered.ID, answered.WebCallID, answered.CoreCallID} {
		var c timeline.Call
		if err := json.Unmarshal([]byte(get(t, base+"/api/calls/"+id, http.StatusOK)), &c); err != nil {
			t.Fatal(err)
		}
		if c.ID != answered.ID {
			t.Fatalf("/api/calls/%s is call %s, want %s", id, c.ID, answered.ID)
		}
		var story []string
		for i, ev := range c.Events {
			if i > 0 && ev.At.Before(c.Events[i-1].At) {
				t.Errorf("event %d (%s) before the one ahead of it", i, ev.Text)
			}
			what := ev.Kind + " " + ev.Text
			if ev.Kind == "sip" {
				what = ev.Leg + " " + ev.Dir + " " + strings.SplitN(ev.Text, " ", 3)[0] + " " + strings.SplitN(ev.Text, " ", 3)[1]
				if ev.Message == "" || ev.From == "" || ev.To == "" {
					t.Errorf("a SIP event without its message or addresses: %+v", ev)
				}
			}
			story = append(story, what)
		}
		t.Logf("call %s: %s", id, strings.Join(story, " | "))
		for _, want := range []string{
			"web in INVITE sip:echo@imsgate.test", "core out INVITE sip:echo@imsgate.test", "core in SIP/2.0 200",
			"web out SIP/2.0 200", "web in ACK", "core out ACK", "web in BYE", "core out BYE", "core in SIP/2.0 200",
			"state calling", "state confirmed", "media ICE and DTLS up, SRTP keyed: media path udp", "end hangup by web",
		} {
			found := false
			for _, s := range story {
				if strings.HasPrefix(s, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("%q is not in the timeline", want)
			}
		}
		if c.QoS == nil || c.QoS.Web.PacketsReceived == 0 {
			t.Errorf("the timeline has no quality at the end: %+v", c.QoS)
		}
	}
	if b := get(t, base+"/api/calls/nosuchcall", http.StatusNotFound); !strings.Contains(b, "no such call") {
		t.Errorf("unknown call: %q", b)
	}
	// The status page and its figures.
	if b := get(t, base+"/", http.StatusOK); !strings.Contains(b, "status.js") {
		t.Errorf("the status page: %q", b)
	}
	var stats struct {
		Now struct {
			CallsActive, Registrations int
			Ready                      bool
		}
		History []any
	}
	if err := json.Unmarshal([]byte(get(t, base+"/api/stats", http.StatusOK)), &stats); err != nil || !stats.Now.Ready || stats.Now.Registrations != 1 {
		t.Errorf("/api/stats: %v %+v", err, stats)
	}
}
