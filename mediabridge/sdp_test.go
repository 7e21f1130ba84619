package mediabridge

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestWebOfferToCoreOffer(t *testing.T) {
	chrome := readTestdata(t, "chrome-offer.sdp")
	tests := []struct {
		name       string
		offer      []byte
		codecs     []string
		wantErr    error
		wantMLine  string
		wantDir    string
		wantRTPMap []string
	}{
		{
			name:      "chrome all codecs keep offerer order",
			offer:     chrome,
			wantMLine: "m=audio %d RTP/AVP 111 9 0 8 110 126",
			wantDir:   "a=sendrecv",
			wantRTPMap: []string{
				"a=rtpmap:111 opus/48000/2", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
				"a=rtpmap:8 PCMA/8000", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000",
			},
		},
		{
			name:       "chrome with G.711 only drops 48 kHz events",
			offer:      chrome,
			codecs:     []string{"PCMA", "PCMU", "telephone-event"},
			wantMLine:  "m=audio %d RTP/AVP 0 8 126",
			wantDir:    "a=sendrecv",
			wantRTPMap: []string{"a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:126 telephone-event/8000"},
		},
		{
			name:       "chrome sendonly hold",
			offer:      []byte(strings.Replace(string(chrome), "a=sendrecv", "a=sendonly", 1)),
			codecs:     []string{"PCMU"},
			wantMLine:  "m=audio %d RTP/AVP 0",
			wantDir:    "a=sendonly",
			wantRTPMap: []string{"a=rtpmap:0 PCMU/8000"},
		},
		{
			name:       "chrome inactive",
			offer:      []byte(strings.Replace(string(chrome), "a=sendrecv", "a=inactive", 1)),
			codecs:     []string{"PCMA"},
			wantMLine:  "m=audio %d RTP/AVP 8",
			wantDir:    "a=inactive",
			wantRTPMap: []string{"a=rtpmap:8 PCMA/8000"},
		},
		{
			name:      "firefox audio and video leaves video out",
			offer:     readTestdata(t, "firefox-offer.sdp"),
			wantMLine: "m=audio %d RTP/AVP 109 9 0 8 101",
			wantDir:   "a=sendrecv",
			wantRTPMap: []string{
				"a=rtpmap:109 opus/48000/2", "a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000",
				"a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
			},
		},
		{name: "no common codec", offer: readTestdata(t, "no-common-codec.sdp"), wantErr: ErrNoCommonCodec},
		{name: "G722 allowed but not offered", offer: readTestdata(t, "asterisk-offer.sdp"), codecs: []string{"G722", "telephone-event"}, wantErr: ErrNoCommonCodec},
		{name: "garbage", offer: readTestdata(t, "garbage.sdp"), wantErr: ErrBadSDP},
		{name: "empty", offer: nil, wantErr: ErrBadSDP},
		{name: "video only", offer: videoOnly(t), wantErr: ErrNoCommonCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEngine(t, tt.codecs...)
			s := newTestSession(t, e)
			got, err := s.WebOffer(tt.offer)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("WebOffer error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("WebOffer: %v", err)
			}
			assertNoWebRTCLines(t, got)
			wantM := strings.Replace(tt.wantMLine, "%d", strconv.Itoa(s.ports.port), 1)
			if m := sdpLines(got, "m="); !slices.Equal(m, []string{wantM}) {
				t.Errorf("m-lines = %q, want %q", m, wantM)
			}
			if c := sdpLines(got, "c="); !slices.Equal(c, []string{"c=IN IP4 127.0.0.1"}) {
				t.Errorf("c-lines = %q", c)
			}
			if r := sdpLines(got, "a=rtpmap"); !slices.Equal(r, tt.wantRTPMap) {
				t.Errorf("rtpmap = %q, want %q", r, tt.wantRTPMap)
			}
			for _, want := range []string{tt.wantDir, "a=ptime:20"} {
				if !slices.Contains(sdpLines(got, "a="), want) {
					t.Errorf("core offer lacks %q:\n%s", want, got)
				}
			}
			for _, f := range sdpLines(got, "a=fmtp") {
				if strings.Contains(f, "telephone") {
					t.Errorf("odd fmtp %q", f)
				}
			}
			for _, r := range tt.wantRTPMap {
				if strings.Contains(r, "telephone-event") {
					pt := strings.Fields(strings.TrimPrefix(r, "a=rtpmap:"))[0]
					if !slices.Contains(sdpLines(got, "a=fmtp:"+pt), "a=fmtp:"+pt+" 0-16") {
						t.Errorf("telephone-event %s lacks fmtp 0-16", pt)
					}
				}
			}
		})
	}
}

func videoOnly(t *testing.T) []byte {
	t.Helper()
	ff := string(readTestdata(t, "firefox-offer.sdp"))
	i := strings.Index(ff, "m=audio")
	j := strings.Index(ff, "m=video")
	return []byte(ff[:i] + ff[j:])
}
