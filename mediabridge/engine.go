package mediabridge

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/imsgate/imsgate/configs"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
	"go.uber.org/zap"
)

// gatherTimeout bounds the wait for local candidates; with ICE-lite on a
// UDP mux there is one host candidate and gathering is immediate.
const gatherTimeout = 5 * time.Second

// Engine is one per process: one webrtc.API over one ICE UDP mux socket
// that carries all browser media, and the core RTP port-pair pool.
type Engine struct {
	log      *zap.Logger
	api      *webrtc.API
	mux      *ice.UDPMuxDefault
	early    *earlyCheckConn
	addr     net.Addr
	publicIP netip.Addr
	ports    *portAllocator
	allowed  allowedSet
	nextID   atomic.Uint64
}

// NewEngine binds the WebRTC mux port (port 0 is ephemeral, for tests) and
// prepares the codec set and port pool from cfg.
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
	me, err := newMediaEngine(allowed)
	if err != nil {
		return nil, err
	}

	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(bindIP, uint16(cfg.WebRTCPort))))
	if err != nil {
		return nil, fmt.Errorf("bind webrtc port %d: %w", cfg.WebRTCPort, err)
	}
	logs := pionLoggerFactory{log: log}
	early := newEarlyCheckConn(conn)
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: early, Logger: logs.NewLogger("ice_udp_mux")})

	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetLite(true)
	se.SetICEUDPMux(mux)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if bindIP.Is4() {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	}
	if bindIP.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if bindIP != publicIP {
		// 1:1 NAT: the host candidate carries the public address.
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        []string{publicIP.String()},
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			_ = mux.Close()
			return nil, fmt.Errorf("set public ip rewrite: %w", err)
		}
	}

	// Only RTCP sender/receiver reports: pion's defaults would also add
	// NACK buffering and transport-cc, whose header extension would then
	// reach the core inside the RTP we forward as is.
	interceptors := &interceptor.Registry{}
	if err := webrtc.ConfigureRTCPReportsWithOptions(interceptors,
		[]report.ReceiverOption{report.WithReceiverLoggerFactory(logs)},
		report.WithSenderLoggerFactory(logs)); err != nil {
		_ = mux.Close()
		return nil, fmt.Errorf("configure rtcp reports: %w", err)
	}

	return &Engine{
		log: log,
		api: webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me),
			webrtc.WithInterceptorRegistry(interceptors)),
		mux:      mux,
		early:    early,
		addr:     conn.LocalAddr(),
		publicIP: publicIP,
		ports:    newPortAllocator(bindIP, lo, hi),
		allowed:  allowed,
	}, nil
}

// newMediaEngine registers the allowed codecs with their WebRTC-side
// payload types. No header extensions and no RTCP feedback are registered,
// so the browser sends plain RTP the core can take as is.
func newMediaEngine(allowed allowedSet) (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	n := 0
	for _, c := range supportedCodecs {
		if !allowed.has(c) {
			continue
		}
		if err := me.RegisterCodec(c.webParameters(), webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("register codec %s: %w", c.rtpmap(), err)
		}
		if !c.isDTMF() {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("media codecs: %w", ErrNoCommonCodec)
	}
	return me, nil
}

// WebRTCAddr is the bound ICE mux UDP address.
func (e *Engine) WebRTCAddr() net.Addr { return e.addr }

// Close closes the mux socket; sessions must be closed first.
func (e *Engine) Close() error {
	if err := e.mux.Close(); err != nil {
		return fmt.Errorf("close ice udp mux: %w", err)
	}
	return nil
}
