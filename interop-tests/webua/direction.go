package webua

import "strings"

// Direction is an m-line's media direction (RFC 3264 §5.1, §6.1).
type Direction string

const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

func (d Direction) sends() bool    { return d == SendRecv || d == SendOnly }
func (d Direction) receives() bool { return d == SendRecv || d == RecvOnly }

// reverse is the direction as the other end sees it.
func (d Direction) reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	}
	return d
}

// answerDirection is what an answerer wanting want answers to an offer of
// offered (RFC 3264 §6.1): it may only narrow the reverse of the offer.
func answerDirection(want, offered Direction) Direction {
	r := offered.reverse()
	s, v := want.sends() && r.sends(), want.receives() && r.receives()
	return directionOf(s, v)
}

func directionOf(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	}
	return Inactive
}

func isDirection(attr string) bool {
	switch Direction(attr) {
	case SendRecv, SendOnly, RecvOnly, Inactive:
		return true
	}
	return false
}

// DirectionOf reads the first audio m-line's direction in sdp: its own
// attribute, else the session-level one, else sendrecv (RFC 3264 §5.1).
func DirectionOf(sdp string) Direction {
	session, media := Direction(""), Direction("")
	inAudio, seenAudio := false, false
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "m=") {
			if seenAudio {
				break
			}
			inAudio = strings.HasPrefix(line, "m=audio ")
			seenAudio = inAudio
			continue
		}
		attr, ok := strings.CutPrefix(line, "a=")
		if !ok || !isDirection(attr) {
			continue
		}
		switch {
		case inAudio:
			media = Direction(attr)
		case !seenAudio:
			session = Direction(attr)
		}
	}
	switch {
	case media != "":
		return media
	case session != "":
		return session
	}
	return SendRecv
}

// withDirection rewrites sdp so every m-line says d, as JsSIP mangles its
// hold offers: session-level direction lines go, and each media section
// gets exactly one, where it had one or else at its end (RFC 4566 keeps
// a= lines last).
func withDirection(sdp string, d Direction) string {
	lines := strings.Split(strings.TrimRight(sdp, "\r\n"), "\r\n")
	out := make([]string, 0, len(lines)+2)
	inMedia, placed := false, false
	for _, line := range lines {
		if strings.HasPrefix(line, "m=") {
			if inMedia && !placed {
				out = append(out, "a="+string(d))
			}
			inMedia, placed = true, false
		}
		if attr, ok := strings.CutPrefix(line, "a="); ok && isDirection(attr) {
			if inMedia && !placed {
				out = append(out, "a="+string(d))
				placed = true
			}
			continue
		}
		out = append(out, line)
	}
	if inMedia && !placed {
		out = append(out, "a="+string(d))
	}
	return strings.Join(out, "\r\n") + "\r\n"
}

// originOf returns the o= line's session id and version, which tell a
// repeated description from a new one (RFC 3264 §8).
func originOf(sdp string) string {
	for _, line := range strings.Split(sdp, "\n") {
		if o, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "o="); ok {
			if f := strings.Fields(o); len(f) >= 3 {
				return f[1] + " " + f[2]
			}
		}
	}
	return ""
}
