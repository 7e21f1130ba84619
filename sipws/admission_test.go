package sipws

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap/zaptest"
)

// statusError refuses with a status and, when set, a challenge.
type statusError struct {
	status    int
	challenge string
}

func (e *statusError) Error() string { return fmt.Sprintf("refused with %d", e.status) }
func (e *statusError) Status() int   { return e.status }

// challengeError has a challenge and no status.
type challengeError struct{ challenge string }

func (e *challengeError) Error() string     { return "token expired" }
func (e *challengeError) Challenge() string { return e.challenge }

// challengingStatus has both.
type challengingStatus struct {
	statusError
	challengeError
}

func (e *challengingStatus) Error() string { return "token for another audience" }

func TestAdmissionRefuses(t *testing.T) {
	const bearer = `Bearer realm="imsgate", error="invalid_token"`
	tests := []struct {
		name          string
		err           error
		wantStatus    int
		wantChallenge string
		wantBody      string
	}{
		{name: "plain error is 401", err: errors.New("no token"), wantStatus: 401, wantBody: "no token"},
		{name: "status", err: &statusError{status: 403}, wantStatus: 403, wantBody: "refused with 403"},
		{name: "wrapped status", err: fmt.Errorf("admit: %w", &statusError{status: 503}), wantStatus: 503,
			wantBody: "admit: refused with 503"},
		{name: "challenge", err: &challengeError{challenge: bearer}, wantStatus: 401, wantChallenge: bearer,
			wantBody: "token expired"},
		{name: "status and challenge",
			err:        &challengingStatus{statusError{status: 403}, challengeError{challenge: bearer}},
			wantStatus: 403, wantChallenge: bearer, wantBody: "another audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &openerHandler{recordingHandler: newRecordingHandler(), opened: make(chan openedView, 1)}
			ts := serveHandler(t, testConfig(), h, h.recordingHandler, zaptest.NewLogger(t),
				WithAdmission(func(*http.Request) (any, error) { return nil, tt.err }))
			ws, resp, err := websocket.DefaultDialer.Dial(ts.url, sipHeader(""))
			if err == nil {
				_ = ws.Close()
				t.Fatal("upgrade accepted")
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChallenge)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", body, tt.wantBody)
			}
			if n := ts.srv.Refusals()["admission"]; n != 1 {
				t.Errorf("admission refusals = %d, want 1", n)
			}
			if n := ts.srv.Len(); n != 0 {
				t.Errorf("Len = %d after refusal", n)
			}
			select {
			case v := <-h.opened:
				t.Errorf("ConnOpened called for a refused upgrade (flow %s)", v.conn.Flow())
			default:
			}
		})
	}
}

// openedView is what a connection looked like as ConnOpened ran.
type openedView struct {
	conn      *Conn
	principal any
	messages  int // messages the handler had seen of it by then
}

// openerHandler is a recordingHandler that is also an Opener.
type openerHandler struct {
	*recordingHandler
	opened chan openedView
}

func (h *openerHandler) ConnOpened(c *Conn) {
	h.opened <- openedView{conn: c, principal: c.Principal(), messages: len(h.messages)}
}

type user struct{ name string }

// TestAdmissionPrincipalAndOpener: what the Admission returns is the
// connection's Principal, and ConnOpened hears of the connection before
// its first message reaches the Handler.
func TestAdmissionPrincipalAndOpener(t *testing.T) {
	alice := &user{name: "alice"}
	h := &openerHandler{recordingHandler: newRecordingHandler(), opened: make(chan openedView, 1)}
	ts := serveHandler(t, testConfig(), h, h.recordingHandler, zaptest.NewLogger(t),
		WithAdmission(func(r *http.Request) (any, error) {
			if r.URL.Query().Get("access_token") != "good" {
				return nil, &statusError{status: 401}
			}
			return alice, nil
		}))
	ws := dial(t, websocket.DefaultDialer, ts.url+"/?access_token=good", sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)

	var v openedView
	select {
	case v = <-h.opened:
	case <-time.After(waitFor):
		t.Fatal("ConnOpened was not called")
	}
	r := h.nextMessage(t)
	if v.conn != r.conn || v.messages != 0 {
		t.Errorf("ConnOpened for %p after %d messages, want for %p before any", v.conn, v.messages, r.conn)
	}
	if v.principal != alice || r.conn.Principal() != alice {
		t.Errorf("principal %v at open, %v at the message; want %v", v.principal, r.conn.Principal(), alice)
	}
	if r.msg.CallID().Value() != "aiuy7k9njasd" {
		t.Errorf("message %s", r.msg)
	}
	if _, ok := r.msg.(*sip.Request); !ok {
		t.Errorf("message is not the REGISTER")
	}
}

// TestPrincipalNilWithoutAdmission: without an Admission every connection
// has a nil principal.
func TestPrincipalNilWithoutAdmission(t *testing.T) {
	ts := startServer(t, testConfig())
	ws := dial(t, websocket.DefaultDialer, ts.url, sipHeader(""))
	send(t, ws, websocket.TextMessage, registerMsg)
	if p := ts.handler.nextMessage(t).conn.Principal(); p != nil {
		t.Errorf("Principal = %v, want nil", p)
	}
}
