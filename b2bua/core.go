package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
)

// coreSide is the plain SIP side toward the IMS core or PBX, on sipgo.
type coreSide struct {
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	host      string // advertised host in Contact and Via
	port      int    // advertised port
	transport string // "udp" or "tcp" toward the upstream
	proxy     configs.Proxy
	domain    string
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
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		return nil, fmt.Errorf("sip server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientLogger(slogger))
	if err != nil {
		return nil, fmt.Errorf("sip client: %w", err)
	}
	bound := listenAddr.(*net.UDPAddr)
	return &coreSide{ua: ua, srv: srv, client: client, host: host, port: port, transport: tp, proxy: proxy,
		domain: cfg.Upstream.Domain, udpLocal: sip.Addr{IP: bound.IP, Port: bound.Port}}, nil
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

// prepareOutOfDialog sends an out-of-dialog request to the upstream proxy,
// whatever its Request-URI says (the proxy is the next hop, not a Route).
func (c *coreSide) prepareOutOfDialog(req *sip.Request) {
	req.SetTransport(strings.ToUpper(c.transport))
	req.SetDestination(c.proxy.Addr())
	c.common(req)
}

// prepareInDialog sends an in-dialog request along its Route set, or to the
// remote target, over the upstream transport.
func (c *coreSide) prepareInDialog(req *sip.Request) {
	req.SetTransport(strings.ToUpper(c.transport))
	if req.Route() == nil {
		// No Record-Route from the core: its Contact may be unroutable from
		// here (a P-CSCF behind a load balancer); the proxy is the next hop.
		req.SetDestination(c.proxy.Addr())
	}
	c.common(req)
}

func (c *coreSide) common(req *sip.Request) {
	if c.transport == "udp" {
		req.Laddr = c.udpLocal
	}
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

// request sends an out-of-dialog non-INVITE request and waits for its final response.
func (c *coreSide) request(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	c.prepareOutOfDialog(req)
	return c.do(ctx, req)
}

func (c *coreSide) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	res, err := c.client.Do(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s to core: %w", req.Method, errTimeout)
		}
		return nil, statusErr(503, "Service Unavailable", fmt.Errorf("%s to core: %w", req.Method, err))
	}
	return res, nil
}
