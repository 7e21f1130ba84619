package b2bua

import (
	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imsgate/imsgate/mediabridge"
)

// onCoreDigit takes a digit the core sent as RFC 4733 (read once per event
// by the media session): a browser cannot report received RFC 4733, so
// with dtmf.to_web: info it gets the digit as SIP INFO
// (application/dtmf-relay), which JsSIP and SIP.js report.
func (c *Call) onCoreDigit(d mediabridge.DTMFDigit) {
	form := c.g.cfg.DTMF.ToWeb
	c.log.Info("dtmf", zap.String("digit", d.Signal()), zap.Duration("duration", d.Duration),
		zap.String("from", "core rfc4733"), zap.String("to", "web "+form))
	l := c.web
	if form != "info" || !l.confirmed || c.detached || c.ending {
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
