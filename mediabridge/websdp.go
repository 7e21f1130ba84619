package mediabridge

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// hostCandidatePriority is RFC 8445 §5.1.2.1 for a host candidate:
// type preference 126, local preference 65535, component 1.
const hostCandidatePriority = 126<<24 | 65535<<8 | (256 - 1)

// tcpHostCandidatePriority is RFC 6544 §4.2 for a passive TCP host
// candidate: a type preference below UDP's host (90, as browsers give
// theirs), local preference 2^13 × direction-pref 4 (passive) + other-pref
// 8191, component 1. A browser that reaches both prefers UDP.
const tcpHostCandidatePriority = 90<<24 | (4<<13|8191)<<8 | (256 - 1)

// webTransport is what a browser SDP says about its DTLS/ICE transport.
type webTransport struct {
	fingerprint remoteFingerprint
	setup       string // actpass, active, passive
	mid         string
	rtcpRsize   bool
	ufrag       string // ice-ufrag: a new one is an ICE restart
	tlsID       string // a=tls-id (RFC 8842): a new one is a new DTLS association
}

// parseWebTransport reads the audio section's transport attributes, with
// session-level fallbacks (RFC 8122 §5 allows either level).
func parseWebTransport(sd *sdp.SessionDescription, md *sdp.MediaDescription) (webTransport, error) {
	var wt webTransport
	get := func(key string) (string, bool) {
		if v, ok := md.Attribute(key); ok {
			return v, true
		}
		return sd.Attribute(key)
	}
	fp, ok := get("fingerprint")
	if !ok {
		return wt, errNoFingerprint
	}
	if wt.fingerprint, ok = parseFingerprint(fp); !ok || wt.fingerprint.hash != "sha-256" {
		// Every browser offers sha-256; look for it among several lines.
		wt.fingerprint = remoteFingerprint{}
		for _, a := range append(append([]sdp.Attribute{}, md.Attributes...), sd.Attributes...) {
			if a.Key != "fingerprint" {
				continue
			}
			if f, ok := parseFingerprint(a.Value); ok && f.hash == "sha-256" {
				wt.fingerprint = f
				break
			}
		}
		if wt.fingerprint.hash == "" {
			return wt, errNoFingerprint
		}
	}
	wt.setup, _ = get("setup")
	if wt.setup == "" {
		wt.setup = "actpass" // RFC 4145 §4: the offerer's default is active; browsers always send it
	}
	wt.mid, _ = md.Attribute("mid")
	wt.ufrag, _ = get("ice-ufrag")
	wt.tlsID, _ = get("tls-id")
	_, wt.rtcpRsize = md.Attribute("rtcp-rsize")
	return wt, nil
}

// answerRole is our DTLS role and a=setup when answering setup (RFC 5763
// §5): passive to actpass or active, so the browser is the client.
func answerRole(offered string) (dtlsRole, string) {
	if offered == "passive" {
		return dtlsRoleClient, "active"
	}
	return dtlsRoleServer, "passive"
}

// offerRole is our DTLS role once the browser answered our actpass.
func offerRole(answered string) dtlsRole {
	if answered == "passive" {
		return dtlsRoleClient
	}
	return dtlsRoleServer
}

// webSDPParams is everything of ours that goes into a browser SDP.
type webSDPParams struct {
	sessionID uint64
	version   uint64
	publicIP  netip.Addr
	port      int // the UDP host candidate's; 0: none (a probe of ICE-TCP alone)
	tcpPort   int // the passive ICE-TCP candidate's; 0: none
	ufrag     string
	pwd       string
	cert      *dtlsCertificate
	setup     string
	mid       string
	rtcpRsize bool
	codecs    []codec
	dir       direction
	ssrc      uint32
	cname     string
	streamID  string
}

// audioMedia writes our audio m-section.
func (p webSDPParams) audioMedia() *sdp.MediaDescription {
	addrType, ip := sdpAddr(p.publicIP)
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: 9},
			Protos: []string{"UDP", "TLS", "RTP", "SAVPF"},
		},
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: ip}},
	}
	attr := func(k, v string) { md.Attributes = append(md.Attributes, sdp.Attribute{Key: k, Value: v}) }
	attr("mid", p.mid)
	attr("ice-ufrag", p.ufrag)
	attr("ice-pwd", p.pwd)
	attr("fingerprint", "sha-256 "+p.cert.fingerprint)
	attr("setup", p.setup)
	attr("rtcp-mux", "")
	if p.rtcpRsize {
		attr("rtcp-rsize", "")
	}
	for _, c := range p.codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.pt)))
		attr("rtpmap", c.rtpmap())
		fmtp := c.fmtp
		if c.isDTMF() && fmtp == "" {
			fmtp = dtmfEvents
		}
		if fmtp != "" {
			attr("fmtp", fmt.Sprintf("%d %s", c.pt, fmtp))
		}
	}
	attr(p.dir.String(), "")
	attr("msid", p.streamID+" audio")
	attr("ssrc", fmt.Sprintf("%d cname:%s", p.ssrc, p.cname))
	if p.port != 0 {
		attr("candidate", fmt.Sprintf("1 1 udp %d %s %d typ host", hostCandidatePriority, ip, p.port))
	}
	if p.tcpPort != 0 {
		// RFC 6544 §4.5: tcptype after the candidate type; a foundation of
		// its own, as the transport differs (RFC 8445 §5.1.1.3).
		attr("candidate", fmt.Sprintf("2 1 tcp %d %s %d typ host tcptype passive", tcpHostCandidatePriority, ip, p.tcpPort))
	}
	attr("end-of-candidates", "")
	return md
}

func sdpAddr(ip netip.Addr) (addrType, text string) {
	ip = ip.Unmap()
	if ip.Is6() {
		return "IP6", ip.String()
	}
	return "IP4", ip.String()
}

// webSessionDescription wraps media sections: ice-lite, and BUNDLE over
// the one audio mid (RFC 8843).
func (p webSDPParams) webSessionDescription(media []*sdp.MediaDescription) ([]byte, error) {
	addrType, ip := sdpAddr(p.publicIP)
	sd := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "imsgate", SessionID: p.sessionID, SessionVersion: p.version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: ip,
		},
		SessionName:      "imsgate",
		TimeDescriptions: []sdp.TimeDescription{{Timing: sdp.Timing{}}},
		Attributes: []sdp.Attribute{
			{Key: "group", Value: "BUNDLE " + p.mid},
			{Key: "ice-lite"},
			{Key: "msid-semantic", Value: " WMS " + p.streamID},
		},
		MediaDescriptions: media,
	}
	out, err := sd.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal web sdp: %w", err)
	}
	return out, nil
}

// build writes our description for the browser: our audio section in its
// place, every other m-line rejected with port 0 (RFC 3264 §6) and left
// out of BUNDLE (RFC 8843 §7.3.3).
func (p webSDPParams) build(l layout) ([]byte, error) {
	return p.webSessionDescription(l.sections(p.audioMedia()))
}

func rejectedMedia(offered *sdp.MediaDescription) *sdp.MediaDescription {
	formats := offered.MediaName.Formats
	if strings.Contains(strings.Join(offered.MediaName.Protos, "/"), "RTP") {
		formats = []string{"0"}
	}
	md := &sdp.MediaDescription{MediaName: sdp.MediaName{
		Media:   offered.MediaName.Media,
		Port:    sdp.RangedPort{Value: 0},
		Protos:  offered.MediaName.Protos,
		Formats: formats,
	}}
	if mid, ok := offered.Attribute("mid"); ok {
		md.Attributes = append(md.Attributes, sdp.Attribute{Key: "mid", Value: mid})
	}
	return md
}
