package mediabridge

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/srtp/v3"
	"go.uber.org/zap"
)

// webEndpoint is a session's browser side: ICE credentials, the browser's
// address, the DTLS handshake and the SRTP contexts it yields. The inbound
// context and the outbound one (through the forwarder) are used on the poll
// loop only.
type webEndpoint struct {
	sock *webrtcSocket
	cert *dtlsCertificate
	log  *zap.Logger
	fwd  *forwarder
	// dtls carries the current association's packets; a browser's new
	// association (RFC 8842) replaces it.
	dtls atomic.Pointer[dtlsPacketConn]

	// localUfrag and localPwd change on an ICE restart, under the socket's
	// lock (the poll loop reads them there); the call goroutine reads them
	// through credentials.
	localUfrag, localPwd string
	role                 dtlsRole // set by start
	ssrc                 uint32   // our outbound stream toward the browser
	cname                string
	streamID             string
	created              time.Time

	// remote is where media and DTLS go: nil, or one of learned (the
	// addresses that passed an ICE check) until the session closes.
	remote     atomic.Pointer[netip.AddrPort]
	learned    []*addrEntry // in the socket's table, oldest first; under sock.mu
	nominated  atomic.Bool
	remoteSeen chan struct{} // closed at the first valid check
	seenOnce   sync.Once

	handshook     chan struct{} // closed when the first handshake ends, either way
	handshookOnce sync.Once
	in            atomic.Pointer[srtp.Context] // decrypts browser SRTP/SRTCP
	rtcpFromWeb   atomic.Uint64

	// onEvent is set once before negotiation (Session.OnEvent).
	onEvent func(Event)

	startOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	// onSetup hears how the DTLS-SRTP setup went (a call's; nil for a probe).
	onSetup func(SetupReport)
}

func newWebEndpoint(sock *webrtcSocket, cert *dtlsCertificate, fwd *forwarder, log *zap.Logger, streamID string) *webEndpoint {
	ep := &webEndpoint{
		sock:       sock,
		cert:       cert,
		log:        log,
		fwd:        fwd,
		localUfrag: randomICEString(iceUfragLen),
		localPwd:   randomICEString(icePwdLen),
		ssrc:       randomSSRC(),
		cname:      randomICEString(16),
		streamID:   streamID,
		created:    time.Now(),
		remoteSeen: make(chan struct{}),
		handshook:  make(chan struct{}),
	}
	ep.dtls.Store(newDTLSPacketConn(sock, ep.remoteAddr))
	sock.register(ep)
	return ep
}

func randomSSRC() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) | 1
}

func (ep *webEndpoint) remoteAddr() (netip.AddrPort, bool) {
	if p := ep.remote.Load(); p != nil {
		return *p, true
	}
	return netip.AddrPort{}, false
}

// setRemote follows a valid check: a nominated address wins; before the
// nomination the latest valid check's address is used.
func (ep *webEndpoint) setRemote(addr netip.AddrPort, nominate bool) {
	cur := ep.remote.Load()
	switch {
	case nominate:
		if cur == nil || *cur != addr || !ep.nominated.Load() {
			ep.remote.Store(&addr)
		}
		ep.nominated.Store(true)
	case cur == nil || (!ep.nominated.Load() && *cur != addr):
		ep.remote.Store(&addr)
	}
	ep.seenOnce.Do(func() { close(ep.remoteSeen) })
}

// oldestLearned is the learned address heard from least recently other
// than the one media goes to, the first learned of equals. Under sock.mu.
func (ep *webEndpoint) oldestLearned() *addrEntry {
	cur, _ := ep.remoteAddr()
	var old *addrEntry
	for _, e := range ep.learned {
		if e.addr != cur && (old == nil || e.lastSeen.Load() < old.lastSeen.Load()) {
			old = e
		}
	}
	return old
}

// forgetRemote runs when addr is forgotten (consent expired, evicted, or
// taken over by another session once silent): if it was where media went,
// the browser is gone and the call is told.
func (ep *webEndpoint) forgetRemote(addr netip.AddrPort) {
	if cur := ep.remote.Load(); cur != nil && *cur == addr {
		ep.remote.Store(nil)
		ep.nominated.Store(false)
		ep.report(Event{Kind: EventConsentLost})
	}
}

// start runs the DTLS handshake in a goroutine owned by the endpoint; a
// repeated call (a second answer) does nothing.
func (ep *webEndpoint) start(role dtlsRole, fp remoteFingerprint) {
	ep.startOnce.Do(func() { ep.run(role, fp) })
}

func (ep *webEndpoint) run(role dtlsRole, fp remoteFingerprint) {
	ep.role = role
	ctx, cancel := context.WithCancel(context.Background())
	ep.cancel = cancel
	ep.wg.Add(1)
	go ep.runDTLS(ctx, ep.dtls.Load(), role, fp)
}

// newAssociation replaces the DTLS association: the browser brought a new
// certificate or tls-id (RFC 8842 §5), a new PeerConnection behind the same
// dialog. The old keys carry media until the new ones are installed.
func (ep *webEndpoint) newAssociation(role dtlsRole, fp remoteFingerprint) {
	started := false
	ep.startOnce.Do(func() { ep.run(role, fp); started = true })
	if started {
		return
	}
	ep.cancel()
	ep.wg.Wait()
	ep.dtls.Store(newDTLSPacketConn(ep.sock, ep.remoteAddr))
	ep.log.Info("browser brought a new DTLS association", zap.Stringer("role", role))
	ep.run(role, fp)
}

// credentials are our current ICE ufrag and password.
func (ep *webEndpoint) credentials() (ufrag, pwd string) {
	ep.sock.mu.Lock()
	defer ep.sock.mu.Unlock()
	return ep.localUfrag, ep.localPwd
}

// restartICE answers a browser's ICE restart: new credentials of ours
// (RFC 8445 §9), the old ones dropped. The addresses checks already proved
// keep carrying media until new checks move them.
func (ep *webEndpoint) restartICE() {
	ep.sock.rekey(ep, randomICEString(iceUfragLen), randomICEString(icePwdLen))
}

// setup is our a=setup in an answer once DTLS runs: the role we have
// (RFC 8842 §5.3: an unchanged association keeps its roles).
func (ep *webEndpoint) setup() string {
	if ep.role == dtlsRoleClient {
		return "active"
	}
	return "passive"
}

// close stops the handshake (or the finished DTLS association) and
// unregisters from the shared socket.
func (ep *webEndpoint) close() {
	ep.sock.unregister(ep)
	ep.fwd.webOut.Store(nil)
	ep.in.Store(nil)
	if ep.cancel != nil {
		ep.cancel()
	}
	_ = ep.dtls.Load().Close()
	ep.wg.Wait()
}
