package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/serial"
	authtoken "github.com/imsgate/imsgate/internal/token"
)

// maxUDPRequest: a request larger than this leaves over TCP (RFC 3261
// 18.1.1: larger than 1300 bytes with the path MTU unknown). sipgo adds its
// Via after we measure, so the margin covers it.
const maxUDPRequest = 1300 - 120

// coreSide is the plain SIP side toward the IMS core or PBX, on sipgo.
type coreSide struct {
	ua        *sipgo.UserAgent
	client    *sipgo.Client
	host      string // advertised host in Contact and Via
	port      int    // advertised port (UDP and TCP)
	tlsPort   int    // the SIP over TLS listener's port; 0 without one
	transport string // "udp", "tcp" or "tls" toward the upstream
	// ups are upstream.proxy and upstream.fallback with their health
	// (upstream.go); silent hears of a request outside a dialog that got no
	// answer (Gateway.upstreamSilent).
	ups    *upstreams
	silent func(*sip.Request, error)
	// udpLocal is the bound UDP listen address: requests leave from it so the
	// core sees one address for the gateway (symmetric signalling).
	udpLocal sip.Addr
}

func newCoreSide(cfg configs.Config, ua *sipgo.UserAgent, listenAddr net.Addr, slogger *slog.Logger) (*coreSide, error) {
	ups, err := newUpstreams(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	var tp string // upstream.proxy's, else sip.transport's (below)
	if cfg.Upstream.Proxy != "" {
		tp = ups.list()[0].proxy.Transport
	}
	if tp == "" {
		tp = cfg.SIP.Transport
	}
	host, port, err := advertised(cfg.SIP.Advertise, listenAddr)
	if err != nil {
		return nil, err
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(port),
		sipgo.WithClientNAT(), sipgo.WithClientLogger(slogger))
	if err != nil {
		return nil, fmt.Errorf("sip client: %w", err)
	}
	bound := listenAddr.(*net.UDPAddr)
	return &coreSide{ua: ua, client: client, host: host, port: port, transport: tp, ups: ups,
		udpLocal: sip.Addr{IP: bound.IP, Port: bound.Port}}, nil
}

// advertised picks the host:port the core should reach the gateway at:
// sip.advertise when set, else the bound listen address.
func advertised(adv string, bound net.Addr) (string, int, error) {
	ua, ok := bound.(*net.UDPAddr)
	if !ok {
		return "", 0, fmt.Errorf("sip.listen: %v is not a UDP address", bound)
	}
	host, port := ua.IP.String(), ua.Port
	if adv != "" {
		h, p, err := net.SplitHostPort(adv)
		if err != nil {
			h, p = adv, ""
		}
		host = h
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return "", 0, fmt.Errorf("sip.advertise: bad port %q", p)
			}
			port = n
		}
	}
	return host, port, nil
}

// contact is the gateway's Contact toward the core, whose user routes back.
func (c *coreSide) contact(user string) *sip.ContactHeader {
	return &sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: user, Host: c.host, Port: c.portFor(c.transport),
			UriParams: sip.HeaderParams{{K: "transport", V: c.transport}}},
		Params: sip.NewParams(),
	}
}

// portFor is the gateway's port for a transport: the TLS listener's for
// TLS, else the one UDP and TCP share.
func (c *coreSide) portFor(transport string) int {
	if strings.EqualFold(transport, "tls") && c.tlsPort != 0 {
		return c.tlsPort
	}
	return c.port
}

// prepareOutOfDialog sends an out-of-dialog request to the upstream proxy
// (the outbound proxy) in use, whatever its Request-URI says.
func (c *coreSide) prepareOutOfDialog(req *sip.Request) {
	c.common(req)
	if up := c.ups.pick(); up != nil {
		c.route(req, up.proxy.Host, up.proxy.Port, c.transport)
		return
	}
	// RFC 3263 has found nothing yet: the domain itself, as its own
	// address records name it (§4.2).
	port := 5060
	if c.transport == "tls" {
		port = 5061
	}
	c.route(req, c.ups.domain, port, c.transport)
}

// prepareInDialog sends an in-dialog request along its route set (RFC 3261
// 12.2.1.1): to the first Route when it is a loose router; when it is a
// strict router the Request-URI becomes that route and the remote target
// goes last in the set; with no route set, to the remote target.
func (c *coreSide) prepareInDialog(req *sip.Request) {
	c.common(req)
	routes := req.GetHeaders("Route")
	if len(routes) == 0 {
		c.routeTo(req, req.Recipient)
		return
	}
	first, ok := routes[0].(*sip.RouteHeader)
	if !ok {
		c.routeTo(req, req.Recipient)
		return
	}
	if !first.Address.UriParams.Has("lr") {
		target := req.Recipient
		req.Recipient = *first.Address.Clone()
		for req.RemoveHeader("Route") {
		}
		for _, h := range routes[1:] {
			req.AppendHeader(h)
		}
		req.AppendHeader(&sip.RouteHeader{Address: target})
		c.routeTo(req, req.Recipient)
		return
	}
	c.routeTo(req, first.Address)
}

// routeTo sends a request to the host, port and transport of a URI.
func (c *coreSide) routeTo(req *sip.Request, u sip.Uri) {
	tp := c.transport
	if v, ok := u.UriParams.Get("transport"); ok && v != "" {
		tp = strings.ToLower(v)
	}
	port := u.Port
	if port == 0 {
		port = int(sip.DefaultPort(tp))
	}
	c.route(req, u.Host, port, tp)
}

// route sets the next hop; a request too large for UDP goes over TCP to
// the same host and port (RFC 3261 18.1.1).
func (c *coreSide) route(req *sip.Request, host string, port int, tp string) {
	if tp == "udp" && len(req.String()) > maxUDPRequest {
		tp = "tcp"
	}
	req.SetTransport(strings.ToUpper(tp))
	req.SetDestination(net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port)))
	if tp == "udp" {
		req.Laddr = c.udpLocal
	} else {
		req.Laddr = sip.Addr{}
	}
}

func (c *coreSide) common(req *sip.Request) {
	if req.MaxForwards() == nil {
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
	}
	if req.GetHeader("User-Agent") == nil {
		req.AppendHeader(sip.NewHeader("User-Agent", userAgent))
	}
	if req.ContentLength() == nil {
		req.SetBody(req.Body())
	}
}

// request sends an out-of-dialog non-INVITE request and waits for its final
// response (REGISTER).
func (c *coreSide) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	c.prepareOutOfDialog(req)
	return c.do(ctx, req)
}

// requestAs is request, answering the core's challenges with id (token
// mode: the gateway holds the identity's credentials); each answer goes
// with the CSeq nextCSeq gives. Without id a challenge is returned as it is.
func (c *coreSide) requestAs(ctx context.Context, req *sip.Request, id *authtoken.Identity, nextCSeq func() uint32) (*sip.Response, error) {
	for tries := 0; ; tries++ {
		res, err := c.request(ctx, req)
		if err != nil || id == nil || !challenged(res) || tries == maxChallenges {
			return res, err
		}
		again, ok := answerChallenge(req, res, id)
		if !ok {
			return res, nil
		}
		again.RemoveHeader("Via")
		again.CSeq().SeqNo = nextCSeq()
		req = again
	}
}

// requestInDialog sends a non-INVITE request of a dialog that is not a
// call's (the presence relay's subscriptions) along its route set, and
// waits for its final response.
func (c *coreSide) requestInDialog(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	c.prepareInDialog(req)
	return c.do(ctx, req)
}

// do sends a prepared non-INVITE request and waits for its final response.
func (c *coreSide) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if req.Via() == nil {
		// Ours, not sipgo's: its port is the listener of the transport.
		req.PrependHeader(c.via(req))
	}
	res, err := c.client.Do(ctx, req)
	if err != nil && ctx.Err() == nil && tagOf(req.To().Params) == "" && c.silent != nil {
		c.silent(req, err) // sipgo's own timeout or a transport failure, not the caller's
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("%s to core: %w", req.Method, errTimeout)
	case err != nil:
		return nil, statusErr(503, "Service Unavailable", fmt.Errorf("%s to core: %w", req.Method, err))
	case res == nil:
		// sipgo's Do can return neither when its transaction is
		// terminated underneath it (the user agent closing).
		return nil, statusErr(503, "Service Unavailable", fmt.Errorf("%s to core: %w", req.Method, errClosed))
	}
	return res, nil
}

// init lets a response of any size leave over UDP: RFC 3261 18.2.2 sends a
// response where the request came from, on its transport, and IP
// fragmentation carries what exceeds the MTU. Only requests change
// transport when large (18.1.1, route); sipgo would refuse both.
func init() { sip.UDPMTUSize = 65535 }

// via is our Via toward the core, made before sipgo sees the request so
// that sipgo leaves the request as it is (the call keeps reading it).
func (c *coreSide) via(req *sip.Request) *sip.ViaHeader {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: req.Transport(),
		Host: c.host, Port: c.portFor(req.Transport()), Params: sip.NewParams()}
	v.Params.Add("branch", newBranch())
	v.Params.Add("rport", "") // RFC 3581: a core behind NAT answers where we sent from
	return v
}

// resend passes a response to the transport again (2xx retransmission).
func (c *coreSide) resend(res *sip.Response) error { return c.ua.TransportLayer().WriteMsg(res) }

// coreTransport carries a call's core leg on sipgo. What may dial (a TCP
// next hop the core named) runs off the call's goroutine, in the order the
// call sent it, on a copy of the request: a dead next hop never stalls the
// call, and an ACK never overtakes the BYE after it.
type coreTransport struct {
	g     *Gateway
	mu    sync.Mutex
	sends serial.Queue[func()]
}

func newCoreTransport(g *Gateway) *coreTransport {
	t := &coreTransport{g: g}
	t.sends.Init(&t.mu, func(f func()) bool { f(); return true },
		func(worker func()) bool { return g.goOwned(func(context.Context) { worker() }) })
	return t
}

func (t *coreTransport) push(f func()) {
	t.mu.Lock()
	t.sends.Push(f)
	t.mu.Unlock()
}

func (t *coreTransport) send(c *Call, tx *clientTx) error {
	core := t.g.core
	req := tx.req
	switch {
	case req.Method == sip.CANCEL:
		// RFC 3261 9.1: the CANCEL goes where its INVITE went, with its Via.
		core.common(req)
	case tagOf(req.To().Params) != "":
		core.prepareInDialog(req)
	default:
		core.prepareOutOfDialog(req)
	}
	if req.Via() == nil {
		req.PrependHeader(core.via(req))
	}
	h := &coreTx{}
	tx.stop = h.stop
	out := req.Clone()
	t.push(func() { t.start(c, tx, h, out) })
	return nil
}

// start begins the sipgo transaction (dialing bounded by 64·T1) and
// hands its responses to the call from a goroutine of their own.
func (t *coreTransport) start(c *Call, tx *clientTx, h *coreTx, req *sip.Request) {
	dial, cancel := context.WithTimeout(t.g.ctx, 64*sip.T1)
	stx, err := t.g.core.client.TransactionRequest(dial, req)
	cancel()
	if err != nil {
		c.enqueue(event{kind: evTxFailed, tx: tx, err: statusErr(503, "Service Unavailable", fmt.Errorf("%s to core: %w", req.Method, err))})
		return
	}
	if req.IsInvite() {
		// Retransmitted 2xx, and 2xx of other forks, after the first
		// (RFC 6026 Accepted state); sipgo drops them without a hook.
		stx.OnRetransmission(func(res *sip.Response) {
			if wellFormed(res) {
				c.enqueue(event{kind: evResponse, tx: tx, res: res})
			}
		})
	}
	h.set(stx)
	if !t.g.goOwned(func(context.Context) { pump(c, tx, stx) }) {
		stx.Terminate()
	}
}

// coreTx lets the call end a sipgo transaction that may not exist yet.
type coreTx struct {
	mu      sync.Mutex
	stx     sip.ClientTransaction
	stopped bool
}

func (h *coreTx) stop() {
	h.mu.Lock()
	h.stopped = true
	stx := h.stx
	h.mu.Unlock()
	if stx != nil {
		stx.Terminate()
	}
}

func (h *coreTx) set(stx sip.ClientTransaction) {
	h.mu.Lock()
	h.stx = stx
	stopped := h.stopped
	h.mu.Unlock()
	if stopped {
		stx.Terminate()
	}
}

// wellFormed: a response the call can read. sipgo matches responses by Via
// branch and CSeq alone.
func wellFormed(res *sip.Response) bool {
	return res.To() != nil && res.From() != nil && res.CallID() != nil && res.CSeq() != nil
}

// pump hands a sipgo client transaction's responses to the call until its
// final one — also after the call ended, since sipgo blocks its transaction
// until each response is taken. After the final response sipgo passes
// nothing more up (a retransmitted 2xx goes to the OnRetransmission hook),
// so the pump ends there. A transaction that ends with no final response
// is a failure.
func pump(c *Call, tx *clientTx, stx sip.ClientTransaction) {
	final, heard := false, false
	take := func(res *sip.Response) {
		heard = true
		if !wellFormed(res) {
			return
		}
		final = final || res.StatusCode >= 200
		c.enqueue(event{kind: evResponse, tx: tx, res: res})
	}
	for !final {
		select {
		case res := <-stx.Responses():
			take(res)
		case <-stx.Done():
			// A final response may still sit in the channel.
			select {
			case res := <-stx.Responses():
				take(res)
			default:
			}
			if !final {
				// No final response: a timeout (Timer B/F, or Timer M
				// after a 2xx we could not use), unless the transport failed.
				err := stx.Err()
				if !errors.Is(err, sip.ErrTransactionTransport) {
					err = errTimeout
				}
				if !heard && tx.leg == SideCore && tagOf(tx.req.To().Params) == "" && tx.req.Method != sip.CANCEL {
					c.g.upstreamSilent(tx.req, err) // nothing at all came back
				}
				c.enqueue(event{kind: evTxFailed, tx: tx, err: err})
			}
			return
		}
	}
}

func (t *coreTransport) ack(req *sip.Request) error {
	if req.MessageData.Destination() == "" { // a resent ACK keeps its first routing
		t.g.core.prepareInDialog(req)
		req.PrependHeader(t.g.core.via(req))
	}
	out := req.Clone()
	t.push(func() {
		if err := t.g.core.client.WriteRequest(out); err != nil {
			t.g.log.Debug("ack to core", zap.String("sip_call_id", callIDOf(out)), zap.Error(err))
		}
	})
	return nil
}

// ackFailure: sipgo's INVITE client transaction acknowledges it.
func (t *coreTransport) ackFailure(*sip.Request, *sip.Response) {}

func (t *coreTransport) resend(res *sip.Response) error { return t.g.core.resend(res) }

func (t *coreTransport) retransmits2xx() bool { return true }

func (t *coreTransport) prepareInDialog(req *sip.Request) { t.g.core.prepareInDialog(req) }

// coreServerTx wraps a sipgo server transaction for the call that answers it.
func (g *Gateway) coreServerTx(req *sip.Request, tx sip.ServerTransaction) *serverTx {
	return &serverTx{leg: SideCore, req: req,
		respond: tx.Respond,
		// sipgo keeps a finished transaction for its timers (absorbing
		// retransmissions) and frees it then.
		release: func() {
			if stx, ok := tx.(*sip.ServerTx); ok {
				stx.TerminateGracefully()
			}
		}}
}
