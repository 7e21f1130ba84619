package load

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxSources bounds a range so a typo cannot allocate millions of entries.
const maxSources = 4096

// ParseSources reads "127.0.0.1-127.0.0.8", "127.0.0.1,127.0.0.5" or a mix
// into a list of IPv4 source addresses. Empty means none (system's choice).
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil || !first.Is4() {
			return nil, fmt.Errorf("%w: source %q: want an IPv4 address", ErrBadFlag, lo)
		}
		if !isRange {
			out = append(out, first)
			continue
		}
		last, err := netip.ParseAddr(strings.TrimSpace(hi))
		if err != nil || !last.Is4() || last.Less(first) {
			return nil, fmt.Errorf("%w: source range %q", ErrBadFlag, part)
		}
		for a := first; ; a = a.Next() {
			out = append(out, a)
			if len(out) > maxSources {
				return nil, fmt.Errorf("%w: more than %d source addresses", ErrBadFlag, maxSources)
			}
			if a == last {
				break
			}
		}
	}
	return out, nil
}

// ParsePids reads "123,456".
func ParsePids(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pid, err := strconv.Atoi(part)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%w: pid %q", ErrBadFlag, part)
		}
		out = append(out, pid)
	}
	return out, nil
}
