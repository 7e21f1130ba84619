package b2bua

import (
	"bufio"
	"crypto/tls"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/certs"
	"github.com/imsgate/imsgate/internal/testcert"
)

// TestRegisterOverTLS: with upstream.proxy ;transport=tls the browser's
// REGISTER reaches a TLS core (its certificate checked against
// upstream.tls_ca) with a Contact and Via of the gateway's TLS listener,
// and the core's answer comes back over the same connection.
func TestRegisterOverTLS(t *testing.T) {
	dir := t.TempDir()
	coreCert, coreKey := filepath.Join(dir, "core.pem"), filepath.Join(dir, "core.key")
	gwCert, gwKey := filepath.Join(dir, "gw.pem"), filepath.Join(dir, "gw.key")
	testcert.Write(t, coreCert, coreKey, "core")
	testcert.Write(t, gwCert, gwKey, "imsgate")

	pair, err := tls.LoadX509KeyPair(coreCert, coreKey)
	if err != nil {
		t.Fatal(err)
	}
	coreLn, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer coreLn.Close()
	got := make(chan *sip.Request, 1)
	go func() {
		conn, err := coreLn.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := readStreamRequest(bufio.NewReader(conn))
		if err != nil {
			t.Errorf("core read: %v", err)
			return
		}
		got <- req
		res := reply(req, 200, "OK", "t1", "Contact: "+req.Contact().Value()+";expires=600\r\n", "")
		_, _ = conn.Write([]byte(res))
		time.Sleep(500 * time.Millisecond) // the gateway reads the answer
	}()

	st, err := certs.NewStore(gwCert, gwKey)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, err := certs.ServerConfig(configs.Default().TLS, st)
	if err != nil {
		t.Fatal(err)
	}
	gwLn, err := tls.Listen("tcp", "127.0.0.1:0", srvTLS)
	if err != nil {
		t.Fatal(err)
	}
	g := newGatewayToWith(t, "sip:"+coreLn.Addr().String()+";transport=tls", func(c *configs.Config) {
		c.Upstream.TLSCA = coreCert
		c.SIP.TLSListen, c.SIP.TLSCert, c.SIP.TLSKey = gwLn.Addr().String(), gwCert, gwKey
	}, WithSIPTLS(gwLn))
	f := newFakeFlow("tls1")
	attach(g, f)
	g.handleWeb(f, parseReq(t, jssipRegister))
	var req *sip.Request
	select {
	case req = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no REGISTER over TLS at the core")
	}
	tlsPort := gwLn.Addr().(*net.TCPAddr).Port
	if ct := req.Contact().Address; ct.Port != tlsPort || !strings.EqualFold(transportOf(ct), "tls") {
		t.Fatalf("Contact %s, want the TLS listener's port %d and transport=tls", ct.String(), tlsPort)
	}
	if v := req.Via(); !strings.EqualFold(v.Transport, "TLS") || v.Port != tlsPort {
		t.Fatalf("Via %s", v.Value())
	}
	if res := f.next(t); res.StatusCode != 200 {
		t.Fatalf("browser got %d", res.StatusCode)
	}
}

func transportOf(u sip.Uri) string {
	v, _ := u.UriParams.Get("transport")
	return v
}

// readStreamRequest reads one SIP request from a stream transport.
func readStreamRequest(r *bufio.Reader) (*sip.Request, error) {
	var head strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		head.WriteString(line)
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
		if line == "\r\n" {
			break
		}
	}
	body := make([]byte, length)
	if _, err := r.Read(body); err != nil && length > 0 {
		return nil, err
	}
	msg, err := sip.ParseMessage(append([]byte(head.String()), body...))
	if err != nil {
		return nil, err
	}
	return msg.(*sip.Request), nil
}
