package configs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOperatorKeysNamed: admin, cdr and upstream failover keys that
// cannot work are refused with their names (the upstream ones continue
// base's upstream section).
func TestOperatorKeysNamed(t *testing.T) {
	base := "upstream:\n  proxy: sip:127.0.0.1:5060\n  domain: imsgate.test\n"
	for _, tc := range []struct{ name, yaml, key string }{
		{"admin listen", "admin:\n  listen: nowhere\n", "admin.listen"},
		{"admin tokens both", "admin:\n  token: a\n  token_file: /x\n", "admin.token_file"},
		{"admin token file missing", "admin:\n  token_file: /nonexistent\n", "admin.token_file"},
		{"webhook not a URL", "cdr:\n  webhook: ftp://x\n  spool_dir: /tmp/s\n", "cdr.webhook"},
		{"hep address not host:port", "hep:\n  address: homer\n", "hep.address"},
		{"hep id without an address", "hep:\n  id: 2001\n", "hep.address"},
		{"webhook without spool", "cdr:\n  webhook: https://cdr.example.net/\n", "cdr.spool_dir"},
		{"negative size", "cdr:\n  file: /tmp/cdr\n  rotate_bytes: -1\n", "cdr.rotate_bytes"},
		{"negative age", "cdr:\n  file: /tmp/cdr\n  rotate_every: -1h\n", "cdr.rotate_every"},
		{"file in the spool", "cdr:\n  file: /var/lib/imsgate/cdr.json\n  webhook: https://x/\n  spool_dir: /var/lib/imsgate/\n", "cdr.spool_dir"},
		{"empty token file", "admin:\n  token_file: /dev/null\n", "admin.token_file"},
		{"fallback not a URI", "  fallback: [\"sip:127.0.0.2:5060\", \"pcscf\"]\n", "upstream.fallback[1]"},
		{"fallback of another transport", "  fallback: [\"sip:127.0.0.2:5060;transport=tcp\"]\n", "upstream.fallback[0]"},
		{"fallback without keepalive", "  fallback: [\"sip:127.0.0.2:5060\"]\n  keepalive_interval: 0s\n", "upstream.keepalive_interval"},
		{"webhook tokens both", "cdr:\n  webhook: https://x/\n  spool_dir: /tmp/s\n  webhook_token: a\n  webhook_token_file: /x\n", "cdr.webhook_token_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.yaml))
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key {
				t.Fatalf("got %v, want a KeyError for %s", err, tc.key)
			}
		})
	}
	t.Run("token files read", func(t *testing.T) {
		dir := t.TempDir()
		for name, v := range map[string]string{"admin": "admin-secret\n", "hook": "hook-secret\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := Parse([]byte(base + "admin:\n  token_file: " + dir + "/admin\ncdr:\n  webhook: https://x/\n  spool_dir: /tmp/s\n  webhook_token_file: " + dir + "/hook\n"))
		if err != nil {
			t.Fatal(err)
		}
		admin, err1 := cfg.Admin.BearerToken()
		hook, err2 := cfg.CDR.BearerToken()
		if admin != "admin-secret" || hook != "hook-secret" || err1 != nil || err2 != nil {
			t.Errorf("tokens %q %q (%v %v)", admin, hook, err1, err2)
		}
		if cfg.Admin.Listen != DefaultAdminListen || cfg.CDR.RotateBytes != DefaultCDRRotateBytes {
			t.Errorf("defaults %q %d", cfg.Admin.Listen, cfg.CDR.RotateBytes)
		}
	})
}
