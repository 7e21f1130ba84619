//go:build interop

package interop

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a process gets after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// proc is one external process a test started. Its own process group lets
// stop reach children too (Kamailio's workers, Chromium under Node).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when Wait returns
	waitErr error
	once    sync.Once
}

type procOptions struct {
	dir    string
	env    []string
	stdout io.Writer // nil: the log file
}

// startProc starts argv with output in artifacts/<test>/<name>.log and
// registers a cleanup that stops it by pid.
func startProc(t *testing.T, name string, o procOptions, argv ...string) *proc {
	t.Helper()
	logPath := filepath.Join(artifactDir(t), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create %s log: %v", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = o.dir
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if o.stdout != nil {
		cmd.Stdout = o.stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	t.Logf("started %s pid %d: %s", name, cmd.Process.Pid, strings.Join(argv, " "))
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process group by its pid: SIGTERM, then SIGKILL after
// stopGrace. It is idempotent and always waits for the process.
func (p *proc) stop(t *testing.T) {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		select {
		case <-p.done:
			// Exited by itself; children left in its group go too.
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return
		default:
		}
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			t.Logf("%s ignored SIGTERM for %s: killing", p.name, stopGrace)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
		// Children that outlived their parent in the group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// wait waits for the process to exit by itself and returns its exit error.
func (p *proc) wait(timeout time.Duration) error {
	if p.exited() { // with timeout 0 the select below would pick at random
		return p.waitErr
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// exited reports whether the process has ended, without waiting.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// log returns the process's output so far.
func (p *proc) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", p.logPath, err)
	}
	return string(b)
}

// waitLog polls the process log until pattern matches or timeout passes.
func (p *proc) waitLog(pattern string, timeout time.Duration) error {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("%s: bad log pattern: %w", p.name, err)
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if re.MatchString(p.log()) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before logging %q", p.name, p.waitErr, pattern)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %s", p.name, pattern, timeout)
		}
		<-tick.C
	}
}

var errNotBound = errors.New("port not bound")

// waitBound polls until some process has bound addr (network "udp" or
// "tcp"): our own bind attempt failing with EADDRINUSE proves it, and sends
// no packet to the process.
func waitBound(network, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if inUse(network, addr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s: %w within %s", network, addr, errNotBound, timeout)
		}
		<-tick.C
	}
}

// artifactDir is interop-tests/artifacts/<test name>/, emptied once per test.
func artifactDir(t *testing.T) string {
	dir := filepath.Join(interopDir(), "artifacts", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	artifactOnce.Lock()
	defer artifactOnce.Unlock()
	if !artifactMade[dir] {
		_ = os.RemoveAll(dir)
		artifactMade[dir] = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

var (
	artifactOnce sync.Mutex
	artifactMade = map[string]bool{}
)
