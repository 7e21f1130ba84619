package token

import (
	"errors"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Why a token is refused.
var (
	ErrMissing   = errors.New("no token")
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("bad token signature")
	ErrExpired   = errors.New("token expired")
	ErrNotYet    = errors.New("token not valid yet")
	ErrAudience  = errors.New("token for another audience")
	ErrIssuer    = errors.New("token from another issuer")
)

// Error is a refused token: the reason (one of the Err values) and a
// short text for the HTTP answer and the log.
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Kind }

// Status is the HTTP status of the refused upgrade: 401 for every token
// problem (RFC 6750 3.1, error="invalid_token").
func (e *Error) Status() int { return http.StatusUnauthorized }

// Challenge is the WWW-Authenticate of the refused upgrade (RFC 6750 3).
func (e *Error) Challenge() string {
	return `Bearer error="invalid_token", error_description="` + strings.ReplaceAll(e.Error(), `"`, "'") + `"`
}

func refused(kind error, detail string) *Error { return &Error{Kind: kind, Detail: detail} }

// classify turns the JWT library's verdict into ours.
func classify(err error) *Error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return refused(ErrExpired, "")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return refused(ErrNotYet, "")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return refused(ErrAudience, "")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return refused(ErrIssuer, "")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return refused(ErrSignature, "")
	}
	return refused(ErrMalformed, err.Error())
}

// WriteRefusal answers an HTTP request whose token does not do: the
// error's status (401 unless it says another) with its Bearer challenge
// (RFC 6750 §3). It returns the status written.
func WriteRefusal(w http.ResponseWriter, err error) int {
	status := http.StatusUnauthorized
	var st interface{ Status() int }
	if errors.As(err, &st) {
		status = st.Status()
	}
	var ch interface{ Challenge() string }
	if errors.As(err, &ch) {
		w.Header().Set("WWW-Authenticate", ch.Challenge())
	}
	http.Error(w, err.Error(), status)
	return status
}
