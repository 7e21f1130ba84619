package b2bua

import (
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Transfer (RFC 3515 REFER, RFC 3891 Replaces, RFC 5589). A REFER in a
// dialog is relayed to the other leg like any in-dialog request, and its
// NOTIFYs come back the same way. What must change is a dialog named by a
// Replaces (in a Refer-To, or on an INVITE): each side knows only its own
// leg's Call-ID and tags, so a Replaces that names one of our calls is
// rewritten to that call's other leg.

// dialogIDs are a call's two dialogs, published once both are confirmed
// so that another call's REFER or INVITE can name them.
type dialogIDs struct {
	web, core dialogID
	// webTarget and webRemote reach the browser: an INVITE that replaces
	// the call goes there.
	webTarget, webRemote sip.Uri
	flow                 string
}

// dialogID is one leg's dialog as the gateway holds it.
type dialogID struct {
	callID, localTag, remoteTag string
}

// publishIDs records the call's dialogs once both legs are confirmed.
func (c *Call) publishIDs() {
	c.g.mu.Lock()
	flow := c.flow
	c.g.mu.Unlock()
	c.ids.Store(&dialogIDs{
		web:       dialogID{c.web.dlg.callID, c.web.dlg.localTag, c.web.dlg.remoteTag},
		core:      dialogID{c.core.dlg.callID, c.core.dlg.localTag, c.core.dlg.remoteTag},
		webTarget: *c.web.dlg.remoteTarget.Clone(),
		webRemote: *c.web.dlg.remote.Clone(),
		flow:      flow,
	})
}

// replaces is a Replaces value: call-id;to-tag=…;from-tag=… (RFC 3891 §6.1).
// The tags are as the target of the INVITE sees its dialog: to-tag its own.
type replaces struct {
	callID, toTag, fromTag string
	earlyOnly              bool
}

func parseReplaces(v string) (replaces, bool) {
	parts := strings.Split(strings.TrimSpace(v), ";")
	r := replaces{callID: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(k) {
		case "to-tag":
			r.toTag = val
		case "from-tag":
			r.fromTag = val
		case "early-only":
			r.earlyOnly = true
		}
	}
	return r, r.callID != "" && r.toTag != "" && r.fromTag != ""
}

func (r replaces) String() string {
	s := r.callID + ";to-tag=" + r.toTag + ";from-tag=" + r.fromTag
	if r.earlyOnly {
		s += ";early-only"
	}
	return s
}

// replacedCall finds the call a Replaces from side `from` names: one of
// its dialogs on that side, whichever way round the tags are given.
func (g *Gateway) replacedCall(from Side, flow string, r replaces) (*Call, *dialogIDs) {
	var c *Call
	if from == SideWeb {
		c = g.callByWeb(flow, r.callID)
	} else if c = g.callByCore(coreKey(r.callID, r.toTag)); c == nil {
		c = g.callByCore(coreKey(r.callID, r.fromTag))
	}
	if c == nil {
		return nil, nil
	}
	ids := c.ids.Load()
	if ids == nil {
		return nil, nil
	}
	d := ids.web
	if from == SideCore {
		d = ids.core
	}
	tags := map[string]bool{d.localTag: true, d.remoteTag: true}
	if !tags[r.toTag] || !tags[r.fromTag] {
		return nil, nil
	}
	return c, ids
}

// translateReplaces rewrites a Replaces from side `from` that names one of
// our calls so that it names the call's dialog on the other side, as the
// target there sees it: to-tag the far party's, from-tag ours. A Replaces
// naming no call of ours is left as it is.
func (g *Gateway) translateReplaces(from Side, flow, v string) string {
	r, ok := parseReplaces(v)
	if !ok {
		return v
	}
	_, ids := g.replacedCall(from, flow, r)
	if ids == nil {
		return v
	}
	d := ids.core
	if from == SideCore {
		d = ids.web
	}
	r.callID, r.toTag, r.fromTag = d.callID, d.remoteTag, d.localTag
	return r.String()
}

// translateReferTo rewrites the Replaces in a Refer-To URI's headers
// (`<sip:carol@x?Replaces=…>`, escaped, RFC 3515 §2.1).
func (g *Gateway) translateReferTo(from Side, flow, v string) string {
	q := strings.IndexByte(v, '?')
	if q < 0 {
		return v
	}
	end := strings.IndexByte(v[q:], '>')
	if end < 0 {
		end = len(v) - q
	}
	headers := strings.Split(v[q+1:q+end], "&")
	for i, h := range headers {
		name, val, ok := strings.Cut(h, "=")
		if !ok || !strings.EqualFold(name, "Replaces") {
			continue
		}
		raw, err := url.QueryUnescape(val)
		if err != nil {
			continue
		}
		headers[i] = name + "=" + url.QueryEscape(g.translateReplaces(from, flow, raw))
	}
	return v[:q+1] + strings.Join(headers, "&") + v[q+end:]
}

// rewriteReplaces fixes the Replaces and Refer-To of a request relayed
// from leg x, whose browser flow is flow.
func (g *Gateway) rewriteReplaces(from Side, flow string, out *sip.Request) {
	if h := out.GetHeader("Replaces"); h != nil {
		v := g.translateReplaces(from, flow, h.Value())
		out.RemoveHeader("Replaces")
		out.AppendHeader(sip.NewHeader("Replaces", v))
	}
	if h := out.GetHeader("Refer-To"); h != nil {
		v := g.translateReferTo(from, flow, h.Value())
		out.RemoveHeader("Refer-To")
		out.AppendHeader(sip.NewHeader("Refer-To", v))
	}
}
