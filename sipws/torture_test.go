package sipws

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
)

// tortureMessage is one RFC 4475 message from testdata/torture.
type tortureMessage struct {
	name string // the RFC's file name without .dat
	data []byte
}

func tortureCorpus(tb testing.TB) []tortureMessage {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "torture", "*.dat"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no torture messages in testdata/torture: %v", err)
	}
	msgs := make([]tortureMessage, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatalf("read %s: %v", f, err)
		}
		msgs = append(msgs, tortureMessage{name: strings.TrimSuffix(filepath.Base(f), ".dat"), data: data})
	}
	return msgs
}

// tortureOutcome is what the intake does with a message: delivers it to
// the Handler, answers it (status), drops it, or closes the connection.
type tortureOutcome struct {
	action frameAction
	status int // for actionReject
}

var (
	delivered = tortureOutcome{action: actionDeliver}
	answer400 = tortureOutcome{action: actionReject, status: 400}
	answer505 = tortureOutcome{action: actionReject, status: 505}
	dropped   = tortureOutcome{action: actionDrop}
	closed    = tortureOutcome{action: actionClose}
)

// tortureOutcomes is the outcome of every message of RFC 4475, by section;
// testdata/torture/README.md says why for each.
var tortureOutcomes = map[string]tortureOutcome{
	// 3.1.1 valid messages: all reach the Handler.
	"wsinv": delivered, "intmeth": delivered, "esc01": delivered, "escnull": delivered,
	"esc02": delivered, "lwsdisp": delivered, "longreq": delivered, "dblreq": delivered,
	"semiuri": delivered, "transports": delivered, "mpart01": delivered, "unreason": delivered,
	"noreason": delivered,
	// 3.1.2 invalid messages.
	"badinv01": answer400, "clerr": answer400, "ncl": answer400, "scalar02": answer400,
	"scalarlg": dropped, "quotbal": answer400, "ltgtruri": answer400, "lwsruri": answer400,
	"lwsstart": answer400, "trws": answer400, "escruri": delivered, "baddate": delivered,
	"regbadct": delivered, "badaspec": answer400, "baddn": answer400, "badvers": answer505,
	"mismatch01": answer400, "mismatch02": answer400, "bigcode": dropped,
	// 3.2 transaction layer.
	"badbranch": delivered,
	// 3.3 application layer.
	"insuf": closed, "unkscm": delivered, "novelsc": answer400, "unksm2": delivered,
	"bext01": delivered, "invut": delivered, "regaut01": delivered, "multi01": answer400,
	"mcl01": answer400, "bcast": delivered, "zeromf": delivered, "cparam01": delivered,
	"cparam02": delivered, "regescrt": delivered, "sdp01": delivered,
	// 3.4 backward compatibility.
	"inv2543": delivered,
}

// markerCallID names the request each test sends after a torture message:
// its 200 shows that whatever the message got came before it.
const markerCallID = "torture-marker"

var markerRequest = strings.Replace(registerMsg, "aiuy7k9njasd", markerCallID, 1)

// TestTortureMessages feeds every RFC 4475 message through a real
// WebSocket, one connection each, followed by a marker request, and checks
// the outcome: what reached the Handler, what came back before the
// marker's 200, or the close. No goroutine may outlive the test (TestMain).
func TestTortureMessages(t *testing.T) {
	corpus := tortureCorpus(t)
	names := make([]string, 0, len(corpus))
	for _, m := range corpus {
		names = append(names, m.name)
	}
	for name := range tortureOutcomes {
		if !slices.Contains(names, name) {
			t.Errorf("%s has an outcome but no file in testdata/torture", name)
		}
	}

	counts := map[frameAction]int{}
	for _, m := range corpus {
		want, ok := tortureOutcomes[m.name]
		if !ok {
			t.Errorf("%s.dat has no outcome in tortureOutcomes", m.name)
			continue
		}
		counts[want.action]++
		t.Run(m.name, func(t *testing.T) {
			if got := tortureOverWS(t, m.data); got != want {
				t.Errorf("outcome = %+v, want %+v", got, want)
			}
		})
	}
	t.Logf("RFC 4475 messages: %d delivered, %d answered, %d dropped, %d closed",
		counts[actionDeliver], counts[actionReject], counts[actionDrop], counts[actionClose])
}

// tortureOverWS sends data and the marker to a server of its own and
// returns what became of data.
func tortureOverWS(t *testing.T, data []byte) tortureOutcome {
	t.Helper()
	ts := startServer(t, testConfig())
	ts.handler.onMessage = func(c *Conn, msg sip.Message) {
		if req, ok := msg.(*sip.Request); ok && msg.CallID().Value() == markerCallID {
			_ = c.WriteMessage(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
	}
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, string(data))
	send(t, ws, websocket.TextMessage, markerRequest)

	got := repliesBeforeMarker(t, ws)
	if got.action != actionClose {
		if r := ts.handler.nextMessage(t); r.msg.CallID().Value() != markerCallID {
			got.action = actionDeliver
			ts.handler.nextMessage(t) // the marker
		} else if got.action == actionUnknown {
			got.action = actionDrop
		}
	}
	_ = ws.Close()
	ts.handler.nextClosed(t)
	select {
	case r := <-ts.handler.messages:
		t.Errorf("unexpected message reached the handler: %s", r.msg)
	default:
	}
	return got
}

// repliesBeforeMarker reads frames up to the marker's 200 or the close: a
// reply to the torture message gives its status. Replies are read as text:
// they echo the message's header values, which may not parse.
func repliesBeforeMarker(t *testing.T, ws *websocket.Conn) tortureOutcome {
	t.Helper()
	var got tortureOutcome
	_ = ws.SetReadDeadline(time.Now().Add(waitFor))
	for {
		_, data, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.CloseInvalidFramePayloadData {
				t.Errorf("close code = %d, want 1007", ce.Code)
			}
			return closed
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if bytes.Contains(data, []byte("Call-ID: "+markerCallID+"\r\n")) {
			return got
		}
		var status int
		if _, err := fmt.Sscanf(string(data), "SIP/2.0 %d ", &status); err != nil || got.action != actionUnknown {
			t.Fatalf("not one reply before the marker's: %q", data)
		}
		got = tortureOutcome{action: actionReject, status: status}
	}
}
