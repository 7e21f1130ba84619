package presence

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// instant answers every request at once, as a core or browsers that say
// yes to everything.
type instant struct{}

func (instant) Request(_ context.Context, req *sip.Request) (*sip.Response, error) {
	return okAnswer(req), nil
}

func (instant) Contact(user string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: user, Host: "gw.test"}
}

type instantFlows struct{}

func (instantFlows) Request(_ context.Context, _ string, req *sip.Request) (*sip.Response, error) {
	return okAnswer(req), nil
}

func (instantFlows) Device(user string) (Device, bool) {
	return Device{Flow: "f1", Contact: sip.Uri{Scheme: "sip", User: user, Host: "b.invalid"}}, user != ""
}

func (instantFlows) Devices(sip.Uri) []Device {
	return []Device{{Flow: "f1", Contact: sip.Uri{Scheme: "sip", User: "d1", Host: "b.invalid"}},
		{Flow: "f2", Contact: sip.Uri{Scheme: "sip", User: "d2", Host: "b.invalid"}}}
}

// fuzzSeeds are requests either side might send. The relay the fuzz
// target builds holds one subscription from flow f1 first, made with tags
// x1 (its id), x2 (our tag toward the browser), x3 and x4 (our Call-ID and
// tag toward the core), so that in-dialog requests can reach it.
var fuzzSeeds = []string{
	"SUBSCRIBE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK1\r\nFrom: <sip:alice@ims.test>;tag=s1\r\n" +
		"To: <sip:bob@ims.test>\r\nCall-ID: c1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:a@a.invalid;transport=ws>\r\n" +
		"Event: presence;id=1\r\nExpires: 600\r\nAccept: application/pidf+xml\r\nContent-Length: 0\r\n\r\n",
	"SUBSCRIBE sip:x1@imsgate.invalid SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK2\r\nFrom: <sip:alice@ims.test>;tag=s1\r\n" +
		"To: <sip:bob@ims.test>;tag=x2\r\nCall-ID: fz\r\nCSeq: 2 SUBSCRIBE\r\nEvent: presence;id=1\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
	"NOTIFY sip:x1@gw.test SIP/2.0\r\nVia: SIP/2.0/UDP core;branch=z9hG4bK3\r\nFrom: <sip:bob@ims.test>;tag=far\r\n" +
		"To: <sip:alice@ims.test>;tag=x4\r\nCall-ID: x3\r\nCSeq: 1 NOTIFY\r\nEvent: presence;id=1\r\n" +
		"Subscription-State: terminated;reason=timeout\r\nContent-Type: application/pidf+xml\r\nContent-Length: 3\r\n\r\n<a>",
	"NOTIFY sip:x1@gw.test SIP/2.0\r\nVia: SIP/2.0/UDP core;branch=z9hG4bK4\r\nFrom: <sip:bob@ims.test>;tag=far\r\n" +
		"To: <sip:alice@ims.test>;tag=x4\r\nCall-ID: x3\r\nCSeq: 7 NOTIFY\r\no: presence;id=1\r\nSubscription-State: active;expires=4294967296\r\n\r\n",
	"NOTIFY sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP core;branch=z9hG4bK5\r\nFrom: <sip:vm@ims.test>;tag=v\r\n" +
		"To: <sip:alice@ims.test>\r\nCall-ID: m1\r\nCSeq: 1 NOTIFY\r\nEvent: message-summary\r\n" +
		"Content-Type: application/simple-message-summary\r\nContent-Length: 22\r\n\r\nMessages-Waiting: yes\r\n",
	"PUBLISH sip:alice@ims.test SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK6\r\nFrom: <sip:alice@ims.test>;tag=p\r\n" +
		"To: <sip:alice@ims.test>\r\nCall-ID: p1\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 3600\r\nSIP-If-Match: e1\r\n\r\n",
	"MESSAGE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK7\r\nFrom: <sip:alice@ims.test>;tag=m\r\n" +
		"To: <sip:bob@ims.test>\r\nCall-ID: msg\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
	"OPTIONS sip:x1@gw.test SIP/2.0\r\nVia: SIP/2.0/UDP core;branch=z9hG4bK8\r\nFrom: <sip:bob@ims.test>;tag=far\r\n" +
		"To: <sip:alice@ims.test>;tag=x4\r\nCall-ID: x3\r\nCSeq: 9 OPTIONS\r\n\r\n",
	"SUBSCRIBE sip:d1@gw.test SIP/2.0\r\nVia: SIP/2.0/UDP core;branch=z9hG4bK9\r\nFrom: <sip:carol@ims.test>;tag=c\r\n" +
		"To: <sip:d1@ims.test>\r\nCall-ID: cs\r\nCSeq: 1 SUBSCRIBE\r\nContact: *\r\nEvent: dialog\r\nExpires: -5\r\n\r\n",
}

// FuzzRelayIntake: whatever parses as a SIP request, from either side and
// with a subscription in place, gets exactly one reply and no panic.
func FuzzRelayIntake(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		r := New(instantFlows{}, instant{}, instantFlows{}, Limits{MaxBodyBytes: 1024, MessageRate: 1000, MessageBurst: 1000,
			MaxSubscriptions: 2, InFlight: 16}, zap.NewNop())
		r.timing = timing{unit: time.Millisecond, grace: time.Millisecond}
		var n atomic.Int64
		r.newTag = func(int) string { return "x" + strconv.FormatInt(n.Add(1), 10) }
		defer r.Close()

		setup := strings.ReplaceAll(fuzzSeeds[0], "Call-ID: c1", "Call-ID: fz")
		first, _ := sip.ParseMessage([]byte(setup))
		replyOnce(t, func(reply func(*sip.Response)) { r.FromWeb("f1", first.(*sip.Request), reply) })
		replyOnce(t, func(reply func(*sip.Response)) { r.FromWeb("f1", req.Clone(), reply) })
		replyOnce(t, func(reply func(*sip.Response)) { r.FromCore(req.Clone(), reply) })
		r.Forget("f1")
	})
}

// replyOnce hands a request in and checks that its reply comes, once.
func replyOnce(t *testing.T, in func(reply func(*sip.Response))) {
	t.Helper()
	var mu sync.Mutex
	calls := 0
	got := make(chan struct{}, 1)
	in(func(res *sip.Response) {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		if c > 1 {
			panic("reply called twice")
		}
		if res == nil || res.StatusCode < 200 {
			panic("reply without a final response")
		}
		got <- struct{}{}
	})
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
}
