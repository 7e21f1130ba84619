package b2bua

import (
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/mediabridge"
)

// recordingTransport is a leg transport that keeps what the call sends.
type recordingTransport struct {
	sent []*sip.Request
	acks int
}

func (r *recordingTransport) send(_ *Call, tx *clientTx) error {
	if tx.req.Via() == nil {
		v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "gw.invalid", Params: sip.NewParams()}
		v.Params.Add("branch", newBranch())
		tx.req.PrependHeader(v)
	}
	tx.stop = func() {}
	r.sent = append(r.sent, tx.req)
	return nil
}
func (r *recordingTransport) ack(*sip.Request) error                 { r.acks++; return nil }
func (r *recordingTransport) ackFailure(*sip.Request, *sip.Response) {}
func (r *recordingTransport) resend(*sip.Response) error             { return nil }
func (r *recordingTransport) retransmits2xx() bool                   { return true }
func (r *recordingTransport) prepareInDialog(*sip.Request)           {}

// FuzzCallEvents drives one call's event loop with an interleaving of
// requests and responses from both legs, timers, cancels and a closing
// flow chosen by the input: whatever the order, the call must not panic,
// must end, and must release what it holds.
func FuzzCallEvents(f *testing.F) {
	f.Add([]byte{0x01, 0x12, 0x20, 0x31, 0x40})
	f.Add([]byte{0x01, 0x13, 0x23, 0x50, 0x61, 0x72})
	f.Add([]byte{0x02, 0x10, 0x11, 0x12, 0x33, 0x34, 0x81, 0x92})
	f.Add([]byte{0x00, 0x15, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0})
	core := newRawCore(f)
	g := newGatewayTo(f, core, nil)
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		flow := newFakeFlow(fmt.Sprintf("fz%d", n))
		c, err := g.newCall(SideWeb, flow, fmt.Sprintf("fz-call-%d", n), token(24))
		if err != nil {
			t.Skip(err)
		}
		web, coreTr := &recordingTransport{}, &recordingTransport{}
		c.web.tr, c.core.tr = web, coreTr
		inv := webInvite(c.web.dlg.callID, fmt.Sprintf("fz%d", n), "")
		in := &serverTx{leg: SideWeb, req: inv, respond: func(*sip.Response) error { return nil }}
		c.web.receiveInvite(in)
		g.live.Add(1)
		c.start()
		cseq := map[Side]uint32{SideWeb: 1, SideCore: 100}
		for _, b := range data {
			if c.over() {
				break
			}
			c.handle(fuzzEvent(c, b, cseq, coreTr))
		}
		c.end(Cause{Reason: EndShutdown, By: SideGateway})
		c.finish()
		if len(c.web.in)+len(c.core.in) != 0 {
			t.Fatal("requests left unanswered at the end")
		}
		for k := range c.timers {
			t.Fatalf("timer %v left armed", k)
		}
	})
}

// fuzzEvent turns one input byte into an event for the call: the high
// nibble picks the kind, the low one a detail.
func fuzzEvent(c *Call, b byte, cseq map[Side]uint32, coreTr *recordingTransport) event {
	detail := int(b & 0x0f)
	side := SideWeb
	if detail&1 == 1 {
		side = SideCore
	}
	l := c.leg(side)
	switch b >> 4 {
	case 0, 1, 2: // a response to our INVITE on the core leg
		tx := c.core.inviteOut
		if tx == nil {
			return event{kind: evShutdown}
		}
		codes := []int{100, 180, 183, 200, 200, 486, 487, 302, 401, 500, 603, 200, 181, 404, 408, 488}
		res := sip.NewResponseFromRequest(tx.req, codes[detail], "X", nil)
		tag := "t1"
		if b>>4 == 2 {
			tag = "t2" // another fork
		}
		res.To().Params.Add("tag", tag)
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5999}})
		if codes[detail] < 300 && codes[detail] > 100 {
			setSDP(res, []byte(coreAnswerSDP))
		}
		return event{kind: evResponse, tx: tx, res: res}
	case 3, 4, 5: // an in-dialog request from a leg
		methods := []sip.RequestMethod{sip.BYE, sip.INFO, sip.ACK, sip.CANCEL, sip.INVITE, sip.UPDATE, sip.MESSAGE,
			sip.OPTIONS, sip.PRACK, sip.REFER, sip.INVITE, sip.UPDATE}
		m := methods[(detail+int(b>>4)*3)%len(methods)]
		cseq[side]++
		req := l.dlg.request(m, 0)
		// The request comes from the leg: its From is the leg's remote party.
		req.RemoveHeader("From")
		req.RemoveHeader("To")
		from := &sip.FromHeader{Address: l.dlg.remote, Params: sip.NewParams()}
		from.Params.Add("tag", "remote")
		req.AppendHeader(from)
		to := &sip.ToHeader{Address: l.dlg.local, Params: sip.NewParams()}
		to.Params.Add("tag", l.dlg.localTag)
		req.AppendHeader(to)
		req.RemoveHeader("CSeq")
		req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq[side], MethodName: m})
		v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "peer.invalid", Params: sip.NewParams()}
		v.Params.Add("branch", newBranch())
		req.PrependHeader(v)
		if m == sip.INVITE || m == sip.UPDATE {
			// A session change: a hold, a resume, or nothing new.
			if sdp := fuzzSDP(side, int(cseq[side]), detail); sdp != "" {
				setSDP(req, []byte(sdp))
			}
		}
		if m == sip.REFER {
			req.AppendHeader(sip.NewHeader("Refer-To", "<sip:carol@imsgate.test?Replaces=x%3Bto-tag%3Da%3Bfrom-tag%3Db>"))
		}
		return event{kind: evRequest, in: &serverTx{leg: side, req: req, respond: func(*sip.Response) error { return nil }}}
	case 6: // a response to the latest request we relayed or sent on a leg
		for tx := range l.out {
			res := sip.NewResponseFromRequest(tx.req, []int{200, 481, 408, 491, 200, 422}[detail%6], "X", nil)
			if res.StatusCode == 200 && (tx.purpose == txChange || tx.purpose == txRefresh) {
				setSDP(res, []byte(fuzzSDP(side, detail+2, detail)))
			}
			return event{kind: evResponse, tx: tx, res: res}
		}
		return event{kind: evMedia}
	case 7: // a transaction failure
		for tx := range l.out {
			return event{kind: evTxFailed, tx: tx, err: errTimeout}
		}
		return event{kind: evMedia}
	case 8: // a timer
		k := timerKey{kind: timerKind(detail%int(timerReliable) + 1), side: side}
		if t := c.timers[k]; t != nil {
			return event{kind: evTimer, timer: k, gen: t.gen}
		}
		return event{kind: evMedia}
	case 9:
		return event{kind: evCoreCancel}
	case 10:
		return event{kind: evFlowClosed}
	case 11:
		return event{kind: evShutdown}
	case 12:
		return event{kind: evFlowMoved, flow: newFakeFlow("moved")}
	}
	return event{kind: evMedia, media: mediabridge.Event{Kind: mediabridge.EventKind(detail % 4)}}
}

// fuzzSDP is a description a leg might send in the middle of a call: a
// direction chosen by detail, at o= version v; empty for an offerless one.
func fuzzSDP(side Side, v, detail int) string {
	dir := []string{"sendrecv", "sendonly", "recvonly", "inactive", ""}[detail%5]
	if dir == "" {
		return ""
	}
	if side == SideCore {
		return coreSDP(v, 30000+2*(detail%3), dir)
	}
	return browserSDP(v, dir, []string{"wJ8r", "newU"}[detail%2])
}
