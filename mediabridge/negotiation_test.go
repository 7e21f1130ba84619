package mediabridge

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// The session's offer/answer across both legs, step by step: which leg
// gets what, the direction on each, o= versions, payload types, rejected
// m-lines and the core destination.

// browser is a Chrome description at o= version v with a direction for its
// audio section and an ICE ufrag.
func browser(t *testing.T, v int, dir, ufrag string) []byte {
	s := string(readTestdata(t, "chrome-offer.sdp"))
	s = regexp.MustCompile(`(?m)^o=- (\d+) \d+ `).ReplaceAllString(s, fmt.Sprintf("o=- $1 %d ", v))
	s = strings.Replace(s, "a=sendrecv", "a="+dir, 1)
	return []byte(strings.Replace(s, "a=ice-ufrag:wJ8r", "a=ice-ufrag:"+ufrag, 1))
}

// core is a core description: o= version, port, direction, extra m-lines
// before the audio one, and rtpmaps "pt name/clock".
func core(v, port int, dir, before string, rtpmaps ...string) []byte {
	var fmts, attrs []string
	for _, r := range rtpmaps {
		pt, _, _ := strings.Cut(r, " ")
		fmts = append(fmts, pt)
		attrs = append(attrs, "a=rtpmap:"+r+"\r\n")
	}
	return []byte(fmt.Sprintf("v=0\r\no=core 7 %d IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n%s"+
		"m=audio %d RTP/AVP %s\r\n%sa=%s\r\n", v, before, port, strings.Join(fmts, " "), strings.Join(attrs, ""), dir))
}

// step is one description given to the session and what must come out.
type step struct {
	leg  Leg
	op   string // offer, answer, offerTo
	sdp  func(t *testing.T) []byte
	want string // answer, offer or error
	// lines that must be (or with a leading "!" must not be) in the output.
	lines []string
	// version: "same" or "next" relative to our last description on the
	// leg the output goes to.
	version string
}

func TestNegotiation(t *testing.T) {
	webCall := []step{
		{leg: LegWeb, op: "offer", sdp: func(t *testing.T) []byte { return browser(t, 2, "sendrecv", "wJ8r") }, want: "offer",
			lines: []string{"a=sendrecv", "m=audio %core RTP/AVP 111 9 0 8 110 126"}},
		{leg: LegCore, op: "answer", sdp: func(*testing.T) []byte {
			return core(1, 14562, "sendrecv", "", "0 PCMU/8000", "101 telephone-event/8000")
		},
			want: "answer", lines: []string{"a=sendrecv", "a=setup:passive", "m=audio 9 UDP/TLS/RTP/SAVPF 0 126"}},
	}
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, s *Session)
	}{
		{name: "core holds and resumes: carried to the browser and back", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(2, 14562, "sendonly", "", "0 PCMU/8000") },
				want: "offer", lines: []string{"a=sendonly", "a=setup:actpass", "m=audio 9 UDP/TLS/RTP/SAVPF 0"}, version: "next"},
			step{leg: LegWeb, op: "answer", sdp: func(t *testing.T) []byte { return browser(t, 3, "recvonly", "wJ8r") },
				want: "answer", lines: []string{"a=recvonly", "m=audio %core RTP/AVP 0"}, version: "next"},
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(3, 14562, "sendrecv", "", "0 PCMU/8000") },
				want: "offer", lines: []string{"a=sendrecv"}, version: "next"},
			step{leg: LegWeb, op: "answer", sdp: func(t *testing.T) []byte { return browser(t, 4, "sendrecv", "wJ8r") },
				want: "answer", lines: []string{"a=sendrecv"}, version: "next"},
		)},
		{name: "core moves its media: answered alone, destination follows", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(2, 16000, "sendrecv", "", "0 PCMU/8000") },
				want: "answer", lines: []string{"a=sendrecv", "m=audio %core RTP/AVP 0"}, version: "next"},
		), check: func(t *testing.T, s *Session) {
			if got := s.fwd.coreDest(); got != netip.MustParseAddrPort("192.0.2.10:16000") {
				t.Errorf("core destination %v, want the new port", got)
			}
		}},
		{name: "core renumbers its payload types: mapped alone", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte {
				return core(2, 14562, "sendrecv", "", "96 PCMU/8000", "100 telephone-event/8000")
			}, want: "answer", lines: []string{"m=audio %core RTP/AVP 96 100", "a=rtpmap:100 telephone-event/8000"}, version: "next"},
		), check: func(t *testing.T, s *Session) {
			m := s.fwd.pts.Load()
			if m.coreToWeb[96] != 0 || m.coreToWeb[100] != 126 || m.webToCore[0] != 96 || m.webToCore[126] != 100 {
				t.Errorf("map core 96→%d 100→%d, web 0→%d 126→%d", m.coreToWeb[96], m.coreToWeb[100], m.webToCore[0], m.webToCore[126])
			}
		}},
		{name: "core changes codec: the browser is asked", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(2, 14562, "sendrecv", "", "8 PCMA/8000") },
				want: "offer", lines: []string{"m=audio 9 UDP/TLS/RTP/SAVPF 8"}, version: "next"},
			step{leg: LegWeb, op: "answer", sdp: func(t *testing.T) []byte { return browser(t, 3, "sendrecv", "wJ8r") },
				want: "answer", lines: []string{"m=audio %core RTP/AVP 8"}, version: "next"},
		)},
		{name: "browser restarts ICE: answered alone with new credentials", steps: append(webCall[:2:2],
			step{leg: LegWeb, op: "offer", sdp: func(t *testing.T) []byte { return browser(t, 3, "sendrecv", "newU") },
				want: "answer", lines: []string{"a=setup:passive", "!a=setup:actpass", "!a=ice-ufrag:newU"}, version: "next"},
		), check: func(t *testing.T, s *Session) {
			if u, _ := s.ep.credentials(); strings.Contains(string(s.web.origin.last), "a=ice-ufrag:"+u) == false {
				t.Errorf("our answer does not carry our current ufrag %s", u)
			}
		}},
		{name: "browser holds with a media-level direction under a session-level sendrecv", steps: append(webCall[:2:2],
			step{leg: LegWeb, op: "offer", sdp: func(t *testing.T) []byte {
				return []byte(strings.Replace(string(browser(t, 3, "sendonly", "wJ8r")), "t=0 0\r\n", "t=0 0\r\na=sendrecv\r\n", 1))
			}, want: "offer", lines: []string{"a=sendonly"}, version: "next"},
			step{leg: LegCore, op: "answer", sdp: func(*testing.T) []byte { return core(2, 14562, "recvonly", "", "0 PCMU/8000") },
				want: "answer", lines: []string{"a=recvonly"}, version: "next"},
		), check: func(t *testing.T, s *Session) {
			if m := s.fwd.pts.Load(); m.webToCoreOff || !m.coreToWebOff {
				t.Errorf("held: web→core off %v (want false), core→web off %v (want true)", m.webToCoreOff, m.coreToWebOff)
			}
		}},
		{name: "a refresh of ours repeats our version", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offerTo", want: "offer", lines: []string{"m=audio %core RTP/AVP 0 101"}, version: "next"},
			step{leg: LegCore, op: "answer", sdp: func(*testing.T) []byte {
				return core(1, 14562, "sendrecv", "", "0 PCMU/8000", "101 telephone-event/8000")
			}, want: "none"},
			step{leg: LegCore, op: "offerTo", want: "offer", version: "same"},
		)},
		{name: "an offerless request answered on hold asks the other leg", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offerTo", want: "offer", version: "next"},
			step{leg: LegCore, op: "answer", sdp: func(*testing.T) []byte { return core(2, 14562, "sendonly", "", "0 PCMU/8000") },
				want: "offer", lines: []string{"a=sendonly"}, version: "next"},
			step{leg: LegWeb, op: "answer", sdp: func(t *testing.T) []byte { return browser(t, 3, "recvonly", "wJ8r") }, want: "none"},
		)},
		{name: "core call with video first: our answer keeps it rejected in place", steps: []step{
			{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte {
				return core(1, 14562, "sendrecv", "m=video 14600 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", "0 PCMU/8000")
			}, want: "offer", lines: []string{"m=audio 9 UDP/TLS/RTP/SAVPF 0", "!m=video"}},
			{leg: LegWeb, op: "answer", sdp: func(t *testing.T) []byte { return browser(t, 2, "sendrecv", "wJ8r") }, want: "answer",
				lines: []string{"m=video 0 RTP/AVP 0", "m=audio %core RTP/AVP 0"}},
		}, check: func(t *testing.T, s *Session) {
			body := string(s.core.origin.last)
			if strings.Index(body, "m=video 0") > strings.Index(body, "m=audio") {
				t.Errorf("m-lines out of the offer's order:\n%s", body)
			}
		}},
		{name: "an unusable re-offer changes nothing; a good one then works", steps: append(webCall[:2:2],
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(2, 14562, "sendrecv", "", "18 G729/8000") }, want: "error"},
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(3, 15000, "sendrecv", "", "0 PCMU/8000") }, want: "answer"},
		)},
		{name: "a second offer while ours is out is refused", steps: append(webCall[:1:1],
			step{leg: LegCore, op: "offer", sdp: func(*testing.T) []byte { return core(1, 14562, "sendrecv", "", "0 PCMU/8000") }, want: "error"},
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSession(t, newTestEngine(t))
			for i, st := range tt.steps {
				// Where the output goes: an answer alone back to the leg,
				// anything carried on to the other one.
				to := st.leg
				if st.op == "answer" || (st.op == "offer" && st.want == "offer") {
					to = st.leg.other()
				}
				before := append([]byte(nil), s.legState(to).origin.last...)
				out, kind, err := run(t, s, st)
				if st.want == "error" {
					if err == nil {
						t.Fatalf("step %d: no error", i)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if kind != st.want {
					t.Fatalf("step %d: got %s, want %s:\n%s", i, kind, st.want, out)
				}
				for _, l := range st.lines {
					l = strings.ReplaceAll(l, "%core", fmt.Sprint(s.ports.port))
					neg := strings.HasPrefix(l, "!")
					found := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.TrimPrefix(l, "!"))).Match(out)
					if found == neg {
						t.Errorf("step %d: line %q present=%v in\n%s", i, l, found, out)
					}
				}
				if st.version != "" && before != nil {
					was, now := ourVersion(t, before), ourVersion(t, out)
					if (st.version == "same") != (was == now) || (st.version == "next" && now != was+1) {
						t.Errorf("step %d: o= version %d after %d, want %s", i, now, was, st.version)
					}
				}
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func run(t *testing.T, s *Session, st step) ([]byte, string, error) {
	var stp Step
	var err error
	switch st.op {
	case "offer":
		stp, err = s.Offer(st.leg, st.sdp(t))
	case "answer":
		stp, err = s.Answer(st.leg, st.sdp(t))
	case "offerTo":
		var o []byte
		o, err = s.OfferTo(st.leg)
		stp.Offer = o
	}
	switch {
	case stp.Offer != nil:
		return stp.Offer, "offer", err
	case stp.Answer != nil:
		return stp.Answer, "answer", err
	}
	return nil, "none", err
}

func ourVersion(t *testing.T, body []byte) uint64 {
	t.Helper()
	var id, v uint64
	if _, err := fmt.Sscanf(regexp.MustCompile(`(?m)^o=imsgate .*$`).FindString(string(body)), "o=imsgate %d %d", &id, &v); err != nil {
		t.Fatalf("our o= line: %v in\n%s", err, body)
	}
	return v
}

func TestRollbackKeepsSession(t *testing.T) {
	s := newTestSession(t, newTestEngine(t))
	if _, err := s.Offer(LegWeb, browser(t, 2, "sendrecv", "wJ8r")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Answer(LegCore, core(1, 14562, "sendrecv", "", "0 PCMU/8000")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Offer(LegWeb, browser(t, 3, "sendonly", "wJ8r")); err != nil {
		t.Fatal(err)
	}
	s.Rollback(LegCore)
	if m := s.fwd.pts.Load(); m.webToCoreOff || m.coreToWebOff {
		t.Error("a refused hold must leave media flowing both ways")
	}
	if _, err := s.Offer(LegCore, core(2, 14562, "sendrecv", "", "0 PCMU/8000")); errors.Is(err, errWrongState) {
		t.Errorf("after a rollback the next offer must be taken: %v", err)
	}
}
