package configs

import (
	"errors"
	"net/netip"
	"testing"
)

func TestNATKeysNamed(t *testing.T) {
	base := "upstream:\n  proxy: sip:127.0.0.1:5060\n  domain: imsgate.test\n"
	turn := "turn:\n  listen: 127.0.0.1:3478\n  users: [{username: u, password: p}]\n"
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"stun listen", "stun:\n  listen: x\n", "stun.listen"},
		{"alternate without listen", "stun:\n  alternate_ip: 127.0.0.2\n", "stun.alternate_ip"},
		{"alternate not an ip", "stun:\n  listen: 127.0.0.1:3478\n  alternate_ip: two\n", "stun.alternate_ip"},
		{"alternate with a wildcard listen", "stun:\n  listen: 0.0.0.0:3478\n  alternate_ip: 127.0.0.2\n", "stun.listen"},
		{"alternate is primary", "stun:\n  listen: 127.0.0.1:3478\n  alternate_ip: 127.0.0.1\n", "stun.alternate_ip"},
		{"alternate of another family", "stun:\n  listen: 127.0.0.1:3478\n  alternate_ip: \"::1\"\n", "stun.alternate_ip"},
		{"alternate port is listen's", "stun:\n  listen: 127.0.0.1:3478\n  alternate_ip: 127.0.0.2\n  alternate_port: 3478\n", "stun.alternate_port"},
		{"turn listen", "turn:\n  listen: nope\n", "turn.listen"},
		{"open relay", "turn:\n  listen: 127.0.0.1:3478\n", "turn.users"},
		{"user with colon", "turn:\n  listen: 127.0.0.1:3478\n  users: [{username: \"a:b\", password: p}]\n", "turn.users[0]"},
		{"tls without a cert", turn + "  tls_listen: 127.0.0.1:5349\n", "turn.tls_listen"},
		{"half a cert", turn + "  tls_listen: 127.0.0.1:5349\n  tls_cert: /x.pem\n", "turn.tls_cert"},
		{"both secrets", turn + "  secret: s\n  secret_file: /x\n", "turn.secret_file"},
		{"missing secret file", turn + "  secret_file: /nonexistent\n", "turn.secret_file"},
		{"relay ip", turn + "  relay_ip: here\n", "turn.relay_ip"},
		{"external ip", turn + "  external_ip: there\n", "turn.external_ip"},
		{"relay ports", turn + "  relay_ports: \"5\"\n", "turn.relay_ports"},
		{"relay ports in rtp", turn + "  relay_ports: \"20500-30000\"\n", "turn.relay_ports"},
		{"allowed peer", turn + "  allowed_peers: [10.0.0.0/8, lan]\n", "turn.allowed_peers[1]"},
		{"quota", turn + "  quota_per_user: 0\n", "turn.quota_per_user"},
		{"lifetime", turn + "  max_lifetime: 10s\n", "turn.max_lifetime"},
		{"lifetime over an hour", turn + "  max_lifetime: 2h\n", "turn.max_lifetime"},
		{"ttl", turn + "  credential_ttl: 0s\n", "turn.credential_ttl"},
		{"edge without a certificate", "edge:\n  listen: 127.0.0.1:8443\n", "ws.tls_cert"},
		{"edge listen", "edge:\n  listen: x\n", "edge.listen"},
		{"edge is ws.listen", "ws:\n  listen: 127.0.0.1:8443\nedge:\n  listen: 127.0.0.1:8443\n", "edge.listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base + tc.yaml))
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key {
				t.Fatalf("got %v, want a KeyError for %s", err, tc.key)
			}
		})
	}
	t.Run("realm needed", func(t *testing.T) {
		_, err := Parse([]byte("upstream:\n  proxy: sip:127.0.0.1:5060\n" + turn))
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != "turn.realm" {
			t.Fatalf("got %v, want turn.realm", err)
		}
	})
}

func TestNATDefaults(t *testing.T) {
	cfg, err := Parse([]byte("upstream:\n  proxy: sip:127.0.0.1:5060\n  domain: imsgate.test\n" +
		"stun:\n  listen: 127.0.0.1:3478\n  alternate_ip: 127.0.0.2\n" +
		"turn:\n  listen: 127.0.0.1:3479\n  secret: s3cret\n  allowed_peers: [127.0.0.1, 10.1.2.3/8]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.STUN.STUNAlternatePort(); p != 3479 {
		t.Errorf("alternate port %d, want listen + 1", p)
	}
	if cfg.TURNRealm() != "imsgate.test" {
		t.Errorf("realm %q, want upstream.domain", cfg.TURNRealm())
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	if got := cfg.TURN.TURNAllowedPeers(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("allowed peers %v, want %v", got, want)
	}
	if cfg.TURN.QuotaPerUser != 10 || cfg.TURN.RelayPorts != "49152-65535" {
		t.Errorf("defaults not applied: %+v", cfg.TURN)
	}
}
