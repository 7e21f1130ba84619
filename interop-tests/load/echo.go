package load

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/imsgate/imsgate/internal/listenpair"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/cmd/imsgate/democore"
)

// EchoOptions configure RunEcho.
type EchoOptions struct {
	Listen  string // host:port for SIP over UDP and TCP, e.g. 127.0.0.1:5080
	MediaIP string // RTP sockets and SDP c= lines
	Domain  string // default imsgate.test
	Log     *zap.Logger
}

// RunEcho serves the echo UAS (the demo core without authentication:
// sip:echo@<domain> answers at once and sends every RTP packet back) until
// ctx ends. ready is called with the bound address once it serves.
func RunEcho(ctx context.Context, opts EchoOptions, ready func(addr string)) error {
	if opts.Domain == "" {
		opts.Domain = "imsgate.test"
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	core, err := democore.New(democore.Options{Domain: opts.Domain, MediaIP: opts.MediaIP}, opts.Log)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	udp, tcp, err := listenSIP(opts.Listen)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if err := core.Start(udp, tcp); err != nil {
		_ = udp.Close()
		_ = tcp.Close()
		return fmt.Errorf("echo: %w", err)
	}
	if ready != nil {
		ready(udp.LocalAddr().String())
	}
	<-ctx.Done()
	if err := core.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("echo: close: %w", err)
	}
	return nil
}

// listenSIP binds UDP and TCP on one port: the port asked for, or with
// port 0 one that is free for both.
func listenSIP(addr string) (net.PacketConn, net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, nil, fmt.Errorf("%w: listen %q: %w", ErrBadFlag, addr, err)
	}
	udp, tcp, err := listenpair.UDPAndTCP(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return udp, tcp, nil
}
