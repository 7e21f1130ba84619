package webua

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Transfer (RFC 3515, RFC 3891): REFER both ways within a call and the
// NOTIFYs of its implicit subscription (Event: refer, message/sipfrag).

// DialogID names a call's dialog as a Replaces header does (RFC 3891 §6.1),
// from our side: to-tag is the far end's tag, from-tag ours.
type DialogID struct {
	CallID, LocalTag, RemoteTag string
}

// Dialog is the call's dialog as it stands.
func (c *Call) Dialog() DialogID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return DialogID{CallID: c.dialog.callID, LocalTag: c.dialog.localTag, RemoteTag: c.dialog.remoteTag}
}

// ReplacesURI is target with a Replaces URI header naming d, escaped for a
// Refer-To (RFC 3891 §6.1, RFC 3515 §2.1).
func ReplacesURI(target string, d DialogID) string {
	replaces := fmt.Sprintf("%s;to-tag=%s;from-tag=%s", d.CallID, d.RemoteTag, d.LocalTag)
	esc := strings.NewReplacer("%", "%25", ";", "%3B", "=", "%3D", "@", "%40", " ", "%20").Replace(replaces)
	return target + "?Replaces=" + esc
}

// Refer asks the far end to call referTo (a blind transfer, or attended
// with ReplacesURI) and returns the REFER's final response; the progress
// comes as NOTIFYs through InDialog.
func (c *Call) Refer(ctx context.Context, referTo string) (*sip.Response, error) {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if state != stateConfirmed {
		return nil, fmt.Errorf("refer: %w: %s", errBadState, state)
	}
	req := c.newInDialogRequest(sip.REFER)
	req.AppendHeader(c.ua.contactHeader())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+referTo+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+c.ua.aor.String()+">"))
	res, err := c.ua.roundTrip(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("refer: %w", err)
	}
	return res, nil
}

// onRefer accepts the far end's REFER (202) and hands it over through
// InDialog; the test places the new call and reports with NotifyRefer.
func (c *Call) onRefer(req *sip.Request) {
	c.ua.respond(req, sip.StatusAccepted, "Accepted")
	target := strings.Trim(headerOf(req, "Refer-To"), "<>")
	c.record(SessionRequest{Method: string(sip.REFER), Status: sip.StatusAccepted, At: time.Now(), ReferTo: target})
}

// NotifyRefer reports a REFER's progress (RFC 3515 §2.4.5): the new call's
// status line as message/sipfrag; a final status ends the subscription.
func (c *Call) NotifyRefer(ctx context.Context, status int, reason string) (*sip.Response, error) {
	req := c.newInDialogRequest(sip.NOTIFY)
	req.AppendHeader(c.ua.contactHeader())
	req.AppendHeader(sip.NewHeader("Event", "refer"))
	state := "active;expires=60"
	if status >= 200 {
		state = "terminated;reason=noresource"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(fmt.Sprintf("SIP/2.0 %d %s\r\n", status, reason)))
	res, err := c.ua.roundTrip(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	return res, nil
}

func headerOf(msg interface{ GetHeader(string) sip.Header }, name string) string {
	if h := msg.GetHeader(name); h != nil {
		return strings.TrimSpace(h.Value())
	}
	return ""
}
