package configs

import (
	"errors"
	"testing"
)

// TestUpstreamByDomain: without upstream.proxy, upstream.domain is enough
// (RFC 3263 finds the servers); without either the proxy is named.
func TestUpstreamByDomain(t *testing.T) {
	if _, err := Parse([]byte("upstream:\n  domain: ims.example.net\n  dns_server: 127.0.0.1:53\n")); err != nil {
		t.Errorf("domain alone: %v", err)
	}
	for yaml, key := range map[string]string{
		"upstream:\n  invite_timeout: 10s\n":                        "upstream.proxy",
		"upstream:\n  domain: ims.example.net\n  dns_server: dns\n": "upstream.dns_server",
	} {
		_, err := Parse([]byte(yaml))
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Key != key {
			t.Errorf("%q: %v, want a KeyError for %s", yaml, err, key)
		}
	}
}
