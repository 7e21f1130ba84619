package mediabridge

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// answerFrom writes a core answer: codecs as "pt name/clock" pairs.
func answerFrom(addr string, dir string, rtpmaps ...string) []byte {
	ap := netip.MustParseAddrPort(addr)
	var fmts, attrs []string
	for _, r := range rtpmaps {
		pt, _, _ := strings.Cut(r, " ")
		fmts = append(fmts, pt)
		attrs = append(attrs, "a=rtpmap:"+r)
	}
	return []byte("v=0\r\no=core 1 1 IN IP4 " + ap.Addr().String() + "\r\ns=core\r\nc=IN IP4 " + ap.Addr().String() +
		"\r\nt=0 0\r\nm=audio " + strings.TrimPrefix(ap.String(), ap.Addr().String()+":") + " RTP/AVP " + strings.Join(fmts, " ") + "\r\n" +
		strings.Join(attrs, "\r\n") + "\r\na=" + dir + "\r\n")
}

func TestCoreAnswerToWebAnswer(t *testing.T) {
	tests := []struct {
		name        string
		offer       string
		answer      []byte
		wantErr     error
		wantMLines  []string
		wantDir     string
		wantToCore  map[uint8]uint8 // browser PT -> core PT
		wantFromCor map[uint8]uint8 // core PT -> browser PT
	}{
		{
			name:        "chrome offer, asterisk answers PCMU and events 101",
			offer:       "chrome-offer.sdp",
			answer:      answerFrom("192.0.2.10:14562", "sendrecv", "0 PCMU/8000", "101 telephone-event/8000"),
			wantMLines:  []string{"m=audio 9 UDP/TLS/RTP/SAVPF 0 126"},
			wantDir:     "a=sendrecv",
			wantToCore:  map[uint8]uint8{0: 0, 126: 101, 111: ptNone, 8: ptNone},
			wantFromCor: map[uint8]uint8{0: 0, 101: 126, 126: 126},
		},
		{
			name:        "chrome offer, core answers opus on 96 recvonly",
			offer:       "chrome-offer.sdp",
			answer:      answerFrom("192.0.2.10:14562", "recvonly", "96 opus/48000/2"),
			wantMLines:  []string{"m=audio 9 UDP/TLS/RTP/SAVPF 111 110"}, // the browser keeps its events: the gateway takes them
			wantDir:     "a=recvonly",
			wantToCore:  map[uint8]uint8{111: 96, 110: ptNone},
			wantFromCor: map[uint8]uint8{96: 111, 111: 111},
		},
		{
			name:        "firefox offer, video rejected",
			offer:       "firefox-offer.sdp",
			answer:      answerFrom("192.0.2.10:14562", "sendrecv", "8 PCMA/8000"),
			wantMLines:  []string{"m=audio 9 UDP/TLS/RTP/SAVPF 8 101", "m=video 0 UDP/TLS/RTP/SAVPF 0"},
			wantDir:     "a=sendrecv",
			wantToCore:  map[uint8]uint8{8: 8, 109: ptNone},
			wantFromCor: map[uint8]uint8{8: 8},
		},
		{
			name:        "chrome offer with data channel, channel rejected and unbundled",
			offer:       "chrome-offer-datachannel.sdp",
			answer:      answerFrom("192.0.2.10:14562", "sendrecv", "0 PCMU/8000"),
			wantMLines:  []string{"m=audio 9 UDP/TLS/RTP/SAVPF 0 126", "m=application 0 UDP/DTLS/SCTP webrtc-datachannel"},
			wantDir:     "a=sendrecv",
			wantToCore:  map[uint8]uint8{0: 0},
			wantFromCor: map[uint8]uint8{0: 0},
		},
		{
			name:    "core answers a codec never offered",
			offer:   "chrome-offer.sdp",
			answer:  answerFrom("192.0.2.10:14562", "sendrecv", "18 G729/8000"),
			wantErr: ErrNoCommonCodec,
		},
		{
			name:    "core answers only events",
			offer:   "chrome-offer.sdp",
			answer:  answerFrom("192.0.2.10:14562", "sendrecv", "101 telephone-event/8000"),
			wantErr: ErrNoCommonCodec,
		},
		{name: "garbage answer", offer: "chrome-offer.sdp", answer: []byte("junk"), wantErr: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSession(t, newTestEngine(t))
			if _, err := s.WebOffer(readTestdata(t, tt.offer)); err != nil {
				t.Fatalf("WebOffer: %v", err)
			}
			got, err := s.CoreAnswer(tt.answer)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("CoreAnswer error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CoreAnswer: %v", err)
			}
			if m := sdpLines(got, "m="); !slices.Equal(m, tt.wantMLines) {
				t.Errorf("m-lines = %q, want %q", m, tt.wantMLines)
			}
			// To a browser's actpass the gateway answers passive: the
			// browser is the DTLS client (RFC 5763 §5).
			for _, want := range []string{tt.wantDir, "a=ice-lite", "a=rtcp-mux", "a=setup:passive", "a=group:BUNDLE 0"} {
				if !strings.Contains(string(got), want+"\r\n") {
					t.Errorf("web answer lacks %q", want)
				}
			}
			if strings.Contains(string(got), "a=extmap:") {
				t.Errorf("web answer negotiates header extensions:\n%s", got)
			}
			if len(sdpLines(got, "a=candidate:")) == 0 {
				t.Errorf("web answer has no candidate")
			}
			m := s.fwd.pts.Load()
			for web, core := range tt.wantToCore {
				if m.webToCore[web] != core {
					t.Errorf("web pt %d -> core %d, want %d", web, m.webToCore[web], core)
				}
			}
			for core, web := range tt.wantFromCor {
				if m.coreToWeb[core] != web {
					t.Errorf("core pt %d -> web %d, want %d", core, m.coreToWeb[core], web)
				}
			}
			if got := s.fwd.coreDest(); got != netip.MustParseAddrPort("192.0.2.10:14562") {
				t.Errorf("core destination %v", got)
			}
			// A repeat (18x then 200) returns the same answer and follows a new address.
			again, err := s.CoreAnswer(answerFrom("192.0.2.11:16000", "sendrecv", "0 PCMU/8000"))
			if err != nil || string(again) != string(got) {
				t.Errorf("repeat CoreAnswer differs (err %v)", err)
			}
			if got := s.fwd.coreDest(); got != netip.MustParseAddrPort("192.0.2.11:16000") {
				t.Errorf("core destination after repeat %v", got)
			}
		})
	}
}

func TestCoreOfferToWebOffer(t *testing.T) {
	tests := []struct {
		name      string
		offer     []byte
		codecs    []string
		wantErr   error
		wantMLine string
		wantDir   string
	}{
		{
			name:      "asterisk PCMU PCMA events 101 map to our 126",
			offer:     readTestdata(t, "asterisk-offer.sdp"),
			wantMLine: "m=audio 9 UDP/TLS/RTP/SAVPF 0 8 126",
			wantDir:   "a=sendrecv",
		},
		{
			name:      "asterisk hold sendonly, PCMA only allowed",
			offer:     []byte(strings.Replace(string(readTestdata(t, "asterisk-offer.sdp")), "a=sendrecv", "a=sendonly", 1)),
			codecs:    []string{"PCMA", "telephone-event"},
			wantMLine: "m=audio 9 UDP/TLS/RTP/SAVPF 8 126",
			wantDir:   "a=sendonly",
		},
		{name: "no common codec", offer: readTestdata(t, "no-common-codec.sdp"), wantErr: ErrNoCommonCodec},
		{name: "webrtc offer from the core is not carried", offer: readTestdata(t, "chrome-offer.sdp"), wantErr: ErrNoCommonCodec},
		{name: "garbage", offer: readTestdata(t, "garbage.sdp"), wantErr: ErrBadSDP},
		{name: "no connection line", offer: []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"), wantErr: ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSession(t, newTestEngine(t, tt.codecs...))
			got, err := s.CoreOffer(tt.offer)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("CoreOffer error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CoreOffer: %v", err)
			}
			if m := sdpLines(got, "m="); !slices.Equal(m, []string{tt.wantMLine}) {
				t.Errorf("m-lines = %q, want %q", m, tt.wantMLine)
			}
			for _, want := range []string{tt.wantDir, "a=ice-lite", "a=setup:actpass", "a=rtcp-mux", "a=group:BUNDLE 0"} {
				if !strings.Contains(string(got), want+"\r\n") {
					t.Errorf("web offer lacks %q:\n%s", want, got)
				}
			}
			if strings.Contains(string(got), "telephone-event/8000") && !strings.Contains(string(got), "a=rtpmap:126 telephone-event/8000") {
				t.Errorf("events not on 126:\n%s", got)
			}
			if got := s.fwd.coreDest(); got != netip.MustParseAddrPort("192.0.2.10:14562") {
				t.Errorf("core destination before latching %v", got)
			}
		})
	}
}

func TestSessionState(t *testing.T) {
	s := newTestSession(t, newTestEngine(t))
	if _, err := s.CoreAnswer(readTestdata(t, "asterisk-offer.sdp")); !errors.Is(err, errWrongState) {
		t.Errorf("CoreAnswer before WebOffer: %v", err)
	}
	if _, err := s.WebAnswer(readTestdata(t, "chrome-offer.sdp")); !errors.Is(err, errWrongState) {
		t.Errorf("WebAnswer before CoreOffer: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.WebOffer(readTestdata(t, "chrome-offer.sdp")); !errors.Is(err, errSessionClosed) {
		t.Errorf("WebOffer after Close: %v", err)
	}
}
