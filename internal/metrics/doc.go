// Package metrics is the gateway's Prometheus metrics: one registry with
// the Go runtime and process collectors, a call observer for what happens
// to calls (started, ended by reason, setup time, post-dial delay), and
// collectors that read the other parts' own counters at scrape time, so
// nothing on a packet or message path does more than it did.
//
// Names follow Prometheus conventions: an imsgate_ prefix, units in the
// name (_seconds, _bytes), _total for counters, and no per-call labels.
package metrics
