package mediabridge

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/rawudp"
	"go.uber.org/zap"
)

// Engine is one per process: the one UDP socket (media.webrtc_port) that
// carries every browser's ICE, DTLS and SRTP, the ICE-TCP listener
// (media.webrtc_tcp_port) for browsers without UDP, the poll loop that
// moves their packets and those of every session's core sockets, the DTLS
// certificate, and the core RTP port-pair pool.
type Engine struct {
	log      *zap.Logger
	sock     *webrtcSocket
	tcp      *tcpServer // nil when ICE-TCP is off
	loop     *pollLoop
	cert     *dtlsCertificate
	addr     net.Addr
	publicIP netip.Addr
	ports    *portAllocator
	allowed  allowedSet
	nextID   atomic.Uint64
	probes   *probeSet // probe.go
	onSetup  func(SetupReport)
}

// webrtcSocketBuffer is the receive and send buffer asked for the shared
// WebRTC socket.
const webrtcSocketBuffer = 8 << 20

// EngineOption changes how NewEngine sets up.
type EngineOption func(*engineOptions)

type engineOptions struct {
	tcpListener net.Listener
	tcpLimits   *tcpLimits
	onSetup     func(SetupReport)
}

// SetupReport is how a call's browser media came up, or failed to.
type SetupReport struct {
	// Transport is the path the browser's media took (when Err is nil).
	Transport Transport
	// Handshake is the DTLS handshake alone; Setup runs from the session's
	// making (the offer) to the keys installed, ICE included.
	Handshake, Setup time.Duration
	Err              error
}

// WithSetupObserver has f told of every call session's DTLS-SRTP setup,
// on the handshake's goroutine; f must not block.
func WithSetupObserver(f func(SetupReport)) EngineOption {
	return func(o *engineOptions) { o.onSetup = f }
}

// WithWebRTCTCPListener serves ICE-TCP on ln instead of binding
// media.webrtc_tcp_port; the candidate names ln's port and public_ip. The
// engine closes ln.
func WithWebRTCTCPListener(ln net.Listener) EngineOption {
	return func(o *engineOptions) { o.tcpListener = ln }
}

// withTCPLimits replaces the ICE-TCP limits (tests).
func withTCPLimits(l tcpLimits) EngineOption {
	return func(o *engineOptions) { o.tcpLimits = &l }
}

// NewEngine binds the WebRTC port (port 0 is ephemeral, for tests) and,
// when media.webrtc_tcp_port is set, the ICE-TCP port, and prepares the
// certificate, the codec set and the port pool from cfg.
func NewEngine(cfg configs.Media, log *zap.Logger, opts ...EngineOption) (_ *Engine, err error) {
	var o engineOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.tcpListener != nil {
		defer func() {
			if err != nil {
				_ = o.tcpListener.Close()
			}
		}()
	}
	publicIP, err := netip.ParseAddr(cfg.PublicIP)
	if err != nil {
		return nil, fmt.Errorf("media public_ip %q: %w", cfg.PublicIP, err)
	}
	publicIP = publicIP.Unmap()
	bindIP := publicIP
	if cfg.BindIP != "" {
		if bindIP, err = netip.ParseAddr(cfg.BindIP); err != nil {
			return nil, fmt.Errorf("media bind_ip %q: %w", cfg.BindIP, err)
		}
		bindIP = bindIP.Unmap()
	}
	lo, hi, err := configs.ParsePortRange(cfg.RTPPorts)
	if err != nil {
		return nil, fmt.Errorf("media rtp_ports: %w", err)
	}
	allowed := newAllowedSet(cfg.Codecs)
	if !allowed.hasAudio() {
		return nil, fmt.Errorf("media codecs: %w", ErrNoCommonCodec)
	}
	cert, err := newDTLSCertificate()
	if err != nil {
		return nil, err
	}
	sessions := (hi - lo + 1) / 2 // a session per port pair at most
	ln := o.tcpListener
	if ln == nil && cfg.WebRTCTCPPort != 0 {
		addr := netip.AddrPortFrom(bindIP, uint16(cfg.WebRTCTCPPort))
		if ln, err = net.Listen("tcp", addr.String()); err != nil {
			return nil, fmt.Errorf("bind webrtc tcp port %d: %w", cfg.WebRTCTCPPort, err)
		}
	}
	var tcp *tcpServer
	if ln != nil {
		limits := defaultTCPLimits(sessions)
		if o.tcpLimits != nil {
			limits = *o.tcpLimits
		}
		tcp = newTCPServer(ln, limits, log)
		// Until start, closing the server closes only the listener.
		defer func() {
			if err != nil {
				_ = tcp.close()
			}
		}()
	}
	// Every browser's media lands on this one socket: a deep receive
	// buffer rides out scheduling gaps (the kernel caps it at
	// net.core.rmem_max).
	udp, err := rawudp.Listen(netip.AddrPortFrom(bindIP, uint16(cfg.WebRTCPort)), webrtcSocketBuffer)
	if err != nil {
		return nil, fmt.Errorf("bind webrtc port %d: %w", cfg.WebRTCPort, err)
	}
	sock := newWebRTCSocket(udp, tcp, sessions, log)
	loop, err := newPollLoop(udp, tcp, log)
	if err != nil {
		_ = sock.close()
		return nil, fmt.Errorf("media poll loop: %w", err)
	}
	// An IPv4 socket never hears from the ICE-TCP prefix: only a dual-stack
	// one pays for the check of spoofed sources.
	handle := packetHandler(sock.handlePacket)
	if udp.LocalAddr().Addr().Is6() {
		handle = sock.handleDatagram
	}
	if err := loop.add(udp, handle, true); err != nil {
		loop.close()
		_ = sock.close()
		return nil, fmt.Errorf("media poll loop: %w", err)
	}
	if tcp != nil {
		if err := tcp.start(sock, loop); err != nil {
			loop.remove(udp)
			loop.close()
			_ = sock.close()
			return nil, fmt.Errorf("media poll loop: %w", err)
		}
	}
	return &Engine{
		log:      log,
		sock:     sock,
		tcp:      tcp,
		loop:     loop,
		cert:     cert,
		addr:     net.UDPAddrFromAddrPort(udp.LocalAddr()),
		publicIP: publicIP,
		ports:    newPortAllocator(bindIP, lo, hi),
		allowed:  allowed,
		probes:   newProbeSet(),
		onSetup:  o.onSetup,
	}, nil
}

// WebRTCAddr is the bound WebRTC UDP address.
func (e *Engine) WebRTCAddr() net.Addr { return e.addr }

// PortPairsInUse is the number of RTP/RTCP port pairs toward the core that
// sessions hold: each open session holds one.
func (e *Engine) PortPairsInUse() int { return e.ports.used() }

// webRTCPort is the bound port of the shared WebRTC socket, for candidates.
func (e *Engine) webRTCPort() int {
	if a, ok := e.addr.(*net.UDPAddr); ok {
		return a.Port
	}
	return 0
}

// WebRTCTCPAddr is the bound ICE-TCP address, nil when ICE-TCP is off.
func (e *Engine) WebRTCTCPAddr() net.Addr {
	if e.tcp == nil {
		return nil
	}
	return e.tcp.ln.Addr()
}

// webRTCTCPPort is the port of the ICE-TCP candidate, 0 when off.
func (e *Engine) webRTCTCPPort() int {
	if e.tcp == nil {
		return 0
	}
	return e.tcp.port
}

// Close ends the probes, closes the ICE-TCP connections and listener,
// stops the poll loop and closes the shared socket; sessions must be
// closed first.
func (e *Engine) Close() error {
	e.probes.close()
	var errTCP error
	if e.tcp != nil {
		errTCP = e.tcp.close()
		e.loop.removeWaker(e.tcp.waker)
	}
	e.loop.remove(e.sock.udp)
	e.loop.close()
	if err := e.sock.close(); err != nil {
		return fmt.Errorf("close webrtc socket: %w", err)
	}
	if errTCP != nil {
		return fmt.Errorf("close webrtc tcp listener: %w", errTCP)
	}
	return nil
}
