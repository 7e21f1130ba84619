package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
)

// TestIMSEdge: with upstream.ims the REGISTER carries Path and the
// configured access network; the INVITE and the MESSAGE after it follow
// the Service-Route the core returned and assert the registered identity,
// and the browser's own trust-domain headers never reach the core.
func TestIMSEdge(t *testing.T) {
	core := newRawCore(t)
	g := newGatewayTo(t, core, func(c *configs.Config) {
		c.Upstream.IMS = true
		c.Upstream.AccessNetworkInfo = "IEEE-802.11;i-wlan-node-id=ffffffffffff"
		c.Upstream.VisitedNetworkID = "visited.example"
	})
	f := newFakeFlow("ims1")
	attach(g, f)
	g.handleWeb(f, parseReq(t, jssipRegister))
	reg := core.expect(sip.REGISTER)
	path := reg.GetHeader("Path")
	if path == nil || !strings.Contains(path.Value(), "@"+g.core.host) || !strings.HasSuffix(path.Value(), ";lr>") {
		t.Fatalf("Path %v", path)
	}
	for name, want := range map[string]string{"Supported": "path", "P-Access-Network-Info": "IEEE-802.11;i-wlan-node-id=ffffffffffff", "P-Visited-Network-ID": "visited.example"} {
		if h := reg.GetHeader(name); h == nil || h.Value() != want {
			t.Fatalf("REGISTER %s = %v, want %q", name, h, want)
		}
	}
	core.send(reply(reg, 200, "OK", "r1", "Contact: "+reg.Contact().Value()+";expires=600\r\nService-Route: <sip:orig@scscf.example;lr>\r\n", ""))
	if res := f.next(t); res.StatusCode != 200 || res.GetHeader("Service-Route") == nil {
		t.Fatalf("browser got %d, Service-Route %v", res.StatusCode, res.GetHeader("Service-Route"))
	}

	g.handleWeb(f, webInvite("ims-call", "i1", "P-Asserted-Identity: <sip:boss@imsgate.test>\r\nP-Charging-Vector: icid-value=x\r\n"))
	inv := core.expect(sip.INVITE)
	if r := inv.GetHeader("Route"); r == nil || r.Value() != "<sip:orig@scscf.example;lr>" {
		t.Fatalf("INVITE Route %v", r)
	}
	if pai := inv.GetHeaders("P-Asserted-Identity"); len(pai) != 1 || pai[0].Value() != "<sip:alice@imsgate.test>" {
		t.Fatalf("INVITE P-Asserted-Identity %v", pai)
	}
	if inv.GetHeader("P-Charging-Vector") != nil || inv.GetHeader("P-Access-Network-Info") == nil {
		t.Fatal("the browser's P-Charging-Vector crossed, or the configured P-Access-Network-Info is missing")
	}
	core.send(reply(inv, 486, "Busy Here", "c1", "", ""))
	if res := f.expectStatus(t); res.StatusCode != 486 {
		t.Fatalf("browser got %d", res.StatusCode)
	}

	g.handleWeb(f, aliceMessage(t, "ims-msg"))
	msg := expectSkippingACK(t, core, sip.MESSAGE)
	if r := msg.GetHeader("Route"); r == nil || r.Value() != "<sip:orig@scscf.example;lr>" {
		t.Fatalf("MESSAGE Route %v", r)
	}
	core.send(reply(msg, 200, "OK", "m2", "", ""))
	if res := f.next(t); res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
}
