package sipws

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// ServeHTTP upgrades SIP-over-WebSocket requests and hands every other
// request to the HTTP handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		s.httpHandler.ServeHTTP(w, r)
		return
	}
	if !s.upgradeAllowed(w, r) || !s.upgradeSizeAllowed(w, r) {
		return
	}
	if status, msg := s.refuseUpgrade(r); status != 0 {
		s.log.Debug("ws upgrade refused", zap.String("remote_addr", r.RemoteAddr),
			zap.Int("status", status), zap.String("reason", msg))
		http.Error(w, msg, status)
		return
	}
	principal, ok := s.admitPrincipal(w, r)
	if !ok {
		return
	}
	if !s.admit() {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}

	// Upgrade writes its own HTTP error response when it fails.
	hw := &hijackWriter{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		s.wg.Done()
		s.log.Debug("ws upgrade failed", zap.String("remote_addr", r.RemoteAddr), zap.Error(err))
		return
	}
	c := newConn(s, ws, hw.br, r)
	c.principal = principal
	if err := s.register(c); err != nil {
		// Shutdown began during the upgrade: the handler never saw this conn.
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseGoingAway, "going away"), time.Now().Add(writeWait))
		_ = ws.Close()
		s.wg.Done()
		return
	}
	s.upgraded.Add(1)
	if o, ok := s.handler.(Opener); ok {
		o.ConnOpened(c)
	}
	// The connection's own goroutine reads from here on: returning lets
	// net/http drop the request and its buffers, which an idle browser
	// would otherwise hold for hours.
	c.start()
}

// upgradeAllowed takes one upgrade from the source IP's allowance
// (limits.upgrades_per_ip), before anything costly such as the Admission;
// past it the answer is 429 with Retry-After, and the connection is closed
// so that a retry costs a new one (limits.conns_per_ip).
func (s *Server) upgradeAllowed(w http.ResponseWriter, r *http.Request) bool {
	ip := requestIP(r)
	ok, retry := s.upgrades.allow(ip, s.now())
	if ok {
		return true
	}
	s.refuse(refusalUpgradeRate, ip, "ws upgrade refused: too many from this address", zap.String("remote_addr", r.RemoteAddr))
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	w.Header().Set("Connection", "close")
	http.Error(w, "too many WebSocket upgrades from this address, retry later", http.StatusTooManyRequests)
	return false
}

// upgradeSizeAllowed holds an upgrade's request line and headers to
// limits.max_upgrade_bytes exactly: net/http reads 4 KiB past
// MaxHeaderBytes before it answers 431 itself.
func (s *Server) upgradeSizeAllowed(w http.ResponseWriter, r *http.Request) bool {
	size := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for name, values := range r.Header {
		for _, v := range values {
			size += len(name) + len(v) + 4 // ": " and CRLF
		}
	}
	if size <= s.limits.MaxUpgradeBytes {
		return true
	}
	s.refuse(refusalUpgradeTooLarge, requestIP(r), "ws upgrade refused: headers too large", zap.String("remote_addr", r.RemoteAddr), zap.Int("bytes", size))
	w.Header().Set("Connection", "close")
	http.Error(w, "request headers too large", http.StatusRequestHeaderFieldsTooLarge)
	return false
}

// requestIP is the source IP of a request, IPv4-mapped IPv6 as IPv4.
func requestIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// refuseUpgrade returns an HTTP status and text body when the upgrade must
// be refused, or 0.
func (s *Server) refuseUpgrade(r *http.Request) (int, string) {
	if s.cfg.Path != "" && r.URL.Path != s.cfg.Path {
		return http.StatusNotFound, "no WebSocket endpoint at this path"
	}
	if s.draining.Load() {
		return http.StatusServiceUnavailable, "server is draining, try another node"
	}
	// RFC 7118 section 4.1: the client must ask for the "sip" subprotocol.
	// gorilla would upgrade without one, so check here.
	if !slices.Contains(websocket.Subprotocols(r), subprotocol) {
		return http.StatusBadRequest, `WebSocket subprotocol "sip" is required (Sec-WebSocket-Protocol: sip, RFC 7118)`
	}
	if !s.originAllowed(r.Header.Get("Origin")) {
		return http.StatusForbidden, "origin not allowed"
	}
	return 0, ""
}

func (s *Server) originAllowed(origin string) bool {
	if len(s.origins) == 0 {
		return true
	}
	n, ok := normalizeOrigin(origin)
	return ok && s.origins[n]
}

// readBufferSize is the read buffer of every connection: SIP messages are a
// few hundred bytes to a few KiB, and a small buffer per idle connection
// matters more than a read syscall.
const readBufferSize = 1024

// hijackWriter gives gorilla a read buffer of ours when it hijacks the
// connection. gorilla reads through the hijacked reader when its
// ReadBufferSize is zero; holding it lets a connection see whether a frame
// is still buffered before it parks (Conn.park).
type hijackWriter struct {
	http.ResponseWriter
	br *bufio.Reader
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errNoHijack
	}
	conn, brw, err := hj.Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		// gorilla refuses a client that sent data before the handshake.
		return conn, brw, err
	}
	h.br = bufio.NewReaderSize(conn, readBufferSize)
	return conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}
