package cdr

import (
	"fmt"
	"os"
	"time"
)

// rotatingFile appends lines to path. Before a line that would take it
// past maxBytes, or once it has been open maxAge, it moves the file aside
// as path.<UTC time> and starts a new one (0 turns either off).
type rotatingFile struct {
	path     string
	maxBytes int64
	maxAge   time.Duration
	now      func() time.Time

	f      *os.File
	size   int64
	opened time.Time
}

func openRotating(path string, maxBytes int64, maxAge time.Duration, now func() time.Time) (*rotatingFile, error) {
	r := &rotatingFile{path: path, maxBytes: maxBytes, maxAge: maxAge, now: now}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("cdr.file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("cdr.file: %w", err)
	}
	r.f, r.size, r.opened = f, st.Size(), r.now()
	return nil
}

// write appends line (with its newline), rotating first when due.
func (r *rotatingFile) write(line []byte) error {
	full := r.maxBytes > 0 && r.size > 0 && r.size+int64(len(line)) > r.maxBytes
	old := r.maxAge > 0 && r.size > 0 && r.now().Sub(r.opened) >= r.maxAge
	if full || old {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	return err
}

func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("cdr.file: %w", err)
	}
	aside := r.path + "." + r.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(r.path, aside); err != nil {
		// Keep appending to the same file rather than lose records.
		_ = r.open()
		return fmt.Errorf("cdr.file rotate: %w", err)
	}
	return r.open()
}

func (r *rotatingFile) sync() error  { return r.f.Sync() }
func (r *rotatingFile) close() error { return r.f.Close() }
