package b2bua

import (
	"errors"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// DTMF across the legs. A digit arrives as INFO (either leg), as RFC 4733
// (either leg; the media session reads it once per key press) or as tones
// in the core's G.711 audio (dtmf.detect_inband), and leaves in the form
// the other side takes: toward the core per dtmf.to_core, toward the
// browser as INFO application/dtmf-relay (what JsSIP and SIP.js report)
// unless dtmf.to_web is passthrough and the core's events go as they came.
// Every digit is one log line and counted (Gateway.DTMFCounts).

// Forms a digit travels in.
const (
	formInfo    = "info"
	formRFC4733 = "rfc4733"
	formInband  = "inband"
)

// toCore is the form the core gets a digit in: auto and rfc4733 are RFC
// 4733 when the core took telephone-event at its audio's clock, else INFO
// (a core that negotiated no events cannot be sent them).
func (c *Call) toCore() string {
	switch mode := c.g.cfg.DTMF.ToCore; mode {
	case "auto", formRFC4733:
		if c.media.CoreTakesEvents() {
			return formRFC4733
		}
		return formInfo
	default:
		return mode // info, both, inband
	}
}

// relaysWebEvents: the media session relays the browser's RFC 4733 to the
// core as it came (in the core's payload type) for these modes.
func relaysWebEvents(mode string) bool { return mode != formInfo && mode != formInband }

// onDigit takes a digit the media session read.
func (c *Call) onDigit(ev mediabridge.Event) {
	from := ev.Form.String()
	if ev.From == mediabridge.LegWeb {
		c.webDigit(ev.Digit, from, nil)
		return
	}
	if c.g.cfg.DTMF.ToWeb == "passthrough" && ev.Form == mediabridge.FormRFC4733 {
		c.logDigit(ev.Digit, SideCore, from, formRFC4733) // relayed as it came
		return
	}
	c.logDigit(ev.Digit, SideCore, from, formInfo)
	c.sendInfo(c.web, ev.Digit)
}

// onDTMFInfo takes an INFO with a DTMF body from leg x; false when the
// body is not DTMF (the INFO is relayed as any other).
func (c *Call) onDTMFInfo(x *leg, in *serverTx) bool {
	ct := ""
	if h := in.req.GetHeader("Content-Type"); h != nil {
		ct = h.Value()
	}
	d, err := mediabridge.ParseDTMFInfo(ct, in.req.Body())
	switch {
	case errors.Is(err, mediabridge.ErrNotDTMF):
		return false
	case err != nil:
		_ = in.reply(response(in.req, 400, "Bad Request", x.dlg.localTag))
		return true
	}
	if x.side == SideCore {
		// Relayed in the form the browser reports, its answer returned.
		c.logDigit(d, SideCore, formInfo, formInfo)
		c.relayAs(x, c.web, in, mediabridge.DTMFRelayType, d.InfoBody())
		return true
	}
	c.webDigit(d, formInfo, in)
	return true
}

// webDigit sends the browser's digit on to the core in the form
// dtmf.to_core says. in is the browser's INFO (nil for RFC 4733): relayed
// when the core gets INFO, else answered here.
func (c *Call) webDigit(d mediabridge.DTMFDigit, from string, in *serverTx) {
	mode := c.toCore()
	inMedia := false // the media path carries the digit to the core
	switch mode {
	case formRFC4733, "both":
		if from == formRFC4733 {
			inMedia = c.media.CoreTakesEvents()
		} else {
			inMedia = c.trySend(c.media.SendDigit(d))
		}
	case formInband:
		inMedia = c.trySend(c.media.PlayDigit(d))
	}
	switch {
	case inMedia && mode != "both":
		c.logDigit(d, SideWeb, from, mode)
		if in != nil {
			_ = in.reply(response(in.req, 200, "OK", c.web.dlg.localTag))
		}
		return
	case inMedia:
		c.logDigit(d, SideWeb, from, formRFC4733)
	}
	c.logDigit(d, SideWeb, from, formInfo)
	if in != nil {
		c.relayAs(c.web, c.core, in, mediabridge.DTMFRelayType, d.InfoBody())
		return
	}
	c.sendInfo(c.core, d)
}

// trySend reports whether the media session took a digit; one it cannot
// carry (no events, not G.711, too many waiting) goes as INFO.
func (c *Call) trySend(err error) bool {
	if err != nil {
		c.log.Debug("dtmf not carried in the media, sent as INFO", zap.Error(err))
	}
	return err == nil
}

// sendInfo sends a digit as INFO application/dtmf-relay on leg l; its
// answer only ends the transaction.
func (c *Call) sendInfo(l *leg, d mediabridge.DTMFDigit) {
	if !l.confirmed || c.detached || c.ending {
		return
	}
	req := l.dlg.request(sip.INFO, 0)
	req.AppendHeader(sip.NewHeader("Content-Type", mediabridge.DTMFRelayType))
	req.SetBody(d.InfoBody())
	tx := &clientTx{leg: l.side, purpose: txInfo, req: req}
	l.watch(tx)
	if err := l.tr.send(c, tx); err != nil {
		delete(l.out, tx)
		c.log.Debug("dtmf info", zap.Error(err))
	}
}

// logDigit is the one line and the count of a digit.
func (c *Call) logDigit(d mediabridge.DTMFDigit, from Side, arrived, left string) {
	to := SideCore
	if from == SideCore {
		to = SideWeb
	}
	in, out := from.String()+" "+arrived, to.String()+" "+left
	c.log.Info("dtmf", zap.String("digit", d.Signal()), zap.Duration("duration", d.Duration),
		zap.String("from", in), zap.String("to", out))
	c.g.dtmf.Add(in + " -> " + out)
	c.digits++
}

// DTMFCounts is how many digits crossed the gateway, by "side form ->
// side form" (e.g. "web info -> core rfc4733").
func (g *Gateway) DTMFCounts() map[string]uint64 { return g.dtmf.Snapshot() }
