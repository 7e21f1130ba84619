package mediabridge

import (
	"bytes"
)

// Unchanged reports whether next describes the same session version as
// prev: the same `o=` username, session id and version (RFC 3264 §8: a
// description whose version did not change must not change the session).
// A session refresh (a re-INVITE or UPDATE that only keeps the dialog
// alive) repeats the last description this way. Either side lacking an
// `o=` line is a change.
func Unchanged(prev, next []byte) bool {
	a, okA := origin(prev)
	b, okB := origin(next)
	return okA && okB && bytes.Equal(a, b)
}

// origin returns the `o=` line of a session description without its
// address part: username, sess-id and sess-version (RFC 4566 §5.2).
func origin(sdp []byte) ([]byte, bool) {
	for len(sdp) > 0 {
		line := sdp
		if i := bytes.IndexByte(sdp, '\n'); i >= 0 {
			line, sdp = sdp[:i], sdp[i+1:]
		} else {
			sdp = nil
		}
		line = bytes.TrimRight(line, "\r")
		if !bytes.HasPrefix(line, []byte("o=")) {
			continue
		}
		fields := bytes.Fields(line[2:])
		if len(fields) < 3 {
			return nil, false
		}
		return bytes.Join(fields[:3], []byte(" ")), true
	}
	return nil, false
}
