package configs

// Admin is the operator's own listener: Prometheus metrics, and health for
// probes and load balancers.
type Admin struct {
	// Listen is the host:port of /metrics, /healthz and /readyz; "off"
	// serves none. Loopback by default: put it elsewhere with a token.
	Listen string `yaml:"listen"`
	// Token, when set (or read from TokenFile), is the bearer token
	// /metrics asks for; /healthz and /readyz stay open for probes.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// TimelineCalls is how many ended calls keep their timeline for
	// /api/calls (besides the calls up now).
	TimelineCalls int `yaml:"timeline_calls"`
	// StatusLibDir is where the status page's charting library (uPlot
	// from npm) is read from.
	StatusLibDir string `yaml:"status_lib_dir"`
}

// DefaultStatusLibDir is admin.status_lib_dir when the file leaves it out.
const DefaultStatusLibDir = "cmd/imsgate/statuspage/node_modules/uplot/dist"

// DefaultTimelineCalls is admin.timeline_calls when the file leaves it out.
const DefaultTimelineCalls = 200

// AdminOff is the admin.listen value that serves no admin listener.
const AdminOff = "off"

// DefaultAdminListen is admin.listen when the file leaves it out.
const DefaultAdminListen = "127.0.0.1:9460"

func (c *Config) validateAdmin() error {
	a := c.Admin
	if a.TimelineCalls < 0 {
		return keyErr("admin.timeline_calls", "%d is negative", a.TimelineCalls)
	}
	if a.Listen == AdminOff {
		return nil
	}
	if err := checkHostPort("admin.listen", a.Listen); err != nil {
		return err
	}
	return checkSecret("admin.token", "admin.token_file", a.Token, a.TokenFile)
}

// BearerToken is admin.token, or the contents of admin.token_file.
func (a Admin) BearerToken() (string, error) {
	return readSecret("admin.token_file", a.Token, a.TokenFile)
}
