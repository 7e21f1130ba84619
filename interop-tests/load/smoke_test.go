package load

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	buildTimeout = 3 * time.Minute
	readyTimeout = 20 * time.Second
	stopTimeout  = 15 * time.Second
)

// TestSmokeCalls builds the real gateway and this generator's command,
// starts `imsgate-load echo` and `imsgate -config`, and runs 10 calls for
// 5 s through the generator's Go API: every call must succeed and media
// must flow. It asserts nothing about speed.
func TestSmokeCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway")
	}
	bin := t.TempDir()
	gatewayBin := filepath.Join(bin, "imsgate")
	loadBin := filepath.Join(bin, "imsgate-load")
	goBuild(t, gatewayBin, "github.com/imsgate/imsgate/cmd/imsgate")
	goBuild(t, loadBin, "github.com/imsgate/imsgate/cmd/imsgate-load")

	echo := startProcess(t, "echo", loadBin, "echo", "-listen", "127.0.0.1:0", "-media-ip", "127.0.0.1")
	echoAddr, ok := strings.CutPrefix(echo.waitLine(t, func(line string) bool { return strings.HasPrefix(line, "ready ") }), "ready ")
	if !ok {
		t.Fatal("echo printed no ready line")
	}

	config := filepath.Join(t.TempDir(), "imsgate.yaml")
	yaml := `log:
  level: info
  format: json
ws:
  listen: 127.0.0.1:0
sip:
  listen: 127.0.0.1:0
upstream:
  proxy: sip:` + echoAddr + `;transport=udp
  domain: imsgate.test
media:
  public_ip: 127.0.0.1
  webrtc_port: 0
  rtp_ports: "52000-52999"
`
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatalf("write config: %v", err)
	}
	gw := startProcess(t, "imsgate", gatewayBin, "-config", config)
	var ready struct {
		Msg string `json:"msg"`
		WS  string `json:"ws"`
	}
	gw.waitLine(t, func(line string) bool {
		return json.Unmarshal([]byte(line), &ready) == nil && ready.Msg == "imsgate ready" && ready.WS != ""
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunCalls(ctx, CallsOptions{
		WS: ready.WS, Target: "sip:echo@imsgate.test", Domain: "imsgate.test",
		Calls: 10, Rate: 10, Duration: 5 * time.Second, Register: true,
		GatewayPids: []int{gw.cmd.Process.Pid}, EchoPids: []int{echo.cmd.Process.Pid},
	})
	if err != nil {
		t.Fatalf("run calls: %v", err)
	}
	var text strings.Builder
	res.WriteText(&text)
	t.Logf("result:\n%s", text.String())
	if res.OK != 10 || res.Failed != 0 {
		t.Errorf("ok %d, failed %d (%v): want all 10 ok", res.OK, res.Failed, res.Failures)
	}
	if res.PacketsEchoed == 0 || res.RTT.Count == 0 {
		t.Errorf("echoed %d packets, %d RTT samples: media did not flow", res.PacketsEchoed, res.RTT.Count)
	}
	if res.LossPct >= 5 {
		t.Errorf("loss %.2f %%, want < 5 %%", res.LossPct)
	}
	if res.Setup.Count != 10 || res.FirstEcho.Count != 10 {
		t.Errorf("setup samples %d, first-echo samples %d: want 10 each", res.Setup.Count, res.FirstEcho.Count)
	}
	if res.Gateway.Processes < 1 || res.Gateway.PeakRSSKiB <= 0 || res.Echo.Processes < 1 {
		t.Errorf("process figures missing: gateway %+v echo %+v", res.Gateway, res.Echo)
	}

	idle, err := RunIdle(ctx, IdleOptions{
		WS: ready.WS, Domain: "imsgate.test", Clients: 20, Hold: time.Second, Register: true,
		GatewayPids: []int{gw.cmd.Process.Pid}, Sources: mustSources(t, "127.0.0.1-127.0.0.2"),
	})
	if err != nil {
		t.Fatalf("run idle: %v", err)
	}
	text.Reset()
	idle.WriteText(&text)
	t.Logf("idle:\n%s", text.String())
	if idle.Up != 20 || idle.Failed != 0 {
		t.Errorf("idle up %d, failed %d (%v): want all 20 up", idle.Up, idle.Failed, idle.Failures)
	}
	if idle.GatewayFDs < 20 || idle.RSSAfter <= 0 {
		t.Errorf("gateway fds %d, rss %d KiB: want >= 20 fds and an rss", idle.GatewayFDs, idle.RSSAfter)
	}
}

func mustSources(t *testing.T, s string) []netip.Addr {
	t.Helper()
	a, err := ParseSources(s)
	if err != nil {
		t.Fatalf("sources %q: %v", s, err)
	}
	return a
}

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, pkg)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
}

// process is a started binary whose stdout and stderr lines are read by
// one goroutine each, owned by the test's cleanup.
type process struct {
	name  string
	cmd   *exec.Cmd
	lines chan string
	eof   chan struct{} // both outputs closed: the process is gone
	tail  *lineLog
}

func startProcess(t *testing.T, name, path string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(path, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s stdout: %v", name, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("%s stderr: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, lines: make(chan string, 256), eof: make(chan struct{}), tail: &lineLog{}}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			p.read(r)
		}()
	}
	go func() {
		readers.Wait()
		close(p.eof)
	}()
	t.Cleanup(func() {
		stopProcess(t, p)
		// Pipes close when the process is gone; the readers end at EOF.
		<-p.eof
		if t.Failed() {
			t.Logf("%s output (last lines):\n%s", name, p.tail.String())
		}
	})
	return p
}

// read forwards lines (dropping when nobody waits) and keeps the pipe
// drained so the process never blocks on a full pipe.
func (p *process) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		p.tail.add(line)
		select {
		case p.lines <- line:
		default:
		}
	}
}

// waitLine returns the first line for which match is true.
func (p *process) waitLine(t *testing.T, match func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		select {
		case line := <-p.lines:
			if match(line) {
				return line
			}
		case <-p.eof:
			t.Fatalf("%s exited before its ready line; output:\n%s", p.name, p.tail.String())
		case <-deadline.C:
			t.Fatalf("%s: no ready line within %s; output:\n%s", p.name, readyTimeout, p.tail.String())
		}
	}
}

// stopProcess sends SIGTERM, then SIGKILL if it does not exit in time.
func stopProcess(t *testing.T, p *process) {
	t.Helper()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	deadline := time.NewTimer(stopTimeout)
	defer deadline.Stop()
	select {
	case <-exited:
	case <-deadline.C:
		t.Errorf("%s did not stop on SIGTERM within %s", p.name, stopTimeout)
		_ = p.cmd.Process.Kill()
		<-exited
	}
}
