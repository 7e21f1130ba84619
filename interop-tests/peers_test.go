//go:build interop

package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fixed loopback plan. The suite runs in its own network namespace, so
// fixed ports cannot collide with anything else on the machine.
const (
	kamailioAddr   = "127.0.0.1:5060"
	gatewaySIPAddr = "127.0.0.1:5070"
	gatewayWSAddr  = "127.0.0.1:8080"
	echoUASPort    = 5080 // SIPp echo UAS (Kamailio routes user "echo" here)
	uacPort        = 5081 // SIPp caller; Kamailio trusts 5080-5082
	ringUASPort    = 5082 // SIPp UAS that rings until CANCEL (user "ring")
	echoMediaPort  = 6000 // -rtp_echo also takes 6002
	ringMediaPort  = 6010
	uacMediaPort   = 6100
	startTimeout   = 15 * time.Second
)

// startKamailio runs interop-tests/kamailio/kamailio.cfg in the foreground.
func startKamailio(t *testing.T) *proc {
	t.Helper()
	return startKamailioWith(t)
}

// startKamailioWith is startKamailio with more kamailio options, such as
// config defines ("-A", "WITH_PRESENCE").
func startKamailioWith(t *testing.T, extra ...string) *proc {
	t.Helper()
	run := t.TempDir()
	args := []string{"kamailio", "-f", filepath.Join(interopDir(), "kamailio", "kamailio.cfg"),
		"-DD", "-E", "-Y", run, "-P", filepath.Join(run, "kamailio.pid"), "-w", run}
	p := startProc(t, "kamailio", procOptions{dir: run}, append(args, extra...)...)
	if err := waitBound("tcp", kamailioAddr, startTimeout); err != nil {
		t.Fatalf("kamailio: %v\n%s", err, p.log())
	}
	if err := waitBound("udp", kamailioAddr, startTimeout); err != nil {
		t.Fatalf("kamailio: %v\n%s", err, p.log())
	}
	return p
}

// startSIPpUAS runs a long-lived SIPp UAS scenario; echo adds -rtp_echo,
// extra more SIPp options (-m 1: serve one call, then exit with its verdict).
func startSIPpUAS(t *testing.T, name, scenario string, port, mediaPort int, echo bool, extra ...string) *proc {
	t.Helper()
	art := artifactDir(t)
	args := []string{"sipp", "-sf", sippScenario(scenario),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mi", "127.0.0.1", "-mp", strconv.Itoa(mediaPort),
		"-nostdin", "-trace_err", "-error_file", filepath.Join(art, name+"-errors.log"),
		"-trace_msg", "-message_file", filepath.Join(art, name+"-messages.log")}
	if echo {
		args = append(args, "-rtp_echo")
	}
	args = append(args, extra...)
	p := startProc(t, name, procOptions{dir: toneDir(t)}, args...)
	if err := waitBound("udp", fmt.Sprintf("127.0.0.1:%d", port), startTimeout); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, p.log())
	}
	return p
}

// startSIPpUAC places one call to user through Kamailio with scenario; the
// call lasts holdMs (-d: talk time, or ring time before CANCEL). Its working
// directory holds tone.pcmu, the audio rtp_stream plays. extra adds SIPp
// options (-nr: no retransmissions, and no absorbing of the peer's).
func startSIPpUAC(t *testing.T, scenario, user string, holdMs int, extra ...string) *proc {
	t.Helper()
	dir := toneDir(t)
	art := artifactDir(t)
	args := []string{"sipp", kamailioAddr, "-sf", sippScenario(scenario), "-s", user,
		"-i", "127.0.0.1", "-p", strconv.Itoa(uacPort), "-mi", "127.0.0.1", "-mp", strconv.Itoa(uacMediaPort),
		"-d", strconv.Itoa(holdMs), "-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(art, "sipp-uac-errors.log"),
		"-trace_msg", "-message_file", filepath.Join(art, "sipp-uac-messages.log")}
	return startProc(t, "sipp-uac", procOptions{dir: dir}, append(args, extra...)...)
}

// toneDir is a SIPp working directory holding tone.pcmu, what rtp_stream
// plays.
func toneDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tone.pcmu"), toneULaw(440, 2*time.Second), 0o644); err != nil {
		t.Fatalf("write tone: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dtmf.pcmu"), dtmfULaw("3#"), 0o644); err != nil {
		t.Fatalf("write dtmf tones: %v", err)
	}
	return dir
}

func sippScenario(name string) string { return filepath.Join(interopDir(), "sipp", name) }

// capture records UDP on lo in the media port range SIPp uses.
type capture struct {
	proc *proc
	file string
}

func startCapture(t *testing.T) *capture {
	t.Helper()
	return startCaptureOf(t, "media", "udp portrange 6000-6199")
}

// startCaptureOf records what the capture filter takes on lo into
// artifacts/<test>/<name>.pcapng.
func startCaptureOf(t *testing.T, name, filter string) *capture {
	t.Helper()
	file := filepath.Join(artifactDir(t), name+".pcapng")
	procName := "tshark"
	if name != "media" {
		procName = "tshark-" + name
	}
	p := startProc(t, procName, procOptions{}, "tshark", "-i", "lo", "-n",
		"-f", filter, "-w", file)
	if err := p.waitLog(`Capturing on`, startTimeout); err != nil {
		t.Fatalf("tshark: %v", err)
	}
	return &capture{proc: p, file: file}
}

// stop ends the capture so the file is complete.
func (c *capture) stop(t *testing.T) { c.proc.stop(t) }

// count returns how many captured packets match a tshark display filter;
// extra adds tshark options such as "-d udp.port==6000,rtp".
func (c *capture) count(t *testing.T, filter string, extra ...string) int {
	t.Helper()
	args := append([]string{"-r", c.file, "-n", "-Y", filter, "-T", "fields", "-e", "frame.number"}, extra...)
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark -r %s -Y %q: %v", c.file, filter, err)
	}
	return len(strings.Fields(string(out)))
}

// startGateway runs the imsgate binary: with a config written from yaml, or
// with no -config at all when yaml is empty (the embedded demo). dir is its
// working directory (relative paths in the config resolve there).
func startGateway(t *testing.T, yaml, dir string) *proc {
	t.Helper()
	return startGatewayBin(t, gatewayBin, yaml, dir)
}

// startGatewayBin is startGateway with another build of the gateway (one
// without -race, whose CPU and memory mean something).
func startGatewayBin(t *testing.T, bin, yaml, dir string) *proc {
	t.Helper()
	args := []string{bin}
	if yaml != "" {
		cfg := filepath.Join(artifactDir(t), "imsgate.yaml")
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatalf("write gateway config: %v", err)
		}
		args = append(args, "-config", cfg)
	}
	// Registered before the process's own cleanup, so it runs after the
	// gateway has stopped and printed any race report.
	var p *proc
	t.Cleanup(func() {
		if p != nil {
			checkGatewayLog(t, p.log())
		}
	})
	p = startProc(t, "imsgate", procOptions{dir: dir}, args...)
	if err := waitBound("tcp", gatewayWSAddr, startTimeout); err != nil {
		t.Fatalf("imsgate: %v\n%s", err, p.log())
	}
	return p
}

// checkGatewayLog fails the test on a data race or panic in the gateway
// (built with -race) and lists the ERROR lines it logged.
func checkGatewayLog(t *testing.T, log string) {
	t.Helper()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if i := strings.Index(log, bad); i >= 0 {
			t.Errorf("imsgate log has %q:\n%s", bad, log[i:min(len(log), i+4000)])
		}
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "\tERROR\t") {
			t.Logf("imsgate logged an error: %s", line)
		}
	}
}

// gatewayConfig points the gateway at Kamailio over transport (udp or tcp).
func gatewayConfig(transport string) string {
	return fmt.Sprintf(`log:
  level: debug
ws:
  listen: %s
sip:
  listen: %s
  transport: %s
upstream:
  proxy: "sip:%s;transport=%s"
  domain: imsgate.test
media:
  public_ip: 127.0.0.1
  webrtc_port: 10000
  rtp_ports: "20000-20999"
`, gatewayWSAddr, gatewaySIPAddr, transport, kamailioAddr, transport)
}
