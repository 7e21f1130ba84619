package natcheck

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Main is the command line front end: it parses args (without the
// program name), runs the tests and prints the result. It returns the
// exit code: 0 with a result, 1 when the run failed, 2 for bad flags.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imsgate natcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts Options
	fs.StringVar(&opts.Server, "stun", DefaultServer, "STUN `host:port`; with RFC 5780 (a second IP address) for mapping and filtering")
	fs.StringVar(&opts.Local, "local", "", "local `ip[:port]` to send from (default: the address routed toward the server)")
	fs.BoolVar(&opts.Lifetime, "lifetime", false, "also measure the binding lifetime (RFC 5780 section 4.6; takes minutes)")
	fs.DurationVar(&opts.LifetimeMax, "lifetime-max", DefaultLifetimeMax, "longest idle time the lifetime test tries")
	fs.DurationVar(&opts.Timeout, "timeout", DefaultTimeout, "wait for each answer, retransmissions included")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: imsgate natcheck [flags]\n\nTells the NAT between this host and a STUN server (RFC 5780) and what media needs.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imsgate natcheck: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if _, err := opts.normalize(); err != nil {
		fmt.Fprintf(stderr, "imsgate natcheck: %v\n", err)
		return 2
	}
	r, err := Run(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(stderr, "imsgate natcheck: %v\n", err)
		return 1
	}
	if *asJSON {
		if err := writeJSON(stdout, r); err != nil {
			fmt.Fprintf(stderr, "imsgate natcheck: %v\n", err)
			return 1
		}
		return 0
	}
	writeText(stdout, r, opts.Lifetime)
	return 0
}

// jsonResult is Result with the durations as text and the two summaries.
type jsonResult struct {
	Result
	BindingLifetime     string `json:"binding_lifetime,omitempty"`
	BindingLifetimeDead string `json:"binding_lifetime_dead,omitempty"`
	Classic             string `json:"classic"`
	Advice              string `json:"advice"`
}

func writeJSON(w io.Writer, r Result) error {
	j := jsonResult{Result: r, Classic: r.Classic(), Advice: r.Advice()}
	if r.BindingLifetime > 0 {
		j.BindingLifetime = r.BindingLifetime.String()
	}
	if r.BindingLifetimeDead > 0 {
		j.BindingLifetimeDead = r.BindingLifetimeDead.String()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}

func writeText(w io.Writer, r Result, lifetime bool) {
	line := func(k, v string) { fmt.Fprintf(w, "%-18s%s\n", k, v) }
	server := r.Server.String()
	if r.OtherAddress.IsValid() {
		server += " (other address " + r.OtherAddress.String() + ")"
	}
	line("STUN server", server)
	line("local address", r.Local.String())
	if r.UDPBlocked {
		line("UDP", "blocked: no answer")
	} else {
		line("mapped address", r.Mapped.String())
		line("behind NAT", yesNo(r.BehindNAT))
		line("mapping", r.Mapping.String()+" (RFC 4787/5780)")
		line("filtering", r.Filtering.String())
		line("hairpinning", r.Hairpinning.String())
		switch {
		case !lifetime:
			line("binding lifetime", "not measured (-lifetime)")
		case r.BindingLifetimeDead > 0:
			line("binding lifetime", fmt.Sprintf("at least %s (gone after %s)", round(r.BindingLifetime), round(r.BindingLifetimeDead)))
		case r.BindingLifetime > 0:
			line("binding lifetime", "at least "+round(r.BindingLifetime))
		default:
			line("binding lifetime", "unknown")
		}
	}
	line("classic type", r.Classic())
	line("advice", r.Advice())
	for _, n := range r.Notes {
		line("not determined", n.Test+": "+n.Reason)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func round(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
