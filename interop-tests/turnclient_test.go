//go:build interop

package interop

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// turnPeerAddr is coturn's turnutils_peer, the echo the relays reach.
const turnPeerAddr = "127.0.0.1:3480"

// TestTURNWithCoturnClient: coturn's own test client, turnutils_uclient,
// relays through the gateway's TURN server to coturn's turnutils_peer (an
// echo) over UDP (ChannelData, and Send/Data indications with -s), TCP
// and TLS, with long-term and TURN REST credentials; every message it sent
// comes back, none lost.
func TestTURNWithCoturnClient(t *testing.T) {
	for _, tool := range []string{"turnutils_uclient", "turnutils_peer"} {
		if !onPath(tool) {
			t.Fatalf("%s is not installed (bash .ci/run installs coturn)", tool)
		}
	}
	certFile, keyFile, _ := writeTestCert(t, artifactDir(t))
	gw := startGateway(t, gatewayConfig("udp")+turnConfig(certFile, keyFile, "  secret: interop-turn-rest-secret\n"), "")
	if err := waitBound("tcp", turnTLSAddr, startTimeout); err != nil {
		t.Fatalf("turn.tls_listen: %v\n%s", err, gw.log())
	}
	startProc(t, "turnutils-peer", procOptions{}, "turnutils_peer", "-L", "127.0.0.1", "-p", "3480")
	if err := waitBound("udp", turnPeerAddr, startTimeout); err != nil {
		t.Fatalf("turnutils_peer: %v", err)
	}

	longTerm := []string{"-u", turnUser, "-w", turnPassword}
	rest := []string{"-W", "interop-turn-rest-secret", "-u", "uclient"}
	cases := []struct {
		name string
		args []string
	}{
		{"udp", longTerm},
		{"udp-send-indications", append([]string{"-s"}, longTerm...)},
		{"udp-rest", rest},
		{"tcp", append([]string{"-t"}, longTerm...)},
		{"tls", append([]string{"-t", "-S", "-p", "5349"}, longTerm...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Two clients, 50 messages of 170 bytes each in an RTP and an
			// RTCP session apiece, echoed by the peer.
			args := append(append([]string{}, tc.args...), "-n", "50", "-m", "2", "-l", "170",
				"-e", "127.0.0.1", "-r", "3480")
			if !containsArg(args, "-p") {
				args = append(args, "-p", "3478")
			}
			out, err := exec.CommandContext(ctx, "turnutils_uclient", append(args, "127.0.0.1")...).CombinedOutput()
			sent, recv, lost := uclientTotals(out)
			t.Logf("turnutils_uclient %v: sent %d, received %d, lost %d", args, sent, recv, lost)
			if err != nil || sent == 0 || recv != sent || lost != 0 {
				t.Fatalf("turnutils_uclient: %v; sent %d, received %d, lost %d\n%s", err, sent, recv, lost, tail(string(out), 3000))
			}
		})
	}
}

var (
	uclientSent = regexp.MustCompile(`tot_send_msgs=(\d+)`)
	uclientRecv = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	uclientLost = regexp.MustCompile(`Total lost packets (\d+)`)
)

// uclientTotals reads turnutils_uclient's last totals; -1 where it printed
// none.
func uclientTotals(out []byte) (sent, recv, lost int) {
	last := func(re *regexp.Regexp) int {
		m := re.FindAllSubmatch(out, -1)
		if len(m) == 0 {
			return -1
		}
		n, _ := strconv.Atoi(string(m[len(m)-1][1]))
		return n
	}
	return last(uclientSent), last(uclientRecv), last(uclientLost)
}

func containsArg(args []string, a string) bool {
	for _, x := range args {
		if x == a {
			return true
		}
	}
	return false
}
