package b2bua

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/presence"
	"github.com/imsgate/imsgate/sipws"
)

// RequestHandler takes the requests that are not part of a call: MESSAGE,
// SUBSCRIBE, NOTIFY, PUBLISH and OPTIONS outside a dialog, and those
// methods in a dialog that is no call's (a subscription's; it answers 481
// for one it does not know either) (presence.Relay). It must not block;
// reply may be called later, once with a final response, from any goroutine.
type RequestHandler interface {
	FromWeb(flow string, req *sip.Request, reply func(*sip.Response))
	FromCore(req *sip.Request, reply func(*sip.Response))
	// Close ends what the handler has in flight, at gateway shutdown.
	Close()
}

// allowed is the Allow header of the gateway's dialogs.
const allowed = presence.Allow

// nonCallMethods go to the RequestHandler outside a dialog, and in a
// dialog that is no call's.
func nonCallMethod(m sip.RequestMethod) bool {
	switch m {
	case sip.OPTIONS, sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.PUBLISH:
		return true
	}
	return false
}

// extensions are the option tags a side may Require of us (RFC 3261
// 8.2.2.3): session timers either side; reliable provisional responses
// from the core, which the gateway itself sends (RFC 3262).
var extensions = map[Side]map[string]bool{
	SideWeb:  {"timer": true, "replaces": true},
	SideCore: {"timer": true, "100rel": true, "replaces": true},
}

// unsupportedRequire returns the option tags of a Require header the
// gateway does not support from that side.
func unsupportedRequire(req *sip.Request, from Side) []string {
	var out []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if tag = strings.TrimSpace(tag); tag != "" && !extensions[from][strings.ToLower(tag)] {
				out = append(out, tag)
			}
		}
	}
	return out
}

// precheck answers what no leg should see: a request lacking the headers
// every request has (400), one whose CSeq method differs (400), one that
// requires an extension we lack (420). It returns the response, or nil.
func precheck(req *sip.Request, from Side) *sip.Response {
	if req.To() == nil || req.From() == nil || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil {
		return response(req, 400, "Bad Request", "")
	}
	if cseqMethod(req) != req.Method {
		return response(req, 400, "Bad Request", "")
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		if tags := unsupportedRequire(req, from); len(tags) > 0 {
			res := response(req, 420, "Bad Extension", "")
			res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(tags, ", ")))
			return res
		}
	}
	return nil
}

// onCoreRequest takes every request from the core with its transaction; it
// hands it to a call or to the handler of requests outside a call, or answers it,
// and returns at once.
func (g *Gateway) onCoreRequest(req *sip.Request, stx *sip.ServerTx) {
	if stx == nil {
		return // sipgo passes every request with its transaction
	}
	in := g.coreServerTx(req, stx)
	if res := precheck(req, SideCore); res != nil {
		if !req.IsAck() {
			_ = in.reply(res)
		}
		in.releaseNow()
		return
	}
	inDialog := tagOf(req.To().Params) != ""
	switch {
	case req.Method == sip.INVITE && !inDialog:
		g.startCoreCall(in, stx)
	case inDialog:
		c := g.callByCore(coreKey(callIDOf(req), tagOf(req.To().Params)))
		if c == nil && nonCallMethod(req.Method) {
			g.nonCall.FromCore(req, func(res *sip.Response) { _ = in.reply(res) })
			return
		}
		if c == nil || !c.enqueue(event{kind: evRequest, in: in}) {
			if !req.IsAck() {
				_ = in.reply(response(req, 481, "Call/Transaction Does Not Exist", ""))
			}
			in.releaseNow()
		}
	case req.Method == sip.CANCEL:
		// A CANCEL that matched no INVITE transaction (RFC 3261 9.2).
		_ = in.reply(response(req, 481, "Call/Transaction Does Not Exist", ""))
	case req.Method == sip.ACK:
		in.releaseNow() // an ACK for nothing we know
	case nonCallMethod(req.Method):
		g.nonCall.FromCore(req, func(res *sip.Response) { _ = in.reply(res) })
	default:
		_ = in.reply(response(req, 501, "Not Implemented", ""))
	}
}

// releaseNow lets the transaction go when nothing will answer it.
func (t *serverTx) releaseNow() {
	if t.release != nil {
		t.release()
	}
}

// HandleMessage takes one SIP message from a browser's WebSocket
// (sipws.Handler), in order for its flow; it never blocks for long.
func (g *Gateway) HandleMessage(c *sipws.Conn, msg sip.Message) {
	g.handleWeb(c, msg)
}

func (g *Gateway) handleWeb(f webFlow, msg sip.Message) {
	switch m := msg.(type) {
	case *sip.Response:
		key := branchOf(m) + string(cseqMethod(m))
		e, ok := g.webTxs.get(key)
		if !ok || e.flow != f.Flow() {
			g.log.Debug("response matches no transaction", zap.String("flow", f.Flow()), zap.Int("status", m.StatusCode))
			return
		}
		if e.deliver != nil {
			e.deliver(m)
			return
		}
		if !e.call.enqueue(event{kind: evResponse, tx: e.tx, res: m}) {
			g.webTxs.remove(key)
		}
	case *sip.Request:
		g.handleWebRequest(f, m)
	}
}

func (g *Gateway) handleWebRequest(f webFlow, req *sip.Request) {
	log := g.log.With(zap.String("flow", f.Flow()), zap.String("method", string(req.Method)), zap.String("sip_call_id", callIDOf(req)))
	log.Debug("web request", zap.String("request", req.StartLine()))
	in := webServerTx(f, req)
	if res := precheck(req, SideWeb); res != nil {
		if !req.IsAck() {
			_ = in.reply(res)
		}
		return
	}
	inDialog := tagOf(req.To().Params) != ""
	switch {
	case req.Method == sip.REGISTER:
		g.reg.enqueue(g, f, req, log)
	case req.Method == sip.INVITE && !inDialog:
		g.startWebCall(f, in, log)
	case req.Method == sip.CANCEL || req.Method == sip.ACK || inDialog:
		c := g.callByWeb(f.Flow(), callIDOf(req))
		if c == nil && inDialog && nonCallMethod(req.Method) {
			g.nonCall.FromWeb(f.Flow(), req, func(res *sip.Response) { _ = in.reply(res) })
			return
		}
		if c == nil || !c.enqueue(event{kind: evRequest, in: in}) {
			if !req.IsAck() {
				_ = in.reply(response(req, 481, "Call/Transaction Does Not Exist", ""))
			}
		}
	case nonCallMethod(req.Method):
		if speaksAs(req.Method) && !g.admitted(f, in, log) {
			return
		}
		g.nonCall.FromWeb(f.Flow(), req, func(res *sip.Response) { _ = in.reply(res) })
	default:
		_ = in.reply(response(req, 501, "Not Implemented", ""))
	}
}

func cseqMethod(msg sip.Message) sip.RequestMethod {
	_, m := cseqOf(msg)
	return m
}
