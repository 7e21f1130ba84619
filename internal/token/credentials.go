package token

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
)

// Identity is a SIP identity the gateway registers and authenticates as
// for a browser: the AoR (IMPU) and the digest credentials (IMPI and
// password) it answers the core's 401/407 with, for Realm only when set.
type Identity struct {
	AoR      string `yaml:"aor"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	Realm    string `yaml:"realm"`
}

// credentialsFile is the store's file: the identity of each token subject,
// and the pool of identities click-to-call sessions call under.
//
//	subjects:
//	  alice@example.com: {aor: "sip:+15551230001@ims.example.com", username: "+15551230001@ims.example.com", password: "..."}
//	click_to_call:
//	  - {aor: "sip:web1@pbx.example.com", username: web1, password: "..."}
type credentialsFile struct {
	Subjects    map[string]Identity `yaml:"subjects"`
	ClickToCall []Identity          `yaml:"click_to_call"`
}

// Store holds the credentials file, re-read when it changes (at most once
// per reloadCheck, by the lookup that notices); a file that no longer
// parses keeps what was read before.
type Store struct {
	path    string
	data    atomic.Pointer[storeData]
	checked throttle
	mu      sync.Mutex
}

type storeData struct {
	file    credentialsFile
	byAoR   map[string]Identity // every identity, subjects' and pool's, by AoR
	modTime time.Time
}

// OpenStore reads the credentials file; any problem in it is an error
// that names the entry.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	s.checked.start()
	return s, nil
}

// Lookup is the identity of a token's subject.
func (s *Store) Lookup(subject string) (Identity, bool) {
	s.reloadIfChanged()
	id, ok := s.data.Load().file.Subjects[subject]
	return id, ok
}

// Pool is the identities click-to-call sessions call under.
func (s *Store) Pool() []Identity {
	s.reloadIfChanged()
	return s.data.Load().file.ClickToCall
}

func (s *Store) reloadIfChanged() {
	if s.checked.due() {
		_ = s.Reload()
	}
}

// Reload re-reads the file if it changed since it was read.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var seen time.Time
	if old := s.data.Load(); old != nil {
		seen = old.modTime
	}
	raw, mod, err := readIfChanged("credentials file", s.path, seen)
	if err != nil || raw == nil {
		return err
	}
	var f credentialsFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // empty: an empty store
		return fmt.Errorf("credentials file %s: %w", s.path, err)
	}
	if err := f.check(); err != nil {
		return fmt.Errorf("credentials file %s: %w", s.path, err)
	}
	s.data.Store(&storeData{file: f, byAoR: f.byAoR(), modTime: mod})
	return nil
}

// ByAoR is the identity whose AoR is aor (compared as written, scheme and
// all), for a request that names its identity but not its subject.
func (s *Store) ByAoR(aor string) (Identity, bool) {
	s.reloadIfChanged()
	id, ok := s.data.Load().byAoR[strings.ToLower(aor)]
	return id, ok
}

func (f credentialsFile) byAoR() map[string]Identity {
	m := make(map[string]Identity, len(f.Subjects)+len(f.ClickToCall))
	for _, id := range f.Subjects {
		m[strings.ToLower(id.AoR)] = id
	}
	for _, id := range f.ClickToCall {
		m[strings.ToLower(id.AoR)] = id
	}
	return m
}

// check names the first entry that cannot work.
func (f credentialsFile) check() error {
	for sub, id := range f.Subjects {
		if err := id.check(); err != nil {
			return fmt.Errorf("subjects[%s]: %w", sub, err)
		}
	}
	for i, id := range f.ClickToCall {
		if err := id.check(); err != nil {
			return fmt.Errorf("click_to_call[%d]: %w", i, err)
		}
	}
	return nil
}

func (id Identity) check() error {
	switch {
	case !strings.HasPrefix(id.AoR, "sip:") && !strings.HasPrefix(id.AoR, "sips:"):
		return fmt.Errorf("aor %q is not a sip: or sips: URI", id.AoR)
	case id.Username == "" || id.Password == "":
		return errors.New("username and password are required")
	}
	return nil
}
