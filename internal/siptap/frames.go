package siptap

import (
	"bytes"
	"strconv"
	"sync"
	"time"
)

// sipgo traces a TCP or TLS connection's reads as they came: a read may
// hold part of a message, or several. streams puts them back together by
// connection, bounded: a connection's buffer holds at most maxStreamBuf
// (past it the buffer is dropped, as a transport would drop the
// connection), at most maxStreams connections are followed, and one silent
// for streamIdle is forgotten.
type streams struct {
	mu   sync.Mutex
	bufs map[string]*stream
}

type stream struct {
	buf  []byte
	last time.Time
}

const (
	maxStreamBuf = 256 << 10
	maxStreams   = 4096
	streamIdle   = 2 * time.Minute
)

// feed adds what connection key read and returns the whole messages it
// completes, keepalive CRLFs left out.
func (s *streams) feed(key string, chunk []byte, now time.Time) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.bufs[key]
	if st == nil {
		if s.bufs == nil {
			s.bufs = map[string]*stream{}
		}
		if len(s.bufs) >= maxStreams {
			s.forgetIdle(now)
		}
		if len(s.bufs) >= maxStreams {
			return nil
		}
		st = &stream{}
		s.bufs[key] = st
	}
	st.last = now
	st.buf = append(st.buf, chunk...)
	var msgs [][]byte
	for {
		st.buf = bytes.TrimLeft(st.buf, "\r\n")
		n, ok := messageLen(st.buf)
		if !ok {
			break
		}
		msgs = append(msgs, bytes.Clone(st.buf[:n]))
		st.buf = st.buf[n:]
	}
	if len(st.buf) == 0 || len(st.buf) > maxStreamBuf {
		delete(s.bufs, key)
	}
	return msgs
}

func (s *streams) forgetIdle(now time.Time) {
	for k, st := range s.bufs {
		if now.Sub(st.last) > streamIdle {
			delete(s.bufs, k)
		}
	}
}

// messageLen is the length of the whole message at the start of b, by its
// blank line and Content-Length (RFC 3261 §18.3); false while it is not all
// there.
func messageLen(b []byte) (int, bool) {
	end, sep := bytes.Index(b, []byte("\r\n\r\n")), 4
	if bare := bytes.Index(b, []byte("\n\n")); bare >= 0 && (end < 0 || bare < end) {
		end, sep = bare, 2
	}
	if end < 0 {
		return 0, false
	}
	body := 0
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		name = bytes.TrimSpace(name)
		if bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("l")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil || n < 0 {
				return end + sep, true // a broken length: the head alone
			}
			body = n
		}
	}
	if len(b) < end+sep+body {
		return 0, false
	}
	return end + sep + body, true
}
