package token

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStore(t *testing.T) {
	defer func(d time.Duration) { reloadCheck = d }(reloadCheck)
	reloadCheck = 0
	path := filepath.Join(t.TempDir(), "credentials.yaml")
	write := func(s string, at time.Time) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(path, at, at)
	}
	now := time.Now()
	write(`subjects:
  alice@example.com: {aor: "sip:+15551230001@ims.example.com", username: "+15551230001@ims.example.com", password: "pw1", realm: ims.example.com}
click_to_call:
  - {aor: "sip:web1@pbx.example.com", username: web1, password: pw2}
`, now)
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := s.Lookup("alice@example.com")
	if !ok || id.Password != "pw1" || id.Realm != "ims.example.com" {
		t.Fatalf("lookup %+v %v", id, ok)
	}
	if _, ok := s.Lookup("mallory"); ok {
		t.Fatal("an unknown subject has no identity")
	}
	if pool := s.Pool(); len(pool) != 1 || pool[0].Username != "web1" {
		t.Fatalf("pool %+v", pool)
	}
	// Changed: read again. Broken: the old contents stay.
	write("subjects:\n  bob: {aor: \"sip:bob@x\", username: bob, password: pw3}\n", now.Add(time.Minute))
	if _, ok := s.Lookup("bob"); !ok {
		t.Fatal("the changed file was not read")
	}
	write("subjects:\n  bob: {aor: \"bob@x\", username: bob, password: pw3}\n", now.Add(2*time.Minute))
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "subjects[bob]") {
		t.Fatalf("a bad entry must be named: %v", err)
	}
	if _, ok := s.Lookup("bob"); !ok {
		t.Fatal("a broken file dropped the store")
	}
}

func TestStoreRefusesBadFiles(t *testing.T) {
	for name, body := range map[string]string{
		"unknown key":   "subject:\n  a: {}\n",
		"no password":   "subjects:\n  a: {aor: \"sip:a@x\", username: a}\n",
		"not a sip uri": "click_to_call:\n  - {aor: \"tel:+1\", username: a, password: b}\n",
		"not yaml":      "{{{",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenStore(path); err == nil {
				t.Fatal("want an error")
			}
		})
	}
	path := filepath.Join(t.TempDir(), "empty.yaml")
	_ = os.WriteFile(path, nil, 0o600)
	if _, err := OpenStore(path); err != nil {
		t.Fatalf("an empty file is an empty store: %v", err)
	}
}
