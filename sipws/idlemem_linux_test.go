//go:build linux

package sipws

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// TestIdleMemory measures what one idle, parked connection costs the
// server, over WS and over WSS: live heap after a GC, heap in use, stack
// in use and goroutines, per connection. The clients run in a child
// process (this test binary again) so none of their memory is counted.
// Each client registers (REGISTER, 200) and falls silent. It is a figure
// for docs/WSS-IDLE.md, not an assertion; it runs only when asked
// (SIPWS_IDLE_HEAPPROFILE=dir also writes a heap profile per transport):
//
//	SIPWS_IDLE_CONNS=5000 go test -count=1 -run 'TestIdleMemory$' -v ./sipws
func TestIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SIPWS_IDLE_CONNS"))
	if n <= 0 {
		t.Skip("set SIPWS_IDLE_CONNS=N to measure N idle connections per transport")
	}
	if os.Getenv("SIPWS_IDLE_HEAPPROFILE") != "" {
		// Every allocation sampled, so the profile attributes bytes exactly.
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			m := measureIdle(t, transport, n)
			t.Logf("IDLE %s conns=%d live_heap_B_per_conn=%.0f heap_inuse_B_per_conn=%.0f stack_inuse_B_per_conn=%.0f goroutines_per_conn=%.3f",
				transport, n, m.liveHeap, m.heapInuse, m.stackInuse, m.goroutines)
		})
	}
}

type idleFigures struct{ liveHeap, heapInuse, stackInuse, goroutines float64 }

// replyHandler answers every request with 200 and keeps nothing.
type replyHandler struct{}

func (replyHandler) HandleMessage(c *Conn, msg sip.Message) {
	if req, ok := msg.(*sip.Request); ok {
		_ = c.WriteMessage(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
}
func (replyHandler) ConnClosed(*Conn) {}

func measureIdle(t *testing.T, transport string, n int) idleFigures {
	cfg, _ := tlsTestConfig(t)
	// No ping while measuring: the clients never read, as idle ones do.
	cfg.PingInterval, cfg.IdleTimeout = time.Hour, 2*time.Hour
	srv, err := NewServer(cfg, replyHandler{}, zap.NewNop(), WithLimits(roomyLimits()))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, served: make(chan error, 2)}
	ts.wsURL = "ws://" + ts.listen(t, "127.0.0.1:0", srv.Serve)
	ts.url = "wss://" + ts.listen(t, "127.0.0.1:0", srv.ServeTLS)
	defer ts.shutdown(t)
	url := ts.wsURL
	if transport == "wss" {
		url = ts.url
	}
	before := memNow()

	child := exec.Command(os.Args[0], "-test.run=^TestIdleMemoryClients$", "-test.count=1")
	child.Env = append(os.Environ(), "SIPWS_IDLE_CLIENTS_URL="+url, "SIPWS_IDLE_CLIENTS="+strconv.Itoa(n))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close() // the child closes its connections and exits
		if err := child.Wait(); err != nil {
			t.Errorf("client process: %v", err)
		}
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		t.Logf("clients: %s", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	waitAllParked(t, srv, n)
	after := memNow()
	if dir := os.Getenv("SIPWS_IDLE_HEAPPROFILE"); dir != "" {
		writeHeapProfile(t, filepath.Join(dir, "idle-"+transport+".heap"))
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return idleFigures{
		liveHeap:   per(after.HeapAlloc, before.HeapAlloc),
		heapInuse:  per(after.HeapInuse, before.HeapInuse),
		stackInuse: per(after.StackInuse, before.StackInuse),
		goroutines: float64(after.goroutines-before.goroutines) / float64(n),
	}
}

// writeHeapProfile saves what is live now, for go tool pprof.
func writeHeapProfile(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

type memSample struct {
	runtime.MemStats
	goroutines int
}

// memNow samples after two GCs, so only live memory is left in the heap.
func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var m memSample
	runtime.ReadMemStats(&m.MemStats)
	m.goroutines = runtime.NumGoroutine()
	return m
}

// waitAllParked waits until n connections are open and all parked.
func waitAllParked(t *testing.T, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		parked := 0
		srv.mu.RLock()
		total := len(srv.conns)
		for _, c := range srv.conns {
			if isParked(c) {
				parked++
			}
		}
		srv.mu.RUnlock()
		if total == n && parked == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections open, %d parked", total, n, parked)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIdleMemoryClients is the child of TestIdleMemory: it opens the
// connections, registers each, prints "ready" and holds them until its
// stdin closes.
func TestIdleMemoryClients(t *testing.T) {
	url := os.Getenv("SIPWS_IDLE_CLIENTS_URL")
	n, _ := strconv.Atoi(os.Getenv("SIPWS_IDLE_CLIENTS"))
	if url == "" || n <= 0 {
		t.Skip("the client side of TestIdleMemory")
	}
	d := &websocket.Dialer{HandshakeTimeout: time.Minute, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	conns := make([]*websocket.Conn, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ws, _, err := d.Dial(url, sipHeader(""))
				if err == nil {
					err = registerOnce(ws, i)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					continue
				}
				conns[i] = ws
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, ws := range conns {
		_ = ws.Close()
	}
}

func registerOnce(ws *websocket.Conn, i int) error {
	if err := ws.WriteMessage(websocket.TextMessage, []byte(withCallID(fmt.Sprintf("idle-%d", i)))); err != nil {
		return err
	}
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	if _, _, err := ws.ReadMessage(); err != nil {
		return err
	}
	return ws.SetReadDeadline(time.Time{})
}
