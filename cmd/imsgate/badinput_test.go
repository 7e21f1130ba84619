package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/gorilla/websocket"
	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/interop-tests/webua"
)

// Bad input through the whole gateway: each gets a clear answer and the
// gateway carries on.
func TestLoopbackBadInput(t *testing.T) {
	noLeaks(t)
	r := newRig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("upgrade without the sip subprotocol gets 400", func(t *testing.T) {
		_, res, err := websocket.DefaultDialer.DialContext(ctx, r.ws, nil)
		if err == nil || res == nil || res.StatusCode != http.StatusBadRequest {
			t.Fatalf("dial without subprotocol: err=%v res=%v, want HTTP 400", err, res)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(body), "sip") {
			t.Fatalf("400 body should name the sip subprotocol: %q", body)
		}
	})

	dialRaw := func(t *testing.T) *websocket.Conn {
		d := websocket.Dialer{Subprotocols: []string{"sip"}}
		c, _, err := d.DialContext(ctx, r.ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("unparsable request with headers gets 400", func(t *testing.T) {
		c := dialRaw(t)
		msg := "INVITE sip:echo@imsgate.test SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKbad1\r\n" +
			"From: <sip:alice@imsgate.test>;tag=1\r\nTo: <sip:echo@imsgate.test>\r\nCall-ID: bad-1\r\n" +
			"CSeq: 1 INVITE\r\nContent-Length: nonsense\r\n\r\n"
		data := exchange(t, c, msg)
		if !strings.HasPrefix(string(data), "SIP/2.0 400") || !strings.Contains(string(data), "bad-1") {
			t.Fatalf("got %q, want a 400 for Call-ID bad-1", data)
		}
	})

	t.Run("garbage closes the connection with a reason", func(t *testing.T) {
		c := dialRaw(t)
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello there\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData || ce.Text == "" {
			t.Fatalf("got %v, want close 1007 with a reason", err)
		}
	})

	t.Run("oversized frame closes 1009", func(t *testing.T) {
		c := dialRaw(t)
		big := "OPTIONS sip:x@y SIP/2.0\r\nX-Pad: " + strings.Repeat("a", 70*1024) + "\r\n\r\n"
		_ = c.WriteMessage(websocket.TextMessage, []byte(big))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("got %v, want close 1009", err)
		}
	})

	t.Run("INVITE before REGISTER gets 403 and takes no port", func(t *testing.T) {
		c := dialRaw(t)
		msg := "INVITE sip:echo@imsgate.test SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKunreg1\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=u1\r\nTo: <sip:echo@imsgate.test>\r\n" +
			"Call-ID: unreg-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@x.invalid;transport=ws>\r\n" +
			"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(offerSDP)) + "\r\n\r\n" + offerSDP
		data := exchange(t, c, msg)
		if !strings.HasPrefix(string(data), "SIP/2.0 403") || !strings.Contains(string(data), "unreg-1") {
			t.Fatalf("got %q, want a 403 for Call-ID unreg-1", data)
		}
		if n := r.gw.media.PortPairsInUse(); n != 0 {
			t.Fatalf("%d RTP port pairs in use for a refused INVITE", n)
		}
		if n := r.gw.gw.Refusals()["unregistered"]; n != 1 {
			t.Fatalf("refusals counted: %d, want 1", n)
		}
	})

	alice := r.browser(ctx, "alice")

	t.Run("INVITE as another user gets 403", func(t *testing.T) {
		msg := "INVITE sip:echo@imsgate.test SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKasbob\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:bob@imsgate.test>;tag=b1\r\nTo: <sip:echo@imsgate.test>\r\n" +
			"Call-ID: as-bob-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@x.invalid;transport=ws>\r\n" +
			"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(offerSDP)) + "\r\n\r\n" + offerSDP
		if err := alice.Send([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		res := nextFinal(t, ctx, alice)
		if res.StatusCode != 403 || res.Reason != "From is not registered on this connection" {
			t.Fatalf("got %s, want 403 From is not registered on this connection", res.StartLine())
		}
	})

	t.Run("INVITE with no usable codec gets 488", func(t *testing.T) {
		sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=audio 9 UDP/TLS/RTP/SAVPF 98\r\na=rtpmap:98 AMR/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
			"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
			"a=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\n"
		msg := "INVITE sip:echo@imsgate.test SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKnocodec\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:alice@imsgate.test>;tag=nc1\r\nTo: <sip:echo@imsgate.test>\r\n" +
			"Call-ID: nocodec-1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@x.invalid;transport=ws>\r\n" +
			"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
		if err := alice.Send([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if res := nextFinal(t, ctx, alice); res.StatusCode != 488 || res.GetHeader("Warning") == nil {
			t.Fatalf("got %s, want 488 with a Warning", res.StartLine())
		}
	})

	t.Run("INVITE from the core to an unknown Contact gets 404", func(t *testing.T) {
		gwSIP := r.gw.sipPC.LocalAddr().String()
		status := rawCoreInvite(t, gwSIP, "sip:nosuchbinding@"+gwSIP)
		if status != 404 {
			t.Fatalf("got %d, want 404", status)
		}
	})

	t.Run("the gateway still serves calls", func(t *testing.T) {
		call, err := alice.Invite(ctx, "sip:echo@"+domain)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := call.Result(ctx); err != nil || res.StatusCode != 200 {
			t.Fatalf("result = %v, %v", res, err)
		}
		waitFor(t, ctx, "echoed audio", func() bool { return call.Media().Echoed >= 5 })
		if err := call.HangUp(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// offerSDP is enough of an offer for the gateway to take an INVITE up.
const offerSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\n"

// nextFinal returns the next final response among the messages a browser's
// UA matched to none of its transactions (those it sent raw).
func nextFinal(t *testing.T, ctx context.Context, ua *webua.UA) *sip.Response {
	t.Helper()
	for {
		select {
		case raw := <-ua.Unmatched():
			m, err := sip.ParseMessage(raw)
			if err != nil {
				t.Fatal(err)
			}
			if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
				return res
			}
		case <-ctx.Done():
			t.Fatal("no final response")
		}
	}
}

// rawCoreInvite sends one INVITE over UDP as a core would and returns the
// final status.
func rawCoreInvite(t *testing.T, to, ruri string) int {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	msg := "INVITE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP " + conn.LocalAddr().String() + ";branch=z9hG4bKraw1\r\n" +
		"Max-Forwards: 70\r\nFrom: <sip:carol@imsgate.test>;tag=r1\r\nTo: <" + ruri + ">\r\nCall-ID: raw-1\r\n" +
		"CSeq: 1 INVITE\r\nContact: <sip:carol@" + conn.LocalAddr().String() + ">\r\n" +
		"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(sdp)) + "\r\n\r\n" + sdp
	dst, _ := net.ResolveUDPAddr("udp", to)
	if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
			return res.StatusCode
		}
	}
}

// A port already taken stops the start with an error naming the key, and
// what was bound before is released.
func TestStartPortTaken(t *testing.T) {
	noLeaks(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := configs.Default()
	cfg.WS.Listen = taken.Addr().String()
	cfg.SIP.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Upstream.Proxy = "sip:127.0.0.1:9"
	cfg.Media.WebRTCPort = 0
	cfg.Media.RTPPorts = "44000-44099"
	a, err := start(cfg, zap.NewNop())
	if err == nil {
		a.close(context.Background())
		t.Fatal("start succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), "ws.listen") {
		t.Fatalf("error %q should name ws.listen", err)
	}
}

// exchange sends msg as one WebSocket message and returns the next one.
func exchange(t *testing.T, c *websocket.Conn, msg string) []byte {
	t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return data
}
