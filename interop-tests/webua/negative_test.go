package webua

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

// TestPeerFrames drives the UA with frames a test gateway might send and
// checks what comes back, what lands in Unmatched and the close it saw.
func TestPeerFrames(t *testing.T) {
	const (
		strayResponse = "SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKnobody\r\n" +
			"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
		options = "OPTIONS sip:u@x.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WSS gw.test;branch=z9hG4bKopt\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:gw@x>;tag=9\r\nTo: <sip:u@x>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		strayBye = "BYE sip:u@x.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WSS gw.test;branch=z9hG4bKbye\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:gw@x>;tag=9\r\nTo: <sip:u@x>;tag=8\r\nCall-ID: nodialog\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
		message = "MESSAGE sip:u@x.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WSS gw.test;branch=z9hG4bKmsg\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:gw@x>;tag=9\r\nTo: <sip:u@x>\r\nCall-ID: msg1\r\nCSeq: 1 MESSAGE\r\n" +
			"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 10\r\n\r\nh\u00e9llo \u2713"
	)
	tests := []struct {
		name          string
		frame         string
		wantStatus    int    // response the UA must send; 0 for none
		wantUnmatched bool   // frame must show in Unmatched
		wantMessage   string // body the UA must deliver in Messages
	}{
		{name: "stray response", frame: strayResponse, wantUnmatched: true},
		{name: "options", frame: options, wantStatus: sip.StatusOK},
		{name: "bye outside a dialog", frame: strayBye, wantStatus: sip.StatusCallTransactionDoesNotExists, wantUnmatched: true},
		{name: "message outside a dialog", frame: message, wantStatus: sip.StatusOK, wantMessage: "h\u00e9llo \u2713"},
		{name: "garbage", frame: "HELLO\r\n\r\n", wantUnmatched: true},
		{name: "crlf keepalive", frame: "\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			replies := make(chan *sip.Response, 4)
			sent := make(chan struct{})
			peer := newWSPeer(t, func(conn *peerConn) {
				if err := conn.write([]byte(tc.frame)); err != nil {
					t.Errorf("peer write: %v", err)
					return
				}
				close(sent)
				for {
					_, data, err := conn.ReadMessage()
					if err != nil {
						return
					}
					if msg, err := sip.ParseMessage(data); err == nil {
						if res, ok := msg.(*sip.Response); ok {
							replies <- res
						}
					}
				}
			})
			ua := dialUA(t, peer.url, "sip:u@imsgate.test")
			waitClosed(t, "frame sent", sent)
			if tc.wantStatus != 0 {
				select {
				case res := <-replies:
					if res.StatusCode != tc.wantStatus {
						t.Errorf("status = %d, want %d", res.StatusCode, tc.wantStatus)
					}
				case <-time.After(testTimeout):
					t.Fatalf("no %d", tc.wantStatus)
				}
			}
			if tc.wantMessage != "" {
				select {
				case m := <-ua.Messages():
					if m.Body != tc.wantMessage || m.ContentType != "text/plain;charset=UTF-8" || m.From != "sip:gw@x" {
						t.Errorf("message = %+v, want body %q from sip:gw@x", m, tc.wantMessage)
					}
				case <-time.After(testTimeout):
					t.Fatal("message not in Messages")
				}
			}
			if tc.wantUnmatched {
				select {
				case raw := <-ua.Unmatched():
					if string(raw) != tc.frame {
						t.Errorf("unmatched = %q, want the frame", raw)
					}
				case <-time.After(testTimeout):
					t.Fatal("frame not in Unmatched")
				}
			}
		})
	}
}

func TestClosedReportsPeerClose(t *testing.T) {
	peer := newWSPeer(t, func(conn *peerConn) {
		conn.writeMu.Lock()
		defer conn.writeMu.Unlock()
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "origin not allowed"), time.Now().Add(time.Second))
		for { // until the UA answers the close
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	})
	ua := dialUA(t, peer.url, "sip:u@imsgate.test")
	select {
	case _, ok := <-ua.Incoming():
		if ok {
			t.Fatal("unexpected incoming call")
		}
	case <-time.After(testTimeout):
		t.Fatal("incoming not closed after the peer closed")
	}
	code, reason, closed := ua.Closed()
	if !closed || code != websocket.ClosePolicyViolation || !strings.Contains(reason, "origin") {
		t.Errorf("closed = %d %q %v, want 1008 with the reason", code, reason, closed)
	}
}
