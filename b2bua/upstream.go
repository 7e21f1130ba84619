package b2bua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/siplocate"
)

// upstream is one next hop for requests outside a dialog: upstream.proxy
// or one of upstream.fallback.
type upstream struct {
	uri   string // as configured
	proxy configs.Proxy
	// up: it answered the last OPTIONS (anything but 503), or none was
	// sent yet.
	up atomic.Bool
}

// upstreams are the next hops in order: upstream.proxy, or the servers
// RFC 3263 finds for upstream.domain, then upstream.fallback. Requests
// outside a dialog go to the first that answers the keepalive; with none
// answering, to the first (there is nothing better to try).
type upstreams struct {
	set atomic.Pointer[[]*upstream]
	// fallback are upstream.fallback, after whatever was resolved.
	fallback []*upstream
	// resolver finds upstream.domain's servers; nil with upstream.proxy.
	resolver *siplocate.Resolver
	domain   string
	// last is the upstream in use at the last look, for the log line of a
	// switch.
	last atomic.Pointer[upstream]
	// watched: the keepalive runs, so an upstream marked down comes back.
	watched bool
}

func newUpstream(uri string) (*upstream, error) {
	p, err := configs.ParseProxy(uri)
	if err != nil {
		return nil, err
	}
	up := &upstream{uri: uri, proxy: p}
	up.up.Store(true)
	return up, nil
}

func newUpstreams(cfg configs.Upstream) (*upstreams, error) {
	u := &upstreams{domain: cfg.Domain, watched: cfg.KeepaliveInterval > 0}
	for i, uri := range cfg.Fallback {
		up, err := newUpstream(uri)
		if err != nil {
			return nil, fmt.Errorf("upstream.fallback[%d]: %w", i, err)
		}
		u.fallback = append(u.fallback, up)
	}
	list := []*upstream{}
	if cfg.Proxy != "" {
		up, err := newUpstream(cfg.Proxy)
		if err != nil {
			return nil, fmt.Errorf("upstream.proxy: %w", err)
		}
		list = append(list, up)
	} else {
		server := cfg.DNSServer
		if server == "" {
			var err error
			if server, err = siplocate.SystemServer(); err != nil {
				return nil, fmt.Errorf("upstream.dns_server: %w", err)
			}
		}
		u.resolver = &siplocate.Resolver{Server: server}
	}
	list = append(list, u.fallback...)
	u.set.Store(&list)
	return u, nil
}

// list is the upstreams in order now.
func (u *upstreams) list() []*upstream { return *u.set.Load() }

// hostport is the upstream's address as the transports write it ("host:port",
// "[v6]:port").
func (up *upstream) hostport() string {
	return net.JoinHostPort(strings.Trim(up.proxy.Host, "[]"), strconv.Itoa(up.proxy.Port))
}

// pick is the upstream requests outside a dialog go to now; nil while
// there is none (RFC 3263 has found nothing yet and there is no fallback).
func (u *upstreams) pick() *upstream {
	list := u.list()
	for _, up := range list {
		if up.up.Load() {
			return up
		}
	}
	if len(list) == 0 {
		return nil
	}
	return list[0]
}

// resolved puts targets before the fallbacks; an upstream found again
// keeps its health.
func (u *upstreams) resolved(targets []siplocate.Target) {
	old := map[string]*upstream{}
	for _, up := range u.list() {
		old[up.uri] = up
	}
	list := make([]*upstream, 0, len(targets)+len(u.fallback))
	for _, t := range targets {
		uri := t.URI()
		if up, ok := old[uri]; ok {
			list = append(list, up)
			continue
		}
		up := &upstream{uri: uri, proxy: configs.Proxy{Host: t.Addr.Addr().String(), Port: int(t.Addr.Port()), Transport: t.Transport}}
		up.up.Store(true)
		list = append(list, up)
	}
	list = append(list, u.fallback...)
	u.set.Store(&list)
}

// noAnswer marks the upstream at dest down when a request outside a
// dialog to it got no answer at all (its transaction timed out, or the
// transport failed): the next requests go to the next upstream at once,
// not after the keepalive's next round, which takes it back when it
// answers. Without the keepalive nothing would, so nothing is marked.
func (u *upstreams) noAnswer(dest string) *upstream {
	if !u.watched {
		return nil
	}
	for _, up := range u.list() {
		if up.hostport() == dest && up.up.Swap(false) {
			return up
		}
	}
	return nil
}

// upstreamSilent is noAnswer and its log line.
func (g *Gateway) upstreamSilent(req *sip.Request, err error) {
	if up := g.core.ups.noAnswer(req.Destination()); up != nil {
		g.log.Warn("upstream did not answer a request: passed over until it answers the keepalive",
			zap.String("upstream", up.uri), zap.String("method", string(req.Method)), zap.Error(err))
		g.noteSwitch()
	}
}

// locate finds upstream.domain's servers by RFC 3263 now and again, when
// the records' TTL runs out (10 s after a failure).
func (g *Gateway) locate(ctx context.Context) {
	ups := g.core.ups
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		targets, ttl, err := ups.resolver.Locate(rctx, ups.domain, g.core.transport)
		cancel()
		wait := ttl
		if err != nil {
			wait = 10 * time.Second
			if ctx.Err() == nil {
				g.log.Error("upstream.domain: no SIP servers found by RFC 3263", zap.String("domain", ups.domain),
					zap.String("transport", g.core.transport), zap.Error(err))
			}
		} else {
			uris := make([]string, 0, len(targets))
			for _, t := range targets {
				uris = append(uris, t.URI()+" ("+t.Name+")")
			}
			g.log.Info("upstream servers found by RFC 3263", zap.String("domain", ups.domain), zap.Strings("servers", uris),
				zap.Duration("ttl", ttl))
			ups.resolved(targets)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// UpstreamHealth is one upstream as the keepalive sees it.
type UpstreamHealth struct {
	URI string
	// Up: it answered the last OPTIONS (anything but 503), or the
	// keepalive is off.
	Up bool
	// Current: requests outside a dialog go to it.
	Current bool
}

// Upstreams is upstream.proxy and upstream.fallback, in order, with their
// health.
func (g *Gateway) Upstreams() []UpstreamHealth {
	cur := g.core.ups.pick()
	list := g.core.ups.list()
	out := make([]UpstreamHealth, 0, len(list))
	for _, up := range list {
		out = append(out, UpstreamHealth{URI: up.uri, Up: up.up.Load(), Current: up == cur})
	}
	return out
}

// errNoUpstream is /readyz's reason while no upstream answers.
var errNoUpstream = errors.New("no upstream answers the OPTIONS keepalive")

// errNoServers is /readyz's reason while RFC 3263 has found no server
// and there is no fallback.
var errNoServers = errors.New("no upstream server found for upstream.domain")

// UpstreamReady is nil while some upstream answers.
func (g *Gateway) UpstreamReady() error {
	list := g.core.ups.list()
	if len(list) == 0 {
		return errNoServers
	}
	for _, up := range list {
		if up.up.Load() {
			return nil
		}
	}
	return errNoUpstream
}

// keepalive sends every upstream an OPTIONS each interval and keeps their
// health: one that does not answer within the wait, or answers 503, is
// passed over until it answers again.
func (g *Gateway) keepalive(ctx context.Context, interval time.Duration) {
	wait := min(interval, 5*time.Second)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, up := range g.core.ups.list() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g.probe(ctx, up, wait)
			}()
		}
		wg.Wait()
		g.noteSwitch()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe sends up one OPTIONS and records what came back.
func (g *Gateway) probe(ctx context.Context, up *upstream, wait time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	c := g.core
	target := sip.Uri{Scheme: "sip", Host: up.proxy.Host, Port: up.proxy.Port}
	req := sip.NewRequest(sip.OPTIONS, target)
	from := sip.Uri{Scheme: "sip", User: "imsgate", Host: g.cfg.Upstream.Domain}
	if from.Host == "" {
		from.Host = c.host
	}
	req.AppendHeader(&sip.FromHeader{Address: from, Params: sip.HeaderParams{{K: "tag", V: token(10)}}})
	req.AppendHeader(&sip.ToHeader{Address: target})
	callID := sip.CallIDHeader(token(24))
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.OPTIONS})
	req.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	c.common(req)
	tp := up.proxy.Transport
	if tp == "" {
		tp = c.transport
	}
	c.route(req, up.proxy.Host, up.proxy.Port, tp)
	res, err := c.do(ctx, req)
	ok := err == nil && res.StatusCode != 503
	if ctx.Err() != nil && g.ctx.Err() != nil {
		return // shutting down: no verdict
	}
	was := up.up.Swap(ok)
	switch {
	case was && !ok:
		fields := []zap.Field{zap.String("upstream", up.uri)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		} else {
			fields = append(fields, zap.Int("status", res.StatusCode))
		}
		g.log.Warn("upstream not answering the OPTIONS keepalive", fields...)
	case !was && ok:
		g.log.Info("upstream answers again", zap.String("upstream", up.uri), zap.Int("status", res.StatusCode))
	}
}

// noteSwitch logs a change of the upstream in use.
func (g *Gateway) noteSwitch() {
	cur := g.core.ups.pick()
	if prev := g.core.ups.last.Swap(cur); prev != cur && prev != nil && cur != nil {
		g.log.Warn("upstream switched: requests outside a dialog now go here", zap.String("upstream", cur.uri),
			zap.String("before", prev.uri))
	}
}
