//go:build interop

package interop

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Presence through the gateway (RFC 6665 SUBSCRIBE/NOTIFY, RFC 3903
// PUBLISH, RFC 3842 message-summary), with Kamailio as the presence server
// (kamailio.cfg under -A WITH_PRESENCE: the presence and presence_xml
// modules, state in memory, every watcher authorised). A browser's
// SUBSCRIBE and PUBLISH go to Kamailio as the gateway's own requests and
// are challenged (407), which the browser answers itself; Kamailio's
// NOTIFYs come to the gateway's Contact and the gateway hands them to the
// browser that subscribed. Kamailio logs every SUBSCRIBE and PUBLISH it
// handles with its Expires (and SIP-If-Match) and its answer: the tests
// read the core's side there.

const (
	pidfType      = "application/pidf+xml"
	presenceStep  = 30 * time.Second
	presenceTable = "/usr/share/kamailio/dbtext/kamailio" // kamailio's db_text schema files
)

// presenceTables are the db_text tables the presence modules open at
// start (version checks); they keep nothing in them.
var presenceTables = []string{"version", "presentity", "active_watchers", "watchers", "xcap"}

// startPresenceKamailio runs Kamailio as registrar, proxy and presence
// server, its db_text directory filled from Kamailio's schema files.
func startPresenceKamailio(t *testing.T) *proc {
	t.Helper()
	db := t.TempDir()
	for _, table := range presenceTables {
		b, err := os.ReadFile(filepath.Join(presenceTable, table))
		if err != nil {
			t.Fatalf("kamailio db_text table %s (apt-get install kamailio): %v", table, err)
		}
		if err := os.WriteFile(filepath.Join(db, table), b, 0o644); err != nil {
			t.Fatalf("write db_text table %s: %v", table, err)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Status}", "kamailio-presence-modules").Output(); err != nil ||
		!strings.Contains(string(out), "installed") {
		t.Fatalf("kamailio-presence-modules is not installed (bash .ci/run installs it)")
	}
	return startKamailioWith(t, "-A", "WITH_PRESENCE", "-A", `PRESENCE_DB="text://`+db+`"`)
}

// newPresenceEnv: the presence server, the gateway, the pages served.
func newPresenceEnv(t *testing.T) *env {
	t.Helper()
	e := &env{kamailio: startPresenceKamailio(t)}
	e.gateway = startGateway(t, gatewayConfig("udp"), repoRoot())
	e.pageBase = startStaticServer(t)
	return e
}

// presenceOptions: user's page on lib running scenario toward target.
func (e *env) presenceOptions(lib, page, scenario, user, target string) browserOptions {
	opts := e.browserOptions(lib, page, scenario, user, target)
	opts.Name = user + "-" + lib
	opts.StepTimeoutMs = int(presenceStep / time.Millisecond)
	return opts
}

// presenceRequest is a SUBSCRIBE or PUBLISH Kamailio's presence route
// handled (kamailio.cfg route[PRESENCE]) and what it answered.
type presenceRequest struct {
	method, ruri, event, expires string
	from, toTag                  string // SUBSCRIBE
	ifMatch                      string // PUBLISH
	callID                       string
	status                       int // 0: no answer logged
}

func (p presenceRequest) String() string {
	s := p.method + " " + p.ruri + " event=" + p.event + " expires=" + p.expires
	if p.method == "SUBSCRIBE" {
		s += " to-tag=" + p.toTag
	} else {
		s += " if-match=" + p.ifMatch
	}
	return s + " call-id=" + p.callID + " -> " + strconv.Itoa(p.status)
}

var (
	kamSubscribe = regexp.MustCompile(`presence: SUBSCRIBE (\S+) event (.*?) expires (\S+) from (\S+) to-tag <(.*?)> call-id (\S+)`)
	kamPublish   = regexp.MustCompile(`presence: PUBLISH (\S+) event (.*?) expires (\S+) if-match <(.*?)> call-id (\S+)`)
	kamAnswered  = regexp.MustCompile(`presence: (SUBSCRIBE|PUBLISH) answered (\d+) call-id (\S+)`)
)

// kamNull is how Kamailio's xlog prints an absent header or tag.
const kamNull = "<null>"

// presenceRequests reads Kamailio's log: each request with the answer
// logged after it (one UDP worker handles them in turn).
func presenceRequests(log string) []presenceRequest {
	var out []presenceRequest
	for _, line := range strings.Split(log, "\n") {
		if m := kamSubscribe.FindStringSubmatch(line); m != nil {
			out = append(out, presenceRequest{method: "SUBSCRIBE", ruri: m[1], event: m[2], expires: m[3], from: m[4], toTag: m[5], callID: m[6]})
			continue
		}
		if m := kamPublish.FindStringSubmatch(line); m != nil {
			out = append(out, presenceRequest{method: "PUBLISH", ruri: m[1], event: m[2], expires: m[3], ifMatch: m[4], callID: m[5]})
			continue
		}
		if m := kamAnswered.FindStringSubmatch(line); m != nil {
			for i := len(out) - 1; i >= 0; i-- {
				if out[i].method == m[1] && out[i].callID == m[3] && out[i].status == 0 {
					out[i].status, _ = strconv.Atoi(m[2])
					break
				}
			}
		}
	}
	return out
}

func filterPresence(reqs []presenceRequest, keep func(presenceRequest) bool) []presenceRequest {
	var out []presenceRequest
	for _, r := range reqs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// logPresence shows Kamailio's and the gateway's account of the presence
// requests.
func logPresence(t *testing.T, e *env) {
	t.Helper()
	for _, r := range presenceRequests(e.kamailio.log()) {
		t.Logf("kamailio: %s", r)
	}
	for _, l := range strings.Split(e.gateway.log(), "\n") {
		for _, what := range []string{"subscription created", "subscription ended", "publish relayed", "notify relayed", "final request of a subscription", "subscription not ended"} {
			if i := strings.Index(l, what); i >= 0 {
				t.Logf("imsgate: %s", l[i:])
				break
			}
		}
	}
}

// pageNotify is a page's notify_in detail (common.js harness.notify).
type pageNotify struct {
	Event       string `json:"event"`
	State       string `json:"state"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
	Basic       string `json:"basic"`
	Waiting     string `json:"waiting"`
}

func (r browserResult) notifies(t *testing.T) []pageNotify {
	t.Helper()
	var out []pageNotify
	for _, d := range r.details("notify_in") {
		var n pageNotify
		if err := json.Unmarshal([]byte(d), &n); err != nil {
			t.Fatalf("notify_in detail %q: %v", d, err)
		}
		out = append(out, n)
	}
	return out
}

// TestPresenceServer checks the presence server alone, SIPp straight to
// Kamailio (uac_presence.xml): SUBSCRIBE 200 and NOTIFY; PUBLISH 200 with
// SIP-ETag and a NOTIFY saying open; its removal 200 and a NOTIFY; the
// unsubscribe 200 and a final NOTIFY. When this fails the browser tests
// below cannot pass, whatever the gateway does.
func TestPresenceServer(t *testing.T) {
	kam := startPresenceKamailio(t)
	uac := startSIPpUAC(t, "uac_presence.xml", "bob", 0)
	if err := uac.wait(30 * time.Second); err != nil {
		errs, _ := os.ReadFile(filepath.Join(artifactDir(t), "sipp-uac-errors.log"))
		t.Fatalf("SIPp against Kamailio's presence server: %v\n--- SIPp errors:\n%s\n--- kamailio log (tail):\n%s",
			err, head(string(errs), 40), tail(kam.log(), 30))
	}
	for _, r := range presenceRequests(kam.log()) {
		t.Logf("kamailio: %s", r)
	}
}

// TestPresence: alice subscribes to bob's presence (Event: presence,
// Accept: application/pidf+xml) from a JsSIP page (ua.subscribe, JsSIP
// 3.12) or a SIP.js page (Subscriber); bob publishes from a SIP.js page
// (Publisher) <basic>open</basic>, then <basic>closed</basic> (SIP-If-Match),
// then removes it (Expires: 0, SIP-If-Match). Alice's page must report the
// NOTIFYs saying open, then closed; each PUBLISH gets 200 at bob's page and
// at Kamailio; alice's unsubscribe reaches Kamailio (Expires: 0 in the
// dialog, 200) and its final NOTIFY reaches her page. JsSIP cannot
// PUBLISH, so SIP.js publishes in both cases.
func TestPresence(t *testing.T) {
	for _, watcher := range []string{"jssip", "sipjs"} {
		t.Run(watcher+"_watches_sipjs", func(t *testing.T) {
			e := newPresenceEnv(t)
			alice := startBrowser(t, e.presenceOptions(watcher, watcher+".html", "presence-watch", "alice", "sip:bob@imsgate.test"))
			e.waitSubscribed(t, alice)
			bob := startBrowser(t, e.presenceOptions("sipjs", "sipjs.html", "presence-publish", "bob", "sip:bob@imsgate.test"))
			p := bob.waitResult(t, browserBudget)
			w := alice.waitResult(t, browserBudget)
			logPresence(t, e)
			t.Logf("%s (watcher) saw presence %q; NOTIFYs %d; SIP %q", w.Library, w.details("presence"), len(w.notifies(t)), w.SIP)
			t.Logf("%s (publisher): publish %q, unpublish %q; SIP %q", p.Library, p.details("publish_done"), p.details("unpublish_done"), p.SIP)
			e.requireOK(t, p, "registered", "publish_done", "unpublish_done")
			e.requireOK(t, w, "registered", "subscribed", "presence_open", "presence_closed")
			requireOpenThenClosed(t, e, w)
			if got := p.details("publish_done"); len(got) != 2 || got[0] != "200" || got[1] != "200" {
				e.failf(t, p, "bob's PUBLISHes (open, closed) ended %q, want 200 twice", got)
			}
			if got := p.details("unpublish_done"); len(got) != 1 || got[0] != "200" {
				e.failf(t, p, "bob's PUBLISH removing his state ended %q, want 200", got)
			}
			if i407, i200 := indexSIP(p.SIP, "< SIP/2.0 407 Proxy Authentication Required (PUBLISH)"), indexSIP(p.SIP, "< SIP/2.0 200 OK (PUBLISH)"); i407 < 0 || i200 < i407 {
				e.failf(t, p, "want PUBLISH, 407, PUBLISH with credentials, 200 on bob's WebSocket")
			}
			if i407, i200 := indexSIP(w.SIP, "< SIP/2.0 407 Proxy Authentication Required (SUBSCRIBE)"), indexSIP(w.SIP, "< SIP/2.0 200 OK (SUBSCRIBE)"); i407 < 0 || i200 < i407 {
				e.failf(t, w, "want SUBSCRIBE, 407, SUBSCRIBE with credentials, 200 on alice's WebSocket")
			}
			requirePublishes(t, e, p)
			requireUnsubscribed(t, e, w)
		})
	}
}

// waitSubscribed waits for the page's "subscribed" (its first NOTIFY
// taken); a page that ends before fails the test with its account and the
// logs of the gateway and Kamailio.
func (e *env) waitSubscribed(t *testing.T, b *browser) {
	t.Helper()
	deadline := time.After(2 * presenceStep)
	for {
		select {
		case got := <-b.events:
			if got == "subscribed" {
				return
			}
		case r, ok := <-b.result:
			if !ok {
				failGateway(t, e.gateway, "the browser exited before subscribing; see %s", b.proc.logPath)
			}
			logPresence(t, e)
			e.failf(t, r, "the page did not subscribe")
		case <-deadline:
			failGateway(t, e.gateway, "the page did not subscribe within %s", 2*presenceStep)
		}
	}
}

// requireOpenThenClosed: the watcher's page reported a NOTIFY saying open
// and a later one saying closed.
func requireOpenThenClosed(t *testing.T, e *env, w browserResult) {
	t.Helper()
	got := w.details("presence")
	open := -1
	for i, s := range got {
		if s == "open" && open < 0 {
			open = i
		}
		if s == "closed" && open >= 0 {
			return
		}
	}
	e.failf(t, w, "alice's page saw presence %q, want open and then closed", got)
}

// requirePublishes: Kamailio answered bob's three authenticated PUBLISHes
// 200: the first without SIP-If-Match, the modification and the removal
// (Expires: 0) with it.
func requirePublishes(t *testing.T, e *env, p browserResult) {
	t.Helper()
	pubs := filterPresence(presenceRequests(e.kamailio.log()), func(r presenceRequest) bool { return r.method == "PUBLISH" })
	if len(pubs) != 3 {
		e.failf(t, p, "Kamailio's presence server handled %d PUBLISHes, want 3 (open, closed, removal): %v", len(pubs), pubs)
	}
	for i, r := range pubs {
		if r.status != 200 || r.event != "presence" {
			e.failf(t, p, "Kamailio answered PUBLISH #%d %d (%s), want 200 for Event: presence", i+1, r.status, r)
		}
		if (i == 0) != (r.ifMatch == kamNull) {
			e.failf(t, p, "PUBLISH #%d at Kamailio has SIP-If-Match %q: want none on the first, the last SIP-ETag on the others", i+1, r.ifMatch)
		}
	}
	if rm := pubs[2]; rm.expires != "0" {
		e.failf(t, p, "the removal reached Kamailio with Expires %q, want 0 (%s)", rm.expires, rm)
	}
	if pubs[0].expires == "0" || pubs[1].expires == "0" {
		e.failf(t, p, "a PUBLISH of state reached Kamailio with Expires: 0: %v", pubs)
	}
}

// requireUnsubscribed: the watcher's subscription began at Kamailio (200)
// and its unsubscribe reached Kamailio in the same dialog with Expires: 0
// and was answered 200.
func requireUnsubscribed(t *testing.T, e *env, w browserResult) {
	t.Helper()
	subs := filterPresence(presenceRequests(e.kamailio.log()), func(r presenceRequest) bool { return r.method == "SUBSCRIBE" })
	initial := filterPresence(subs, func(r presenceRequest) bool { return r.toTag == kamNull && r.status == 200 })
	if len(initial) != 1 || initial[0].event != "presence" || initial[0].ruri != "sip:bob@imsgate.test" {
		e.failf(t, w, "want one SUBSCRIBE to sip:bob@imsgate.test (Event: presence) answered 200 at Kamailio, got %v", subs)
	}
	ends := filterPresence(subs, func(r presenceRequest) bool { return r.callID == initial[0].callID && r.expires == "0" })
	if len(ends) != 1 || ends[0].status != 200 || ends[0].toTag == kamNull {
		e.failf(t, w, "want alice's unsubscribe at Kamailio (in the dialog of call-id %s, Expires: 0, 200), got %v", initial[0].callID, subs)
	}
}

// TestPresenceMWI: a voicemail server (SIPp, uac_mwi.xml) sends carol an
// unsolicited NOTIFY (Event: message-summary, no subscription) through
// Kamailio, which relays it to carol's binding; the gateway hands it to her
// page (JsSIP: the UA's 'sipEvent'; SIP.js: the UserAgent delegate's
// onNotify), which reports its Messages-Waiting line and answers 200.
func TestPresenceMWI(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newPresenceEnv(t)
			b := startBrowser(t, e.presenceOptions(lib.name, lib.page, "mwi-receive", "carol", ""))
			b.waitEvent(t, "registered", presenceStep)
			uac := startSIPpUAC(t, "uac_mwi.xml", "carol", 0)
			requireSIPpDone(t, e.gateway, uac, presenceStep)
			r := b.waitResult(t, browserBudget)
			e.requireOK(t, r, "registered", "mwi")
			ns := r.notifies(t)
			for _, n := range ns {
				t.Logf("%s got a NOTIFY: Event %q, Subscription-State %q, %s: %q", r.Library, n.Event, n.State, n.ContentType, n.Body)
			}
			if got := r.details("mwi"); len(got) != 1 || got[0] != "Messages-Waiting: yes" {
				e.failf(t, r, "the page reported message summaries %q, want one \"Messages-Waiting: yes\"", got)
			}
			if n := ns[0]; !strings.HasPrefix(n.Event, "message-summary") || !strings.Contains(n.Body, "Voice-Message: 2/8 (0/2)") ||
				!strings.HasPrefix(n.ContentType, "application/simple-message-summary") {
				e.failf(t, r, "the NOTIFY reached the page as %+v, want SIPp's message-summary", n)
			}
		})
	}
}

// TestPresenceEndsWithWebSocket: alice's page subscribes to bob's presence;
// then its WebSocket's TCP connection is killed (ss -K: no close frame, no
// un-SUBSCRIBE from the page). The gateway must end the subscription at
// the core itself: a SUBSCRIBE with Expires: 0 in the subscription's
// dialog, which Kamailio answers 200.
func TestPresenceEndsWithWebSocket(t *testing.T) {
	for _, lib := range libraries {
		t.Run(lib.name, func(t *testing.T) {
			e := newPresenceEnv(t)
			b := startBrowser(t, e.presenceOptions(lib.name, lib.name+".html", "presence-watch-hold", "alice", "sip:bob@imsgate.test"))
			e.waitSubscribed(t, b)
			initial := filterPresence(presenceRequests(e.kamailio.log()), func(r presenceRequest) bool {
				return r.method == "SUBSCRIBE" && r.toTag == kamNull && r.status == 200
			})
			if len(initial) != 1 {
				failGateway(t, e.gateway, "want one SUBSCRIBE answered 200 at Kamailio before the drop, got %v", presenceRequests(e.kamailio.log()))
			}
			callID := initial[0].callID
			resetWebSockets(t)
			end := `presence: SUBSCRIBE answered \d+ call-id ` + regexp.QuoteMeta(callID)
			waitErr := waitLogCount(e.kamailio, end, 2, 10*time.Second)
			r := b.waitResult(t, browserBudget)
			logPresence(t, e)
			if waitErr != nil {
				e.failf(t, r, "the gateway did not end the subscription (call-id %s) at Kamailio after the WebSocket dropped: %v", callID, waitErr)
			}
			ends := filterPresence(presenceRequests(e.kamailio.log()), func(r presenceRequest) bool {
				return r.method == "SUBSCRIBE" && r.callID == callID && r.toTag != kamNull
			})
			if len(ends) != 1 || ends[0].expires != "0" || ends[0].status != 200 {
				e.failf(t, r, "after the drop Kamailio got %v in the subscription's dialog, want one SUBSCRIBE Expires: 0 answered 200", ends)
			}
			e.requireOK(t, r, "registered", "subscribed", "disconnected")
		})
	}
}
