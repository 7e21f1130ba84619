package sipws

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// flowBytes of randomness give 24 base32 characters: enough that flows are
// unguessable, short enough for a SIP URI user part.
const flowBytes = 15

var flowEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newFlow returns a random token of [a-z2-7] (a subset of [a-z0-9]) so it
// can sit in a SIP URI user part or parameter without escaping.
func newFlow() string {
	b := make([]byte, flowBytes)
	// crypto/rand.Read never returns an error (Go 1.24+); it aborts the
	// program instead if the system has no randomness.
	_, _ = rand.Read(b)
	return strings.ToLower(flowEncoding.EncodeToString(b))
}
