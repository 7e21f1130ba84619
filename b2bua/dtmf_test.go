package b2bua

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/mediabridge"
)

// TestCoreDigitReachesBrowserAsInfo: a digit the media session read from
// the core's RFC 4733 reaches the browser as INFO application/dtmf-relay.
func TestCoreDigitReachesBrowserAsInfo(t *testing.T) {
	g, core, f := newRawRig(t)
	answeredCall(t, g, core, f)
	c := g.callByWeb(f.name, "web-call-1")
	c.enqueue(event{kind: evMedia, media: mediabridge.Event{Kind: mediabridge.EventDTMF,
		Digit: mediabridge.DTMFDigit{Event: 11, Duration: 160 * time.Millisecond}}})
	info := f.nextRequest(t)
	if info.Method != sip.INFO || headerValue(info, "Content-Type") != "application/dtmf-relay" {
		t.Fatalf("browser got %s (%s)", info.Method, headerValue(info, "Content-Type"))
	}
	if got := string(info.Body()); got != "Signal=#\r\nDuration=160\r\n" {
		t.Fatalf("body %q", got)
	}
	g.handleWeb(f, webReply(info, 200, ""))
	core.quiet(100 * time.Millisecond)
}
