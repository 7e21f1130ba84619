package token

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// reloadCheck is how often a lookup looks whether a watched file changed
// (a variable for tests).
var reloadCheck = time.Second

// throttle lets one caller through per reloadCheck.
type throttle struct{ last atomic.Int64 }

func (t *throttle) start() { t.last.Store(time.Now().UnixNano()) }

func (t *throttle) due() bool {
	now, last := time.Now().UnixNano(), t.last.Load()
	return now-last >= int64(reloadCheck) && t.last.CompareAndSwap(last, now)
}

// readIfChanged reads path unless its modification time is still seen;
// data is nil when it did not change. what names the file in errors.
func readIfChanged(what, path string, seen time.Time) (data []byte, mod time.Time, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, seen, fmt.Errorf("%s: %w", what, err)
	}
	if !seen.IsZero() && st.ModTime().Equal(seen) {
		return nil, seen, nil
	}
	if data, err = os.ReadFile(path); err != nil {
		return nil, seen, fmt.Errorf("%s: %w", what, err)
	}
	return data, st.ModTime(), nil
}
