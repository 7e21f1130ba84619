package token

import (
	"path"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what a token says of its session, beside the registered
// claims (sub, exp, aud, iss):
//
//	scope          "calls", "messages" or both, space-separated (RFC 8693
//	               style); absent: both
//	dest           destination patterns the session may reach (shell
//	               patterns on "user@host" or on the user alone, e.g.
//	               "+1555*" or "*@pbx.example.com"); absent: any
//	click_to_call  the only destinations a token with no SIP identity may
//	               call, under an identity of the gateway's pool
type Claims struct {
	jwt.RegisteredClaims
	Scope       string   `json:"scope,omitempty"`
	Dest        []string `json:"dest,omitempty"`
	ClickToCall []string `json:"click_to_call,omitempty"`
}

// What a session may do.
const (
	ScopeCalls    = "calls"
	ScopeMessages = "messages"
)

// Allows tells whether the token's scope includes ability (ScopeCalls or
// ScopeMessages).
func (c Claims) Allows(ability string) bool {
	if strings.TrimSpace(c.Scope) == "" {
		return true
	}
	for _, s := range strings.Fields(c.Scope) {
		if s == ability {
			return true
		}
	}
	return false
}

// MayReach tells whether a destination (user and host of its URI) is one
// the token allows: click-to-call lists win, else dest patterns, else any.
func (c Claims) MayReach(user, host string) bool {
	list := c.Dest
	if len(c.ClickToCall) > 0 {
		list = c.ClickToCall
	}
	return len(list) == 0 || MatchesDestination(list, user, host)
}

// MatchesDestination tells whether a destination (user and host of its
// URI) matches one of patterns: shell patterns on the user alone or on
// "user@host", an optional sip: or tel: prefix ignored. The gateway's
// destination denylist reads the same patterns.
func MatchesDestination(patterns []string, user, host string) bool {
	full := user + "@" + strings.ToLower(host)
	for _, p := range patterns {
		if matches(p, user) || matches(p, full) {
			return true
		}
	}
	return false
}

// IsClickToCall: the token stands for no SIP identity of its own.
func (c Claims) IsClickToCall() bool { return len(c.ClickToCall) > 0 }

// matches is a shell pattern match; a pattern that does not parse
// matches nothing.
func matches(pattern, s string) bool {
	ok, err := path.Match(strings.TrimPrefix(strings.TrimPrefix(pattern, "sip:"), "tel:"), s)
	return err == nil && ok
}
