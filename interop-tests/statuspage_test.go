//go:build interop

package interop

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// statusPageResult is browser/statuspage.js's result line.
type statusPageResult struct {
	OK         bool     `json:"ok"`
	Error      string   `json:"error"`
	Console    []string `json:"console"`
	Screenshot string   `json:"screenshot"`
	Page       struct {
		Ready      string   `json:"ready"`
		Cards      []string `json:"cards"`
		ActiveRows []string `json:"activeRows"`
		Charts     int      `json:"charts"`
		WebArrows  int      `json:"webArrows"`
		CoreArrows int      `json:"coreArrows"`
		Notes      []string `json:"notes"`
		Labels     []string `json:"labels"`
	} `json:"page"`
}

// TestStatusPage: while JsSIP in Chromium talks to the SIPp echo through
// Kamailio, a second Chromium opens the status page on the admin listener.
// It asks for the admin token, then shows the gateway ready, the call up
// with each leg's MOS, the three charts of the last hour, and, clicked, the
// call's ladder: the browser leg's and the core leg's messages as arrows,
// with the media coming up and a quality sample between them. The
// screenshot is kept in the test's artifacts (status.png).
func TestStatusPage(t *testing.T) {
	const token = "interop-status-token"
	e := newEnvWith(t, "udp", "admin:\n  listen: "+adminAddr+"\n  token: "+token+"\n")
	opts := e.browserOptions("jssip", "jssip.html", "call-out", "alice", "sip:echo@imsgate.test")
	opts.TalkMs = 20000
	caller := startBrowser(t, opts)
	// The call is up once the API says so.
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/api/calls", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var list struct{ Active []struct{ State string } }
		if res, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(res.Body).Decode(&list)
			res.Body.Close()
		}
		if len(list.Active) == 1 && list.Active[0].State == "confirmed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call up in /api/calls: %+v", list)
		}
	}

	arg, _ := json.Marshal(map[string]any{"pageURL": "http://" + adminAddr + "/", "token": token,
		"artifactsDir": artifactDir(t), "screenshot": "status.png", "timeoutMs": 30000})
	var r statusPageResult
	last := runPageScript(t, "status-browser", "statuspage.js", arg, 90*time.Second)
	if err := json.Unmarshal([]byte(last), &r); err != nil || !r.OK {
		t.Fatalf("status page: %v %s\nconsole: %s\n%s", err, r.Error, strings.Join(r.Console, "\n"), last)
	}
	p := r.Page
	t.Logf("status page (%s): %s; cards %q; calls up %q; charts %d; ladder: %d web arrows, %d core arrows %q, notes %q",
		r.Screenshot, p.Ready, p.Cards, p.ActiveRows, p.Charts, p.WebArrows, p.CoreArrows, p.Labels, p.Notes)
	if p.Ready != "ready" || len(p.ActiveRows) != 1 || !strings.Contains(p.ActiveRows[0], "sip:echo@imsgate.test") ||
		strings.Count(p.ActiveRows[0], "MOS") != 2 || p.Charts != 3 {
		t.Errorf("the page shows %q, calls up %q, %d charts: want ready, the echo call with a MOS per leg, three charts", p.Ready, p.ActiveRows, p.Charts)
	}
	media, sample := false, false
	for _, n := range p.Notes {
		media = media || strings.HasPrefix(n, "media: ICE and DTLS up")
		sample = sample || strings.HasPrefix(n, "qos: web MOS")
	}
	if !media || !sample {
		t.Errorf("the ladder's notes %q lack the media coming up or a quality sample", p.Notes)
	}
	for _, c := range r.Console {
		// Chromium logs the API's 401 before the token is given.
		if strings.Contains(c, "401 (Unauthorized)") {
			continue
		}
		if strings.HasPrefix(c, "pageerror") || strings.HasPrefix(c, "error") {
			t.Errorf("the page's console: %s", c)
		}
	}
	e.requireOK(t, caller.waitResult(t, browserBudget), "confirmed", "ended")
}
