package webua

import (
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// Drop closes the WebSocket as a lost network or a reloading page does:
// no close frame and no BYE. Calls and their media stay up, waiting for
// Redial; requests written meanwhile fail. Not to be called concurrently
// with Redial or Close.
func (u *UA) Drop() error {
	u.mu.Lock()
	if u.closing || u.dropped != nil {
		u.mu.Unlock()
		return fmt.Errorf("drop: %w", errClosed)
	}
	u.writeMu.Lock()
	conn := u.conn
	u.writeMu.Unlock()
	u.dropped = conn
	done := u.connDone
	u.mu.Unlock()
	err := conn.Close()
	<-done
	if err != nil {
		return fmt.Errorf("drop: %w", err)
	}
	return nil
}

// Redial opens a new WebSocket after Drop and reads from it; the calls go
// on over it. The browser then registers again (same Contact and
// +sip.instance, as JsSIP does after its transport reconnects) so the
// gateway hands it its calls.
func (u *UA) Redial(ctx context.Context) error {
	u.mu.Lock()
	if u.closing || u.dropped == nil {
		u.mu.Unlock()
		return fmt.Errorf("redial: %w: not dropped", errBadState)
	}
	u.mu.Unlock()
	conn, err := u.dial(ctx)
	if err != nil {
		return fmt.Errorf("redial: %w", err)
	}
	done := make(chan struct{})
	u.mu.Lock()
	u.writeMu.Lock()
	u.conn = conn
	u.writeMu.Unlock()
	u.dropped, u.connDone = nil, done
	u.mu.Unlock()
	go u.readLoop(conn, done)
	return nil
}

// Abandon leaves the WebSocket as a device whose NAT forgot it does: the
// connection stays open at the gateway, which sees no close, but nothing
// more is read from it or written to it. Redial follows, before the
// gateway could notice; AbandonedClose tells how the gateway closed the
// old connection afterwards.
func (u *UA) Abandon() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closing || u.dropped != nil {
		return fmt.Errorf("abandon: %w", errClosed)
	}
	u.writeMu.Lock()
	u.dropped, u.abandoned = u.conn, u.conn
	u.writeMu.Unlock()
	u.abandonedClose = make(chan *websocket.CloseError, 1)
	return nil
}

// AbandonedClose waits for the gateway to close the connection Abandon
// left; nil when it ended without a close frame.
func (u *UA) AbandonedClose(timeout time.Duration) (*websocket.CloseError, error) {
	u.mu.Lock()
	ch := u.abandonedClose
	u.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("abandoned close: %w: nothing abandoned", errBadState)
	}
	select {
	case ce := <-ch:
		return ce, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("the gateway did not close the abandoned connection within %s", timeout)
	}
}
