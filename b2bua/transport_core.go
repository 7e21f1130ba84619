package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
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
	port      int    // advertised port
	transport string // "udp" or "tcp" toward the upstream
	proxy     configs.Proxy
	// udpLocal is the bound UDP listen address: requests leave from it so the
	// core sees one address for the gateway (symmetric signalling).
	udpLocal sip.Addr
}

func newCoreSide(cfg configs.Config, ua *sipgo.UserAgent, listenAddr net.Addr, slogger *slog.Logger) (*coreSide, error) {
	proxy, err := configs.ParseProxy(cfg.Upstream.Proxy)
	if err != nil {
		return nil, fmt.Errorf("upstream.proxy: %w", err)
	}
	tp := proxy.Transport
	if tp == "" {
		tp = cfg.SIP.Transport
	}
	host, port, err := advertised(cfg.SIP.Advertise, listenAddr)
	if err != nil {
		return nil, err
	}
	// rport on our Via (RFC 3581): a core behind NAT answers where we sent from.
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(port),
		sipgo.WithClientNAT(), sipgo.WithClientLogger(slogger))
	if err != nil {
		return nil, fmt.Errorf("sip client: %w", err)
	}
	bound := listenAddr.(*net.UDPAddr)
	return &coreSide{ua: ua, client: client, host: host, port: port, transport: tp, proxy: proxy,
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
		Address: sip.Uri{Scheme: "sip", User: user, Host: c.host, Port: c.port,
			UriParams: sip.HeaderParams{{K: "transport", V: c.transport}}},
		Params: sip.NewParams(),
	}
}

// prepareOutOfDialog sends an out-of-dialog request to the upstream proxy
// (the outbound proxy), whatever its Request-URI says.
func (c *coreSide) prepareOutOfDialog(req *sip.Request) {
	c.common(req)
	c.route(req, c.proxy.Host, c.proxy.Port, c.transport)
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
		req.RemoveHeader("Route")
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
	res, err := c.client.Do(ctx, req)
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

// respond sends a response to the core. One too large for UDP goes over
// TCP to the address it would have gone to (most proxies take both on one
// port); if that fails too, the caller hears of it and fails cleanly.
func (c *coreSide) respond(tx sip.ServerTransaction, res *sip.Response) error {
	err := tx.Respond(res)
	if !errors.Is(err, sip.ErrUDPMTUCongestion) {
		return err
	}
	return c.writeOverTCP(res)
}

// resend passes a response to the transport again (2xx retransmission).
func (c *coreSide) resend(res *sip.Response) error {
	err := c.ua.TransportLayer().WriteMsg(res)
	if errors.Is(err, sip.ErrUDPMTUCongestion) {
		return c.writeOverTCP(res)
	}
	return err
}

func (c *coreSide) writeOverTCP(res *sip.Response) error {
	probe := sip.NewRequest(sip.OPTIONS, sip.Uri{Host: "invalid"})
	probe.SetTransport("TCP")
	probe.SetDestination(res.Destination())
	ctx, cancel := context.WithTimeout(context.Background(), sip.T1*4)
	defer cancel()
	conn, err := c.ua.TransportLayer().ClientRequestConnection(ctx, probe)
	if err != nil {
		return fmt.Errorf("response too large for udp, tcp to %s: %w", res.Destination(), err)
	}
	defer conn.TryClose()
	return conn.WriteMsg(res)
}

// coreTransport carries a call's core leg on sipgo.
type coreTransport struct{ g *Gateway }

func (t *coreTransport) send(c *Call, tx *clientTx) error {
	core := t.g.core
	req := tx.req
	switch {
	case req.Method == sip.CANCEL:
		// RFC 3261 9.1: the CANCEL goes where its INVITE went.
		core.common(req)
	case tagOf(req.To().Params) != "":
		core.prepareInDialog(req)
	default:
		core.prepareOutOfDialog(req)
	}
	ctx, cancel := context.WithCancel(t.g.ctx)
	stx, err := core.client.TransactionRequest(ctx, req)
	if err != nil {
		cancel()
		return statusErr(503, "Service Unavailable", fmt.Errorf("%s to core: %w", req.Method, err))
	}
	if req.IsInvite() {
		// Retransmitted 2xx, and 2xx of other forks, after the first
		// (RFC 6026 Accepted state); sipgo drops them without a hook.
		stx.OnRetransmission(func(res *sip.Response) {
			c.enqueue(event{kind: evResponse, tx: tx, res: res, retransmission: true})
		})
	}
	tx.stop = func() { stx.Terminate(); cancel() }
	if !t.g.goOwned(func(context.Context) { pump(c, tx, stx) }) {
		tx.stop()
		return errDraining
	}
	return nil
}

// pump hands a sipgo client transaction's responses to the call until it
// ends; a transaction that ends with no final response is a failure.
func pump(c *Call, tx *clientTx, stx sip.ClientTransaction) {
	final := false
	for {
		select {
		case res := <-stx.Responses():
			final = final || res.StatusCode >= 200
			c.enqueue(event{kind: evResponse, tx: tx, res: res})
		case <-stx.Done():
			// A final response may still sit in the channel.
			select {
			case res := <-stx.Responses():
				final = final || res.StatusCode >= 200
				c.enqueue(event{kind: evResponse, tx: tx, res: res})
			default:
			}
			if !final {
				err := stx.Err()
				if errors.Is(err, sip.ErrTransactionTimeout) {
					err = errTimeout
				}
				c.enqueue(event{kind: evTxFailed, tx: tx, err: err})
			}
			return
		case <-c.done:
			return
		}
	}
}

func (t *coreTransport) ack(req *sip.Request) error {
	if req.MessageData.Destination() == "" { // a resent ACK keeps its first routing
		t.g.core.prepareInDialog(req)
	}
	return t.g.core.client.WriteRequest(req)
}

// ackFailure: sipgo's INVITE client transaction acknowledges it.
func (t *coreTransport) ackFailure(*sip.Request, *sip.Response) {}

func (t *coreTransport) resend(res *sip.Response) error { return t.g.core.resend(res) }

func (t *coreTransport) retransmits2xx() bool { return true }

func (t *coreTransport) prepareInDialog(req *sip.Request) { t.g.core.prepareInDialog(req) }

// coreServerTx wraps a sipgo server transaction for the call that answers it.
func (g *Gateway) coreServerTx(req *sip.Request, tx sip.ServerTransaction) *serverTx {
	return &serverTx{leg: SideCore, req: req,
		respond: func(res *sip.Response) error { return g.core.respond(tx, res) },
		// sipgo keeps a finished transaction for its timers (absorbing
		// retransmissions) and frees it then.
		release: func() {
			if stx, ok := tx.(*sip.ServerTx); ok {
				stx.TerminateGracefully()
			}
		}}
}
