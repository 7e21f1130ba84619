package cdr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/b2bua"
)

// Config is the cdr section of the gateway's configuration.
type Config struct {
	// File receives one JSON line per call; "" writes none.
	File string
	// RotateBytes and RotateEvery move File aside (as File.<UTC time>)
	// before it passes that size or once it is that old; 0 turns either off.
	RotateBytes int64
	RotateEvery time.Duration
	// Webhook receives each record as a JSON POST; "" sends none.
	Webhook string
	// WebhookToken, when set, goes as "Authorization: Bearer".
	WebhookToken string
	// SpoolDir keeps the records not yet accepted by the webhook (needed
	// with Webhook); SpoolMax bounds them (past it a record is logged at
	// Error in full instead, and still written to File).
	SpoolDir string
	SpoolMax int
}

// Defaults of Config.
const (
	DefaultSpoolMax = 100000
	queueSize       = 8192
	postTimeout     = 10 * time.Second
	retryFirst      = time.Second
	retryMax        = time.Minute
)

// Stats are the writer's counters.
type Stats struct {
	Written   uint64 // records written to the file
	Delivered uint64 // records the webhook accepted
	Failures  uint64 // webhook attempts that failed (an error or a non-2xx)
	Pending   int64  // records in the spool
	Lost      uint64 // records neither queued nor spooled: logged at Error in full
}

// Writer writes the records; it is a b2bua.Observer.
type Writer struct {
	cfg    Config
	log    *zap.Logger
	client *http.Client
	now    func() time.Time

	file  *rotatingFile
	spool *spool

	queue chan Record
	wake  chan struct{} // the sender: a record was spooled
	stop  chan struct{} // the writer: drain and end
	ctx   context.Context
	halt  context.CancelFunc // the sender: end, even mid-POST
	wg    sync.WaitGroup
	once  sync.Once
	// closed: Close has begun, and a record ended now has no writer.
	closed atomic.Bool

	written, delivered, failures, lost atomic.Uint64
}

// New opens the file and the spool and starts the writer and the sender.
func New(cfg Config, log *zap.Logger) (*Writer, error) {
	return newWriter(cfg, log, &http.Client{Timeout: postTimeout}, time.Now)
}

func newWriter(cfg Config, log *zap.Logger, client *http.Client, now func() time.Time) (*Writer, error) {
	w := &Writer{cfg: cfg, log: log, client: client, now: now,
		queue: make(chan Record, queueSize), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	w.ctx, w.halt = context.WithCancel(context.Background())
	if cfg.File != "" {
		f, err := openRotating(cfg.File, cfg.RotateBytes, cfg.RotateEvery, now)
		if err != nil {
			return nil, err
		}
		w.file = f
	}
	if cfg.Webhook != "" {
		max := cfg.SpoolMax
		if max == 0 {
			max = DefaultSpoolMax
		}
		s, err := openSpool(cfg.SpoolDir, max)
		if err != nil {
			if w.file != nil {
				_ = w.file.close()
			}
			return nil, err
		}
		w.spool = s
		w.wg.Add(1)
		go w.send()
		if n := s.held.Load(); n > 0 {
			log.Info("cdr spool: records from before the start to deliver", zap.Int64("records", n), zap.String("webhook", cfg.Webhook))
		}
	}
	w.wg.Add(1)
	go w.write()
	return w, nil
}

// CallStateChanged is nothing to a CDR.
func (w *Writer) CallStateChanged(b2bua.CallInfo, b2bua.CallState, time.Time) {}

// CallEnded queues the call's record. A challenged INVITE (401/407 that
// the caller answers with a new one) is not a call and gets none.
func (w *Writer) CallEnded(call b2bua.CallInfo, cause b2bua.Cause, at time.Time) {
	if cause.Reason == b2bua.EndChallenged {
		return
	}
	rec := recordOf(call, cause, at)
	if w.closed.Load() {
		w.lost.Add(1)
		w.log.Error("cdr writer closed: the record is in this line only", zap.Any("cdr", rec))
		return
	}
	select {
	case w.queue <- rec:
	default:
		// The disk has stopped keeping up: the call's goroutine must not
		// wait, so the record goes to the log, whole.
		w.lost.Add(1)
		w.log.Error("cdr queue full: the record is in this line only", zap.Any("cdr", rec))
	}
}

// Stats is a snapshot of the counters.
func (w *Writer) Stats() Stats {
	st := Stats{Written: w.written.Load(), Delivered: w.delivered.Load(), Failures: w.failures.Load(), Lost: w.lost.Load()}
	if w.spool != nil {
		st.Pending = w.spool.held.Load()
	}
	return st
}

// Close writes what is queued, stops the sender (the spool keeps what it
// has not delivered, for the next start) and closes the file. The calls
// must have ended first (b2bua.Gateway.Close): a record ended after Close
// is only logged.
func (w *Writer) Close() error {
	var err error
	w.once.Do(func() {
		w.closed.Store(true)
		close(w.stop)
		w.halt()
		w.wg.Wait()
		if w.file != nil {
			err = w.file.close()
		}
	})
	return err
}

// write takes records off the queue, a batch at a time: each goes to the
// file and the spool, then the file is synced once.
func (w *Writer) write() {
	defer w.wg.Done()
	for {
		select {
		case rec := <-w.queue:
			w.writeBatch(rec)
		case <-w.stop:
			for {
				select {
				case rec := <-w.queue:
					w.writeBatch(rec)
				default:
					return
				}
			}
		}
	}
}

func (w *Writer) writeBatch(first Record) {
	batch := []Record{first}
	for len(batch) < 256 {
		select {
		case rec := <-w.queue:
			batch = append(batch, rec)
			continue
		default:
		}
		break
	}
	spooled := false
	for _, rec := range batch {
		line, err := json.Marshal(rec)
		if err != nil {
			w.log.Error("cdr encode", zap.Error(err), zap.Any("cdr", rec))
			continue
		}
		if w.file != nil {
			if err := w.file.write(append(line, '\n')); err != nil {
				w.log.Error("cdr file write: the record is in this line", zap.Error(err), zap.ByteString("cdr", line))
			} else {
				w.written.Add(1)
			}
		}
		if w.spool != nil {
			if err := w.spool.put(line, w.now()); err != nil {
				w.lost.Add(1)
				w.log.Error("cdr spool: not spooled for the webhook, the record is in this line", zap.Error(err), zap.ByteString("cdr", line))
			} else {
				spooled = true
			}
		}
	}
	if w.file != nil {
		if err := w.file.sync(); err != nil {
			w.log.Error("cdr file sync", zap.Error(err))
		}
	}
	if spooled {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// send POSTs the spooled records oldest first, each until the webhook
// takes it, backing off while it does not.
func (w *Writer) send() {
	defer w.wg.Done()
	backoff := retryFirst
	for {
		names, err := w.spool.list()
		if err != nil {
			w.log.Error("cdr spool", zap.Error(err))
		}
		if len(names) == 0 {
			select {
			case <-w.wake:
				continue
			case <-w.ctx.Done():
				return
			}
		}
		for _, name := range names {
			for {
				err := w.deliver(name)
				if err == nil {
					backoff = retryFirst
					break
				}
				if w.ctx.Err() != nil {
					return
				}
				w.failures.Add(1)
				w.log.Warn("cdr webhook: will retry", zap.String("webhook", w.cfg.Webhook), zap.Error(err),
					zap.Duration("retry_in", backoff), zap.Int64("pending", w.spool.held.Load()))
				select {
				case <-time.After(backoff):
				case <-w.ctx.Done():
					return
				}
				backoff = min(2*backoff, retryMax)
			}
		}
	}
}

// deliver POSTs one spooled record and removes it once the webhook
// answers 2xx.
func (w *Writer) deliver(name string) error {
	body, err := w.spool.read(name)
	if err != nil {
		// Gone (removed by hand): nothing to send.
		_ = w.spool.remove(name)
		return nil //nolint:nilerr // a record that cannot be read cannot be sent either
	}
	var id struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &id)
	ctx, cancel := context.WithTimeout(w.ctx, postTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id.ID)
	if w.cfg.WebhookToken != "" {
		req.Header.Set("Authorization", "Bearer "+w.cfg.WebhookToken)
	}
	res, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", res.Status)
	}
	w.delivered.Add(1)
	return w.spool.remove(name)
}
