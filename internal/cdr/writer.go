package cdr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
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
	// Rejected counts records the webhook refused for good (a 4xx other
	// than 408, 425, 429): moved to spool_dir/rejected.
	Rejected uint64
	// FileErrors counts records cdr.file did not take (logged in full).
	FileErrors uint64
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
	rejected, fileErrors               atomic.Uint64
	webhookLog                         string // the webhook URL, password redacted
}

// New opens the file and the spool and starts the writer and the sender.
func New(cfg Config, log *zap.Logger) (*Writer, error) {
	return newWriter(cfg, log, &http.Client{Timeout: postTimeout}, time.Now)
}

func newWriter(cfg Config, log *zap.Logger, client *http.Client, now func() time.Time) (*Writer, error) {
	w := &Writer{cfg: cfg, log: log, client: client, now: now,
		queue: make(chan Record, queueSize), wake: make(chan struct{}, 1), stop: make(chan struct{})}
	w.ctx, w.halt = context.WithCancel(context.Background())
	if u, err := url.Parse(cfg.Webhook); err == nil {
		w.webhookLog = u.Redacted()
	}
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
			log.Info("cdr spool: records from before the start to deliver", zap.Int64("records", n), zap.String("webhook", w.webhookLog))
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
	st := Stats{Written: w.written.Load(), Delivered: w.delivered.Load(), Failures: w.failures.Load(), Lost: w.lost.Load(),
		Rejected: w.rejected.Load(), FileErrors: w.fileErrors.Load()}
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
fill:
	for len(batch) < 256 {
		select {
		case rec := <-w.queue:
			batch = append(batch, rec)
		default:
			break fill
		}
	}
	spooled := false
	for _, rec := range batch {
		line, err := json.Marshal(rec)
		if err != nil {
			w.log.Error("cdr encode", zap.Error(err), zap.Any("cdr", rec))
			continue
		}
		if w.file != nil {
			rotateErr, err := w.file.write(append(line, '\n'))
			if rotateErr != nil {
				w.log.Error("cdr file rotation failed: records go on into the same file", zap.Error(rotateErr))
			}
			if err != nil {
				w.fileErrors.Add(1)
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
		if err := w.spool.syncDir(); err != nil {
			w.log.Error("cdr spool sync", zap.Error(err))
		}
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
		} else {
			w.spool.recount(names)
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
				var refused *refusedError
				if errors.As(err, &refused) && refused.permanent() {
					w.rejected.Add(1)
					w.log.Error("cdr webhook refused a record for good: moved to rejected/", zap.String("webhook", w.webhookLog),
						zap.String("record", name), zap.Error(err))
					if err := w.spool.reject(name); err != nil {
						w.log.Error("cdr spool", zap.Error(err))
					}
					break
				}
				w.log.Warn("cdr webhook: will retry", zap.String("webhook", w.webhookLog), zap.Error(err),
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

// refusedError is a webhook's answer other than 2xx.
type refusedError struct {
	status int
	text   string
}

func (e *refusedError) Error() string { return "webhook answered " + e.text }

// permanent: a 4xx says this record will never be taken, except 408
// (timeout), 425 (too early) and 429 (too many requests), which ask for a
// retry.
func (e *refusedError) permanent() bool {
	return e.status/100 == 4 && e.status != 408 && e.status != 425 && e.status != 429
}

// deliver POSTs one spooled record and removes it once the webhook
// answers 2xx.
func (w *Writer) deliver(name string) error {
	body, err := w.spool.read(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed by hand: nothing to send
	}
	if err != nil {
		return err // out of descriptors, an I/O error: tried again later
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
		return &refusedError{status: res.StatusCode, text: res.Status}
	}
	w.delivered.Add(1)
	return w.spool.remove(name)
}
