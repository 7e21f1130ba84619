package cdr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// spool keeps the records still to be POSTed, one file each, named so
// that their order is the order they were written in.
type spool struct {
	dir  string
	max  int
	seq  atomic.Uint64
	held atomic.Int64 // files in the spool, as this process counts them
}

// Spooled records are cdr-<time>-<seq>.json; nothing else in the
// directory is read or removed.
const (
	spoolPrefix = "cdr-"
	spoolSuffix = ".json"
)

var errSpoolFull = errors.New("cdr spool full")

func openSpool(dir string, max int) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cdr.spool_dir: %w", err)
	}
	s := &spool{dir: dir, max: max}
	names, err := s.list()
	if err != nil {
		return nil, err
	}
	s.held.Store(int64(len(names)))
	// Leftovers of a write a crash cut short.
	tmps, _ := filepath.Glob(filepath.Join(dir, ".tmp-"+spoolPrefix+"*"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return s, nil
}

// put stores body durably: written to a temporary file, synced, renamed.
func (s *spool) put(body []byte, now time.Time) error {
	if s.max > 0 && s.held.Load() >= int64(s.max) {
		return errSpoolFull
	}
	name := fmt.Sprintf("%s%020d-%06d%s", spoolPrefix, now.UnixNano(), s.seq.Add(1)%1000000, spoolSuffix)
	tmp := filepath.Join(s.dir, ".tmp-"+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("cdr spool: %w", err)
	}
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cdr spool: %w", err)
	}
	s.held.Add(1)
	return nil
}

// list is the spooled records' names, oldest first.
func (s *spool) list() ([]string, error) {
	entries, err := os.ReadDir(s.dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("cdr spool: %w", err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, spoolPrefix) && strings.HasSuffix(n, spoolSuffix) {
			names = append(names, n)
		}
	}
	return names, nil
}

func (s *spool) read(name string) ([]byte, error) { return os.ReadFile(filepath.Join(s.dir, name)) }

// syncDir makes the renames of put durable (a power cut could otherwise
// bring a record back as a temporary file, which openSpool removes).
func (s *spool) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// recount sets the count from the directory: files removed by hand must
// not keep the spool "full".
func (s *spool) recount(names []string) { s.held.Store(int64(len(names))) }

// reject moves a record the webhook refused for good into rejected/, for
// an operator to look at; it no longer holds up the records behind it.
func (s *spool) reject(name string) error {
	dir := filepath.Join(s.dir, "rejected")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(s.dir, name), filepath.Join(dir, name)); err != nil {
		return err
	}
	s.held.Add(-1)
	return nil
}

func (s *spool) remove(name string) error {
	err := os.Remove(filepath.Join(s.dir, name))
	switch {
	case err == nil:
		s.held.Add(-1)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	return nil
}
