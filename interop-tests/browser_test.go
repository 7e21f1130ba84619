//go:build interop

package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// browserOptions is what browser/run.js reads (its JSON argument).
type browserOptions struct {
	Lib           string `json:"lib"` // jssip, sipjs or webphone
	Scenario      string `json:"scenario"`
	PageURL       string `json:"pageURL"`
	WSURL         string `json:"wsURL"`
	URI           string `json:"uri"`
	Password      string `json:"password"`
	Target        string `json:"target"`
	TalkMs        int    `json:"talkMs"`
	StepTimeoutMs int    `json:"stepTimeoutMs"`
	HardTimeoutMs int    `json:"hardTimeoutMs"`
	ArtifactsDir  string `json:"artifactsDir"`
	HoldMethod    string `json:"holdMethod"` // call-out-hold: reinvite or update
	ReferTo       string `json:"referTo"`    // call-out-refer: the transfer target
	NoRegister    bool   `json:"noRegister"` // a SIPp core straight behind the gateway
	Text          string `json:"text"`       // message-*: the MESSAGE body to send
	ContentType   string `json:"contentType"`
	RefusedTarget string `json:"refusedTarget"` // call-then-refused: the call that must fail
	// ChromiumArgs are more Chromium flags, such as
	// --ignore-certificate-errors-spki-list for a test's own certificate.
	ChromiumArgs []string `json:"chromiumArgs,omitempty"`
	// ICEServers and ICETransportPolicy ("all", "relay"; empty: the
	// browser's default) are the calls' RTCConfiguration: JsSIP's pcConfig,
	// SIP.js's peerConnectionConfiguration.
	ICEServers         []iceServer `json:"iceServers,omitempty"`
	ICETransportPolicy string      `json:"iceTransportPolicy,omitempty"`
	// MediaVia ("10000:10002", JsSIP only) rewrites the gateway's media
	// port in the SDP the page receives: the browser's media goes through
	// a test's impairing relay (impair_test.go).
	MediaVia string `json:"mediaVia,omitempty"`
	// Name is the process's name in artifacts/<test>/ (default browser):
	// <name>.log, <name>.out.
	Name string `json:"-"`
}

// iceServer is one RTCIceServer.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// iceCandidate is one end of a candidate pair as getStats() tells it.
type iceCandidate struct {
	CandidateType string `json:"candidateType"` // host, srflx, prflx, relay
	Protocol      string `json:"protocol"`      // udp, tcp
	RelayProtocol string `json:"relayProtocol"` // a relay candidate's leg to its TURN server: udp, tcp, tls
	TCPType       string `json:"tcpType"`       // active, passive, so
	Address       string `json:"address"`
	Port          int    `json:"port"`
	URL           string `json:"url"` // the STUN or TURN server it came from
}

func (c iceCandidate) String() string {
	s := fmt.Sprintf("%s %s %s:%d", c.CandidateType, c.Protocol, c.Address, c.Port)
	if c.TCPType != "" {
		s += " tcptype " + c.TCPType
	}
	if c.RelayProtocol != "" {
		s += " relayed over " + c.RelayProtocol
	}
	return s
}

// candidatePair is the call's selected ICE candidate pair (the
// transport's selectedCandidatePairId, else the nominated succeeded pair),
// as the page's sampler last saw it.
type candidatePair struct {
	State           string       `json:"state"`
	Nominated       bool         `json:"nominated"`
	PacketsSent     int          `json:"packetsSent"`
	PacketsReceived int          `json:"packetsReceived"`
	Local           iceCandidate `json:"local"`
	Remote          iceCandidate `json:"remote"`
}

func (p candidatePair) String() string {
	return fmt.Sprintf("local %s ↔ remote %s (%s, %d packets sent, %d received)",
		p.Local, p.Remote, p.State, p.PacketsSent, p.PacketsReceived)
}

type audioIn struct {
	PacketsReceived  int     `json:"packetsReceived"`
	AudioLevel       float64 `json:"audioLevel"`
	TotalAudioEnergy float64 `json:"totalAudioEnergy"`
}

type audioOut struct {
	PacketsSent int `json:"packetsSent"`
}

type pageEvent struct {
	Name   string  `json:"name"`
	Detail *string `json:"detail"`
	At     int64   `json:"at"` // the page's Date.now(), ms since the epoch
}

// browserResult is run.js's last line.
type browserResult struct {
	Event      string      `json:"event"`
	OK         bool        `json:"ok"`
	Error      string      `json:"error"`
	Library    string      `json:"library"`
	SIP        []string    `json:"sip"` // "> METHOD ..." sent, "< SIP/2.0 200 OK" received
	Events     []pageEvent `json:"events"`
	Console    []string    `json:"console"`
	Screenshot string      `json:"screenshot"`
	Status     string      `json:"status"`
	Log        []string    `json:"log"`
	Stats      struct {
		Inbound  audioIn  `json:"inbound"`
		Outbound audioOut `json:"outbound"`
		// Pair is the selected candidate pair; nil if ICE never chose one.
		Pair *candidatePair `json:"pair"`
		// Quality is the last sample's loss, jitter and round trip; nil if
		// no stream came in.
		Quality *browserQuality `json:"quality"`
	} `json:"stats"`
	// Phases: getStats() packet counters at a scenario's steps
	// (call-out-hold: before, held, holdEnd, resumed, after).
	Phases map[string]packetCounts `json:"phases"`
	// WSErrors is what Chromium said of a WebSocket that failed, such as
	// a refused upgrade's status.
	WSErrors []string `json:"wsErrors"`
}

// browserQuality is what getStats() says of the call's audio (common.js's
// quality): times in seconds.
type browserQuality struct {
	Inbound struct {
		PacketsReceived int     `json:"packetsReceived"`
		PacketsLost     int     `json:"packetsLost"`
		Jitter          float64 `json:"jitter"`
	} `json:"inbound"`
	Outbound struct {
		PacketsSent int `json:"packetsSent"`
	} `json:"outbound"`
	// RemoteInbound is from the gateway's receiver reports; nil before one.
	RemoteInbound *struct {
		PacketsLost   int     `json:"packetsLost"`
		FractionLost  float64 `json:"fractionLost"`
		Jitter        float64 `json:"jitter"`
		RoundTripTime float64 `json:"roundTripTime"`
		Measurements  int     `json:"measurements"`
	} `json:"remoteInbound"`
}

type packetCounts struct {
	Inbound  int `json:"inbound"`
	Outbound int `json:"outbound"`
}

func (r browserResult) hasEvent(name string) bool {
	for _, e := range r.Events {
		if e.Name == name {
			return true
		}
	}
	return false
}

// firstEvent is the page's first event called name.
func (r browserResult) firstEvent(name string) (pageEvent, bool) {
	for _, e := range r.Events {
		if e.Name == name {
			return e, true
		}
	}
	return pageEvent{}, false
}

// details lists the details of the page's events called name, in order.
func (r browserResult) details(name string) []string {
	var out []string
	for _, e := range r.Events {
		if e.Name == name {
			d := ""
			if e.Detail != nil {
				d = *e.Detail
			}
			out = append(out, d)
		}
	}
	return out
}

// sawSIP reports whether a SIP frame's first line starts with prefix
// ("< SIP/2.0 401", "> CANCEL").
func (r browserResult) sawSIP(prefix string) bool {
	for _, l := range r.SIP {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// browser is one run.js process and what it has printed.
type browser struct {
	proc   *proc
	events chan string        // progress event names, in order
	result chan browserResult // exactly one value, then closed
	lines  chan struct{}      // closed when the reader is done
}

// startBrowser runs browser/run.js with opts; its stdout is parsed here and
// also kept in artifacts/<test>/<opts.Name>.out.
func startBrowser(t *testing.T, opts browserOptions) *browser {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "browser"
	}
	if opts.StepTimeoutMs == 0 {
		opts.StepTimeoutMs = 20000
	}
	if opts.HardTimeoutMs == 0 {
		opts.HardTimeoutMs = 150000
	}
	arg, err := json.Marshal(opts)
	if err != nil {
		t.Fatalf("browser options: %v", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	out, err := os.Create(filepath.Join(artifactDir(t), opts.Name+".out"))
	if err != nil {
		t.Fatalf("browser output file: %v", err)
	}
	b := &browser{events: make(chan string, 32), result: make(chan browserResult, 1), lines: make(chan struct{})}
	b.proc = startProc(t, opts.Name, procOptions{dir: interopDir(), stdout: pw},
		"node", filepath.Join(interopDir(), "browser", "run.js"), string(arg))
	pw.Close() // the child holds the write end now
	go b.read(pr, out)
	t.Cleanup(func() {
		b.proc.stop(t)
		<-b.lines
	})
	return b
}

func (b *browser) read(pr *os.File, out *os.File) {
	defer close(b.lines)
	defer pr.Close()
	defer out.Close()
	defer close(b.result)
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 0, 64*1024), 8<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		out.Write(append(line, '\n'))
		var ev struct {
			Event string `json:"event"`
		}
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		if ev.Event == "result" {
			var r browserResult
			if err := json.Unmarshal(line, &r); err != nil {
				r = browserResult{Error: "decode result: " + err.Error()}
			}
			if !sent {
				b.result <- r
				sent = true
			}
			continue
		}
		select {
		case b.events <- ev.Event:
		default: // nobody waits for it
		}
	}
}

// waitEvent waits for run.js to print {"event": name}.
func (b *browser) waitEvent(t *testing.T, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case got := <-b.events:
			if got == name {
				return
			}
		case r, ok := <-b.result:
			if ok {
				t.Fatalf("browser finished before %q: %s", name, r.summary())
			}
			t.Fatalf("browser exited before %q", name)
		case <-deadline:
			t.Fatalf("browser: no %q within %s", name, timeout)
		}
	}
}

// waitResult waits for run.js's result line.
func (b *browser) waitResult(t *testing.T, timeout time.Duration) browserResult {
	t.Helper()
	select {
	case r, ok := <-b.result:
		if !ok {
			t.Fatalf("browser exited without a result; see %s", b.proc.logPath)
		}
		return r
	case <-time.After(timeout):
		t.Fatalf("browser: no result within %s", timeout)
	}
	return browserResult{}
}

func (r browserResult) summary() string {
	var sb strings.Builder
	sb.WriteString("ok=")
	if r.OK {
		sb.WriteString("true")
	} else {
		sb.WriteString("false error=" + r.Error)
	}
	sb.WriteString("\nSIP over WS:\n  " + strings.Join(r.SIP, "\n  "))
	sb.WriteString("\npage events:")
	for _, e := range r.Events {
		sb.WriteString(" " + e.Name)
		if e.Detail != nil && *e.Detail != "" {
			sb.WriteString("(" + *e.Detail + ")")
		}
	}
	if len(r.WSErrors) > 0 {
		sb.WriteString("\nWebSocket errors:\n  " + strings.Join(r.WSErrors, "\n  "))
	}
	if n := len(r.Console); n > 0 {
		from := max(0, n-15)
		sb.WriteString("\nlast console lines:\n  " + strings.Join(r.Console[from:], "\n  "))
	}
	return sb.String()
}

// jssipBundle is JsSIP for the pages: built from the npm package's sources
// by esbuild (both installed by npm ci), since JsSIP 3.11 ships no current
// browser build of its own (its dist/ is an old release). Built once per
// test binary into node_modules, which git ignores.
var jssipBundle = sync.OnceValues(func() (string, error) {
	out := filepath.Join(interopDir(), "node_modules", "imsgate-build", "jssip.js")
	cmd := exec.Command(filepath.Join(interopDir(), "node_modules", ".bin", "esbuild"),
		filepath.Join(interopDir(), "node_modules", "jssip", "src", "JsSIP.js"),
		"--bundle", "--format=iife", "--global-name=JsSIP", "--log-level=warning", "--outfile="+out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bundle JsSIP (npm ci --prefix interop-tests installs esbuild): %v\n%s", err, msg)
	}
	return out, nil
})

// startStaticServer serves browser/ and node_modules/ for the test pages,
// JsSIP's bundle among them.
func startStaticServer(t *testing.T) string {
	t.Helper()
	if _, err := jssipBundle(); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(interopDir()))
	mux := http.NewServeMux()
	mux.Handle("GET /browser/", files)
	mux.Handle("GET /node_modules/", files)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
