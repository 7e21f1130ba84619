package cdr

import (
	"fmt"
	"os"
	"path/filepath"
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

	f      *os.File // nil after a failed reopen: the next write tries again
	size   int64
	opened time.Time
	// retryRotate is when a rotation that failed may be tried again; until
	// then lines go on into the current file.
	retryRotate time.Time
}

// rotateRetry is how long lines go on into the same file after a rotation
// failed (the directory not writable, the name taken).
const rotateRetry = time.Minute

func openRotating(path string, maxBytes int64, maxAge time.Duration, now func() time.Time) (*rotatingFile, error) {
	r := &rotatingFile{path: path, maxBytes: maxBytes, maxAge: maxAge, now: now}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *rotatingFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o750); err != nil {
		return fmt.Errorf("cdr.file: %w", err)
	}
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

// write appends line (with its newline), rotating first when due. A
// rotation that fails is reported (rotateErr) but the line is written
// anyway, to the file as it is.
func (r *rotatingFile) write(line []byte) (rotateErr, err error) {
	now := r.now()
	full := r.maxBytes > 0 && r.size > 0 && r.size+int64(len(line)) > r.maxBytes
	old := r.maxAge > 0 && r.size > 0 && now.Sub(r.opened) >= r.maxAge
	if r.f != nil && (full || old) && !now.Before(r.retryRotate) {
		if rotateErr = r.rotate(); rotateErr != nil {
			r.retryRotate = now.Add(rotateRetry)
		}
	}
	if r.f == nil {
		if err := r.open(); err != nil {
			return rotateErr, err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	return rotateErr, err
}

// rotate moves the file aside and opens a new one; when the move fails
// the old file is opened again.
func (r *rotatingFile) rotate() error {
	err := r.f.Close()
	r.f = nil
	if err == nil {
		aside := r.path + "." + r.now().UTC().Format("20060102T150405.000000000Z")
		err = os.Rename(r.path, aside)
	}
	if oerr := r.open(); oerr != nil {
		return oerr
	}
	if err != nil {
		return fmt.Errorf("cdr.file rotate: %w", err)
	}
	return nil
}

func (r *rotatingFile) sync() error {
	if r.f == nil {
		return nil
	}
	return r.f.Sync()
}

func (r *rotatingFile) close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}
