//go:build interop

package interop

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBrowserDigitsToIVR: JsSIP and SIP.js in Chromium call the SIPp IVR
// (PCMU and telephone-event 101) and press 1 and # as INFO, then 2 and 5 as
// RFC 4733 (RTCDTMFSender). For each dtmf.to_core mode the IVR must get
// each digit once, in order, in the form the mode says: RFC 4733 read from
// the RTP that reached it (one event per digit, one timestamp, marker on
// its first packet, the end sent three times), INFO read from its message
// log, tones found in its PCMU audio.
func TestBrowserDigitsToIVR(t *testing.T) {
	const want = "1,#,2,5"
	modes := []struct {
		mode                  string
		events, infos, inband string // the digits the IVR must get each way
		ivr                   string // its scenario: PCMU and events at 8000 unless named
		pt                    int    // its telephone-event type
		clock                 int
	}{
		{mode: "auto", events: want, pt: 101, clock: 8000},
		{mode: "rfc4733", events: want, pt: 101, clock: 8000},
		{mode: "info", infos: want},
		{mode: "both", events: want, infos: want, pt: 101, clock: 8000},
		{mode: "inband", inband: want},
		{mode: "auto", events: want, ivr: "uas_echo_opus.xml", pt: 110, clock: 48000},
	}
	for _, m := range modes {
		for _, lib := range libraries {
			name := m.mode + "/" + lib.name
			if m.ivr != "" {
				if lib.name != "jssip" {
					continue // one library shows the clock rate
				}
				name = m.mode + "/opus/" + lib.name
			}
			t.Run(name, func(t *testing.T) {
				e := newEnvWith(t, "udp", "dtmf:\n  to_core: "+m.mode+"\n", cmp.Or(m.ivr, "uas_echo.xml"))
				b := startBrowser(t, e.browserOptions(lib.name, lib.page, "call-out-dtmf", "alice", "sip:echo@imsgate.test"))
				r := b.waitResult(t, browserBudget)
				e.requireOK(t, r, "confirmed", "ended")
				if n := countSIP(r.SIP, "< SIP/2.0 200 OK (INFO)"); n != 2 {
					e.failf(t, r, "browser got %d 200 OK for its 2 INFO requests", n)
				}
				if n := len(r.details("dtmf_rtp_sent")); n != 2 {
					e.failf(t, r, "the browser sent %d digits as RFC 4733, want 2", n)
				}
				e.capture.stop(t)
				events := ivrEvents(t, e.capture, echoMediaPort, cmp.Or(m.pt, 101))
				infos := ivrInfos(t)
				tones := ivrTones(t, e.capture, echoMediaPort)
				t.Logf("at the IVR: RFC 4733 %v, INFO %v, tones %v", events, infos, tones)
				if got := digitsOf(events); got != m.events {
					e.failf(t, r, "RFC 4733 digits at the IVR %q, want %q", got, m.events)
				}
				for _, ev := range events {
					if !ev.marker || ev.ends != 3 || ev.moved {
						e.failf(t, r, "event %+v: want marker on the first packet, the end three times, one timestamp", ev)
					}
					// 100 ms at the clock of the core's telephone-event.
					if want := m.clock / 10; ev.duration != want {
						e.failf(t, r, "event %+v: final duration %d, want %d (100 ms at %d Hz)", ev, ev.duration, want, m.clock)
					}
				}
				if got := strings.Join(infos, ","); got != m.infos {
					e.failf(t, r, "INFO digits at the IVR %q, want %q", got, m.infos)
				}
				if got := strings.Join(tones, ","); got != m.inband {
					e.failf(t, r, "tones at the IVR %q, want %q", got, m.inband)
				}
				if n := strings.Count(e.gateway.log(), "\tdtmf\t"); n < 4 {
					e.failf(t, r, "the gateway logged %d digit lines, want one per digit and form", n)
				}
			})
		}
	}
}

// TestDigitsFromSIPpToBrowser: SIPp calls carol (JsSIP or SIP.js) and
// presses digits; each reaches the browser as INFO dtmf-relay, which JsSIP
// reports as newDTMF and SIP.js as onInfo, once each and in order. First 1
// as RFC 4733, 9 as INFO application/dtmf-relay and * as INFO
// application/dtmf; then, with dtmf.detect_inband, 3 and # as tones in
// PCMU audio from a caller whose SDP has no telephone-event.
func TestDigitsFromSIPpToBrowser(t *testing.T) {
	cases := []struct {
		name, config, uac, want string
	}{
		{"events and info", "", "uac_dtmf_info.xml", "1,9,*"},
		{"inband", "dtmf:\n  detect_inband: true\n", "uac_dtmf_inband.xml", "3,#"},
	}
	for _, tc := range cases {
		for _, lib := range libraries {
			t.Run(tc.name+"/"+lib.name, func(t *testing.T) {
				e := newEnvWith(t, "udp", tc.config)
				b := startBrowser(t, e.browserOptions(lib.name, lib.page, "call-in", "carol", ""))
				b.waitEvent(t, "registered", 30*time.Second)
				uac := startSIPpUAC(t, tc.uac, "carol", 2000)
				r := b.waitResult(t, browserBudget)
				e.requireOK(t, r, "incoming", "confirmed", "ended")
				requireSIPpPassed(t, e, r, uac)
				got := strings.Join(r.details("info_in"), ",")
				t.Logf("%s reported digits %q", lib.name, got)
				if got != tc.want {
					e.failf(t, r, "the browser reported digits %q, want %s once each", got, tc.want)
				}
			})
		}
	}
}

// rtpEvent is one telephone-event as the IVR received it.
type rtpEvent struct {
	digit    string
	ts       uint32
	packets  int
	ends     int
	duration int  // of its end packets
	marker   bool // on its first packet
	moved    bool // a packet of it had another timestamp
}

// ivrEvents reads the RFC 4733 packets (type 101) that reached the IVR's
// media port from the capture, one event per RTP timestamp.
func ivrEvents(t *testing.T, c *capture, port, pt int) []rtpEvent {
	rows := rtpRows(t, c, port, pt)
	var out []rtpEvent
	for _, r := range rows {
		if len(r.payload) < 4 {
			continue
		}
		digit := string("0123456789*#ABCD"[min(int(r.payload[0]), 15)])
		end := r.payload[1]&0x80 != 0
		duration := int(r.payload[2])<<8 | int(r.payload[3])
		if n := len(out); n > 0 && out[n-1].ts == r.ts {
			out[n-1].packets++
			if end {
				out[n-1].ends++
				out[n-1].duration = duration
			}
			continue
		}
		if n := len(out); n > 0 && out[n-1].digit == digit && out[n-1].ends == 0 {
			out[n-1].moved = true
			continue
		}
		ev := rtpEvent{digit: digit, ts: r.ts, packets: 1, marker: r.marker}
		if end {
			ev.ends, ev.duration = 1, duration
		}
		out = append(out, ev)
	}
	return out
}

func digitsOf(events []rtpEvent) string {
	var d []string
	for _, e := range events {
		d = append(d, e.digit)
	}
	return strings.Join(d, ",")
}

type rtpRow struct {
	ts      uint32
	marker  bool
	payload []byte
}

// rtpRows are the RTP packets of a payload type sent to port, in order,
// decoded by tshark (payloads left raw).
func rtpRows(t *testing.T, c *capture, port, pt int) []rtpRow {
	t.Helper()
	out, err := exec.Command("tshark", "-r", c.file, "-n", "--disable-protocol", "rtpevent",
		"-d", fmt.Sprintf("udp.port==%d,rtp", port),
		"-Y", fmt.Sprintf("rtp.p_type == %d && udp.dstport == %d", pt, port),
		"-T", "fields", "-e", "rtp.timestamp", "-e", "rtp.marker", "-e", "rtp.payload").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", c.file, err)
	}
	var rows []rtpRow
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 3 {
			continue
		}
		ts, _ := strconv.ParseUint(f[0], 10, 32)
		payload, _ := hex.DecodeString(strings.ReplaceAll(f[2], ":", ""))
		rows = append(rows, rtpRow{ts: uint32(ts), marker: f[1] == "1" || f[1] == "True", payload: payload})
	}
	return rows
}

// ivrInfos are the Signal= digits of the INFO requests the IVR received.
func ivrInfos(t *testing.T) []string {
	t.Helper()
	msgs, err := os.ReadFile(filepath.Join(artifactDir(t), "sipp-echo-messages.log"))
	if err != nil {
		t.Fatalf("read SIPp messages: %v", err)
	}
	var out []string
	for _, msg := range strings.Split(string(msgs), "\nINFO sip:")[1:] {
		head, _, _ := strings.Cut(msg, "\n\n----")
		for _, line := range strings.Split(head, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Signal="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// ivrTones finds DTMF tones in the PCMU the IVR received: a Goertzel
// filter per Q.23 frequency on each 20 ms packet, a digit when one row and
// one column tone hold most of the energy for two packets or more.
func ivrTones(t *testing.T, c *capture, port int) []string {
	rows := [4]float64{697, 770, 852, 941}
	cols := [4]float64{1209, 1336, 1477, 1633}
	keys := [4]string{"123A", "456B", "789C", "*0#D"}
	var out []string
	last, run := "", 0
	for _, r := range rtpRows(t, c, port, 0) {
		pcm := make([]float64, len(r.payload))
		var energy float64
		for i, b := range r.payload {
			pcm[i] = ulawToLinear(b)
			energy += pcm[i] * pcm[i]
		}
		best := func(hz [4]float64) (int, float64) {
			bi, bp := 0, 0.0
			for i, f := range hz {
				if p := goertzelPower(pcm, f); p > bp {
					bi, bp = i, p
				}
			}
			return bi, bp
		}
		ri, rp := best(rows)
		ci, cp := best(cols)
		key := ""
		if energy > 0 && (rp+cp)/energy > 0.6*float64(len(pcm))/2 && rp > 1e6 && cp > 1e6 {
			key = string(keys[ri][ci])
		}
		if key != "" && key == last {
			if run++; run == 2 {
				out = append(out, key)
			}
			continue
		}
		last, run = key, 1
	}
	return out
}

// goertzelPower is the power of frequency hz in 8 kHz samples x.
func goertzelPower(x []float64, hz float64) float64 {
	k := 2 * math.Cos(2*math.Pi*hz/8000)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+k*s1-s2, s1
	}
	return s1*s1 + s2*s2 - k*s1*s2
}
