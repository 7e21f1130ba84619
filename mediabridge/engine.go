package mediabridge

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/imsgate/imsgate/configs"
	"go.uber.org/zap"
)

// Engine is one per process: the one UDP socket (media.webrtc_port) that
// carries every browser's ICE, DTLS and SRTP, the poll loop that reads it
// and every session's core sockets, the DTLS certificate, and the core RTP
// port-pair pool.
type Engine struct {
	log      *zap.Logger
	sock     *webrtcSocket
	loop     *pollLoop
	cert     *dtlsCertificate
	addr     net.Addr
	publicIP netip.Addr
	ports    *portAllocator
	allowed  allowedSet
	nextID   atomic.Uint64
}

// webrtcSocketBuffer is the receive and send buffer asked for the shared
// WebRTC socket.
const webrtcSocketBuffer = 8 << 20

// NewEngine binds the WebRTC port (port 0 is ephemeral, for tests) and
// prepares the certificate, the codec set and the port pool from cfg.
func NewEngine(cfg configs.Media, log *zap.Logger) (*Engine, error) {
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
	// Every browser's media lands on this one socket: a deep receive
	// buffer rides out scheduling gaps (the kernel caps it at
	// net.core.rmem_max).
	udp, err := listenUDP(netip.AddrPortFrom(bindIP, uint16(cfg.WebRTCPort)), webrtcSocketBuffer)
	if err != nil {
		return nil, fmt.Errorf("bind webrtc port %d: %w", cfg.WebRTCPort, err)
	}
	sock := newWebRTCSocket(udp, (hi-lo+1)/2, log) // a session per port pair at most
	loop, err := newPollLoop(udp, log)
	if err != nil {
		_ = sock.close()
		return nil, fmt.Errorf("media poll loop: %w", err)
	}
	if err := loop.add(udp, sock.handlePacket, true); err != nil {
		loop.close()
		_ = sock.close()
		return nil, fmt.Errorf("media poll loop: %w", err)
	}
	return &Engine{
		log:      log,
		sock:     sock,
		loop:     loop,
		cert:     cert,
		addr:     net.UDPAddrFromAddrPort(udp.localAddr()),
		publicIP: publicIP,
		ports:    newPortAllocator(bindIP, lo, hi),
		allowed:  allowed,
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

// Close stops the poll loop and closes the shared socket; sessions must be
// closed first.
func (e *Engine) Close() error {
	e.loop.remove(e.sock.udp)
	e.loop.close()
	if err := e.sock.close(); err != nil {
		return fmt.Errorf("close webrtc socket: %w", err)
	}
	return nil
}
