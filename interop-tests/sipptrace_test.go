//go:build interop

package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sippDir is a traced message's direction, seen from SIPp.
type sippDir int

const (
	sippUnknown sippDir = iota
	sippSent
	sippReceived
)

func (d sippDir) String() string {
	switch d {
	case sippSent:
		return "sent"
	case sippReceived:
		return "received"
	default:
		return "unknown"
	}
}

// sippMsg is one message of a SIPp -trace_msg file.
type sippMsg struct {
	at    time.Time
	dir   sippDir
	first string // start line
	text  string // the message, as traced
	// dropped: SIPp discarded it as lost (lost= on the step it matched).
	dropped bool
}

func (m sippMsg) header(name string) string {
	for _, l := range strings.Split(m.text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(l, "\r"), ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (m sippMsg) cseqMethod() string {
	f := strings.Fields(m.header("CSeq"))
	if len(f) != 2 {
		return ""
	}
	return f[1]
}

type sippTrace []sippMsg

const sippTraceRule = "----------------------------------------------- "

// readSIPpTrace parses artifacts/<test>/<file>, written by SIPp's -trace_msg:
// each message follows a rule line with its time and a line saying
// "UDP message sent (N bytes):" or "UDP message received [N] bytes :".
func readSIPpTrace(t *testing.T, file string) sippTrace {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(artifactDir(t), file))
	if err != nil {
		t.Fatalf("read SIPp trace: %v", err)
	}
	var tr sippTrace
	var cur *sippMsg
	var body []string
	flush := func() {
		if cur == nil {
			return
		}
		cur.text = strings.Join(body, "\n")
		for _, l := range body {
			if cur.first == "" && strings.TrimSpace(l) != "" {
				cur.first = strings.TrimSpace(l)
			}
			if strings.Contains(l, "message lost (recv).") {
				cur.dropped = true
			}
		}
		tr = append(tr, *cur)
		cur, body = nil, nil
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r")
		stamp, isRule := strings.CutPrefix(l, sippTraceRule)
		if !isRule {
			if cur != nil {
				body = append(body, l)
			}
			continue
		}
		flush()
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000000", strings.TrimSpace(stamp), time.Local)
		if err != nil || i+1 >= len(lines) {
			continue // a rule SIPp writes for other notes
		}
		kind := lines[i+1]
		m := sippMsg{at: at}
		switch {
		case strings.Contains(kind, "message sent"):
			m.dir = sippSent
		case strings.Contains(kind, "message received"):
			m.dir = sippReceived
		default:
			continue
		}
		i++
		cur = &m
	}
	flush()
	return tr
}

// filter keeps the messages of dir whose start line begins with prefix and
// whose CSeq names method.
func (tr sippTrace) filter(dir sippDir, prefix, method string) sippTrace {
	var out sippTrace
	for _, m := range tr {
		if m.dir == dir && strings.HasPrefix(m.first, prefix) && m.cseqMethod() == method {
			out = append(out, m)
		}
	}
	return out
}

func (tr sippTrace) lost() sippTrace {
	var out sippTrace
	for _, m := range tr {
		if m.dropped {
			out = append(out, m)
		}
	}
	return out
}

// sipPacket is one SIP message tshark saw on the wire.
type sipPacket struct {
	at         time.Time
	src, dst   int    // UDP ports
	method     string // request method; "" for a response
	status     int    // response status; 0 for a request
	cseqMethod string
	cseq       int
	toTag      string
	ruri       string
	branch     string // top Via's
}

func (p sipPacket) String() string {
	what := p.method + " " + p.ruri
	if p.status != 0 {
		what = fmt.Sprintf("%d (%s)", p.status, p.cseqMethod)
	}
	return fmt.Sprintf("%s %d->%d %s to-tag=%s", p.at.Format("15:04:05.000"), p.src, p.dst, what, p.toTag)
}

type sipPackets []sipPacket

// sipPackets lists the SIP over UDP a stopped capture holds to or from
// port (decoded as SIP whatever the port).
func (c *capture) sipPackets(t *testing.T, port int) sipPackets {
	t.Helper()
	out, err := exec.Command("tshark", "-r", c.file, "-n", "-d", fmt.Sprintf("udp.port==%d,sip", port),
		"-Y", fmt.Sprintf("sip && udp.port == %d", port), "-T", "fields", "-E", "separator=|", "-E", "occurrence=f",
		"-e", "frame.time_epoch", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "sip.Method",
		"-e", "sip.Status-Code", "-e", "sip.CSeq.method", "-e", "sip.to.tag", "-e", "sip.r-uri", "-e", "sip.Via.branch", "-e", "sip.CSeq.seq").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", c.file, err)
	}
	var pkts sipPackets
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 10 {
			continue
		}
		epoch, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		p := sipPacket{at: time.Unix(0, int64(epoch*1e9)), method: f[3], cseqMethod: f[5], toTag: f[6], ruri: f[7], branch: f[8]}
		p.src, _ = strconv.Atoi(f[1])
		p.dst, _ = strconv.Atoi(f[2])
		p.status, _ = strconv.Atoi(f[4])
		p.cseq, _ = strconv.Atoi(f[9])
		pkts = append(pkts, p)
	}
	return pkts
}

// from keeps the packets sent from port.
func (ps sipPackets) from(port int) sipPackets {
	return ps.keep(func(p sipPacket) bool { return p.src == port })
}

// to keeps the packets sent to port.
func (ps sipPackets) to(port int) sipPackets {
	return ps.keep(func(p sipPacket) bool { return p.dst == port })
}

func (ps sipPackets) requests(method string) sipPackets {
	return ps.keep(func(p sipPacket) bool { return p.method == method })
}

func (ps sipPackets) responses(status int, cseqMethod string) sipPackets {
	return ps.keep(func(p sipPacket) bool { return p.status == status && p.cseqMethod == cseqMethod })
}

func (ps sipPackets) keep(f func(sipPacket) bool) sipPackets {
	var out sipPackets
	for _, p := range ps {
		if f(p) {
			out = append(out, p)
		}
	}
	return out
}

func (ps sipPackets) first() time.Time {
	if len(ps) == 0 {
		return time.Time{}
	}
	return ps[0].at
}

// offsets lists each packet's time after from, "+0.000s".
func (ps sipPackets) offsets(from time.Time) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("+%.3fs", p.at.Sub(from).Seconds()))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (ps sipPackets) String() string {
	var sb strings.Builder
	sb.WriteString("SIP on the wire:\n")
	for _, p := range ps {
		sb.WriteString("  " + p.String() + "\n")
	}
	return sb.String()
}
