//go:build interop

package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imsgate/imsgate/internal/testcert"
	"github.com/imsgate/imsgate/interop-tests/webua"
)

// SIP over TLS between the gateway and Kamailio: Kamailio (-A WITH_TLS)
// serves TLS at kamailioTLSAddr as well, with a certificate the test makes,
// and the gateway serves sip.tls_listen at gatewaySIPTLSAddr with one of
// its own.

const (
	kamailioTLSAddr   = "127.0.0.1:5061"
	gatewaySIPTLSAddr = "127.0.0.1:5071"
	// tlsWireFilter captures both TLS listeners, the gateway's plain SIP
	// port and RTP at SIPp.
	tlsWireFilter = "tcp port 5061 or tcp port 5071 or port 5070 or udp portrange 6000-6199"
)

// tlsPorts makes tshark read both TLS listeners' traffic as TLS.
var tlsPorts = []string{"-d", "tcp.port==5061,tls", "-d", "tcp.port==5071,tls"}

// TestSIPOverTLSToKamailio: the gateway's upstream is Kamailio over TLS
// (upstream.proxy ;transport=tls, Kamailio's certificate as
// upstream.tls_ca). The webua registers as alice (Kamailio's 401 answered
// by it) and calls the echo (the 407 likewise): the echo comes back and
// tshark sees RTP at SIPp. Then a SIPp caller calls alice through
// Kamailio, which reaches the Contact the gateway registered, its TLS
// listener: the webua hears SIPp. Kamailio's log names TLS as the
// transport of every request the gateway sent it; on the wire TLS
// handshakes begin at both listeners and no plain SIP leaves the gateway's
// UDP/TCP port.
func TestSIPOverTLSToKamailio(t *testing.T) {
	art := artifactDir(t)
	kamCert, kamKey := filepath.Join(art, "kamailio-cert.pem"), filepath.Join(art, "kamailio-key.pem")
	gwCert, gwKey := filepath.Join(art, "imsgate-sip-cert.pem"), filepath.Join(art, "imsgate-sip-key.pem")
	testcert.Write(t, kamCert, kamKey, "kamailio interop")
	testcert.Write(t, gwCert, gwKey, "imsgate interop sip")
	tlsCfg := filepath.Join(art, "kamailio-tls.cfg")
	if err := os.WriteFile(tlsCfg, []byte(kamailioTLSConfig(kamCert, kamKey)), 0o644); err != nil {
		t.Fatalf("write Kamailio's tls config: %v", err)
	}
	kam := startKamailioWith(t, "-A", "WITH_TLS", "-A", `TLS_CFG="`+tlsCfg+`"`)
	if err := waitBound("tcp", kamailioTLSAddr, startTimeout); err != nil {
		t.Fatalf("kamailio tls: %v\n%s", err, tail(kam.log(), 30))
	}
	uas := startSIPpUAS(t, "sipp-echo", "uas_echo.xml", echoUASPort, echoMediaPort, true, "-m", "1")
	wire := startCaptureOf(t, "wire", tlsWireFilter)
	gw := startGateway(t, gatewayTLSConfig(t, gwCert, gwKey, kamCert), repoRoot())
	if err := waitBound("tcp", gatewaySIPTLSAddr, startTimeout); err != nil {
		t.Fatalf("imsgate sip tls: %v\n%s", err, gw.log())
	}
	ua := dialWebUA(t, "sip:alice@imsgate.test")
	registerWebUA(t, gw, ua)

	out := placeCallAuthorized(t, gw, ua, "sip:echo@imsgate.test")
	waitMedia(t, gw, out, "echoed", func(s webua.MediaStats) uint64 { return s.Echoed }, minEchoed)
	hangUp(t, gw, out)
	requireSIPpDone(t, gw, uas, 10*time.Second)
	t.Logf("call to the echo:")
	logMedia(t, out)

	uac := startSIPpUAC(t, "uac_call.xml", "alice", talkMs)
	in := answerNextOrSIPp(t, gw, ua, uac)
	waitMedia(t, gw, in, "received", func(s webua.MediaStats) uint64 { return s.Received }, minHeard)
	waitEnded(t, gw, in, "bye", 20*time.Second)
	requireSIPpDone(t, gw, uac, 15*time.Second)
	t.Logf("call from SIPp:")
	logMedia(t, in)

	stopWire(t, wire)
	for _, port := range []int{echoMediaPort, uacMediaPort} {
		in, out := wire.count(t, rtpTo(port)), wire.count(t, rtpFrom(port))
		t.Logf("tshark at SIPp media port %d: %d packets in, %d out", port, in, out)
		if in == 0 || out == 0 {
			failGateway(t, gw, "RTP at SIPp's media port %d: %d in, %d out; want both", port, in, out)
		}
	}
	toKamailio := wire.count(t, "tls.handshake.type == 1 && tcp.dstport == 5061", tlsPorts...)
	toGateway := wire.count(t, "tls.handshake.type == 1 && tcp.dstport == 5071", tlsPorts...)
	records := wire.count(t, "tls.app_data", tlsPorts...)
	plain := wire.count(t, "sip && (udp.port == 5070 || tcp.port == 5070)")
	t.Logf("on the wire: TLS ClientHellos to Kamailio %d, to the gateway %d; TLS application data packets %d; plain SIP at the gateway's port 5070: %d",
		toKamailio, toGateway, records, plain)
	// Kamailio's log below says over which protocol each request came; on
	// the wire it is enough that TLS was spoken and plain SIP never was
	// (tshark does not always dissect the gateway's ClientHello, whose
	// hybrid post-quantum key share makes it large).
	if toKamailio+toGateway == 0 || records == 0 || plain != 0 {
		failGateway(t, gw, "want a TLS handshake, application data, and no plain SIP at 5070")
	}

	// Kamailio's account: what came from the gateway came over TLS, and
	// the gateway answered its INVITE from the TLS listener.
	fromGateway := map[string][]string{} // method → transports
	for _, m := range kamailioRequestRE.FindAllStringSubmatch(kam.log(), -1) {
		if port := m[3]; port == "5080" || port == "5081" || port == "5082" {
			continue // SIPp
		}
		fromGateway[m[1]] = append(fromGateway[m[1]], m[4])
	}
	t.Logf("Kamailio got from the gateway (method: transports): %v", fromGateway)
	for _, method := range []string{"REGISTER", "INVITE", "ACK", "BYE"} {
		if len(fromGateway[method]) == 0 {
			failGateway(t, gw, "Kamailio logged no %s from the gateway\n--- kamailio log (tail):\n%s", method, tail(kam.log(), 30))
		}
	}
	for method, protos := range fromGateway {
		for _, p := range protos {
			if p != "tls" {
				failGateway(t, gw, "Kamailio got a %s from the gateway over %s, want tls: %v", method, p, fromGateway)
			}
		}
	}
	replies := regexp.MustCompile(`reply 200 OK for INVITE from 127\.0\.0\.1:5071`).FindAllString(kam.log(), -1)
	t.Logf("Kamailio got %d 200 (INVITE) from the gateway's TLS listener %s", len(replies), gatewaySIPTLSAddr)
	if len(replies) == 0 {
		failGateway(t, gw, "no 200 for INVITE reached Kamailio from %s\n--- kamailio log (tail):\n%s", gatewaySIPTLSAddr, tail(kam.log(), 30))
	}
}

// kamailioRequestRE reads the line Kamailio logs for each request it gets.
var kamailioRequestRE = regexp.MustCompile(`request (\S+) (\S+) from 127\.0\.0\.1:(\d+) \((\w+)\)`)

// kamailioTLSConfig is the tls module's file: the server side with the
// test's certificate; neither side asks for or checks a peer certificate
// (the gateway's is self-signed).
func kamailioTLSConfig(cert, key string) string {
	return fmt.Sprintf(`[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = %s
private_key = %s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`, cert, key)
}

// gatewayTLSConfig is gatewayConfig with sip.tls_listen and the upstream
// Kamailio over TLS, its certificate trusted as upstream.tls_ca.
func gatewayTLSConfig(t *testing.T, cert, key, ca string) string {
	t.Helper()
	cfg := gatewayConfig("udp")
	sipSection := "sip:\n  listen: " + gatewaySIPAddr + "\n"
	proxy := fmt.Sprintf("sip:%s;transport=udp", kamailioAddr)
	if !strings.Contains(cfg, sipSection) || !strings.Contains(cfg, proxy) {
		t.Fatalf("gatewayConfig has no %q or %q to change:\n%s", sipSection, proxy, cfg)
	}
	cfg = strings.Replace(cfg, sipSection, sipSection+
		fmt.Sprintf("  tls_listen: %s\n  tls_cert: %s\n  tls_key: %s\n", gatewaySIPTLSAddr, cert, key), 1)
	cfg = strings.Replace(cfg, proxy, fmt.Sprintf("sip:%s;transport=tls", kamailioTLSAddr), 1)
	return withUpstream(t, cfg, "  tls_ca: "+ca+"\n")
}
