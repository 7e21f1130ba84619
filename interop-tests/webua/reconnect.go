package webua

import (
	"context"
	"fmt"
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
