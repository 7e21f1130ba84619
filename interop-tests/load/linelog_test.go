package load

import (
	"strings"
	"sync"
)

const lineLogKeep = 50

// lineLog keeps the last lines of a process's output for failure reports.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > lineLogKeep {
		l.lines = l.lines[len(l.lines)-lineLogKeep:]
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
