// Package hostkey names the range of addresses one client host is counted
// by in the gateway's per-source limits: its IPv4 address, or the /64 of
// its IPv6 one, which one host commonly holds whole.
package hostkey

import "net/netip"

// Of is ip's host range (IPv4-mapped addresses as IPv4).
func Of(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}
