package b2bua

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
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

// upstreams are upstream.proxy and upstream.fallback in order. Requests
// outside a dialog go to the first that answers the keepalive; with none
// answering, to the proxy (there is nothing better to try).
type upstreams struct {
	list []*upstream
	// current is the index in use, for the log line of a switch.
	current atomic.Int32
}

func newUpstreams(cfg configs.Upstream) (*upstreams, error) {
	u := &upstreams{}
	for i, uri := range append([]string{cfg.Proxy}, cfg.Fallback...) {
		p, err := configs.ParseProxy(uri)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("upstream.proxy: %w", err)
			}
			return nil, fmt.Errorf("upstream.fallback[%d]: %w", i-1, err)
		}
		up := &upstream{uri: uri, proxy: p}
		up.up.Store(true)
		u.list = append(u.list, up)
	}
	return u, nil
}

// pick is the upstream requests outside a dialog go to now.
func (u *upstreams) pick() *upstream {
	for _, up := range u.list {
		if up.up.Load() {
			return up
		}
	}
	return u.list[0]
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
	out := make([]UpstreamHealth, 0, len(g.core.ups.list))
	for _, up := range g.core.ups.list {
		out = append(out, UpstreamHealth{URI: up.uri, Up: up.up.Load(), Current: up == cur})
	}
	return out
}

// errNoUpstream is /readyz's reason while no upstream answers.
var errNoUpstream = errors.New("no upstream answers the OPTIONS keepalive")

// UpstreamReady is nil while some upstream answers.
func (g *Gateway) UpstreamReady() error {
	for _, up := range g.core.ups.list {
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
		for _, up := range g.core.ups.list {
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
	ups := g.core.ups
	cur := ups.pick()
	for i, up := range ups.list {
		if up != cur {
			continue
		}
		if prev := ups.current.Swap(int32(i)); prev != int32(i) { //nolint:gosec // a short list
			g.log.Warn("upstream switched: requests outside a dialog now go here", zap.String("upstream", up.uri),
				zap.String("before", ups.list[prev].uri))
		}
	}
}
