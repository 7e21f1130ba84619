package configs

import (
	"net/url"
	"path/filepath"
	"time"
)

// CDR is where call detail records go (internal/cdr): a JSON line per call
// to File, and a POST per call to Webhook through a spool on disk.
type CDR struct {
	File        string        `yaml:"file"`
	RotateBytes int64         `yaml:"rotate_bytes"`
	RotateEvery time.Duration `yaml:"rotate_every"`
	Webhook     string        `yaml:"webhook"`
	// WebhookToken (or the contents of WebhookTokenFile) goes as
	// "Authorization: Bearer".
	WebhookToken     string `yaml:"webhook_token"`
	WebhookTokenFile string `yaml:"webhook_token_file"`
	SpoolDir         string `yaml:"spool_dir"`
	SpoolMax         int    `yaml:"spool_max"`
}

// DefaultCDRRotateBytes is cdr.rotate_bytes when left out.
const DefaultCDRRotateBytes = 100 << 20

func (c *Config) validateCDR() error {
	d := c.CDR
	if d.RotateBytes < 0 {
		return keyErr("cdr.rotate_bytes", "%d is negative", d.RotateBytes)
	}
	if d.RotateEvery < 0 {
		return keyErr("cdr.rotate_every", "%s is negative", d.RotateEvery)
	}
	if d.SpoolMax < 0 {
		return keyErr("cdr.spool_max", "%d is negative", d.SpoolMax)
	}
	if d.Webhook == "" {
		return nil
	}
	u, err := url.Parse(d.Webhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return keyErr("cdr.webhook", "%q is not an http or https URL", d.Webhook)
	}
	if d.SpoolDir == "" {
		return keyErr("cdr.spool_dir", "needed with cdr.webhook: records wait there until the webhook takes them")
	}
	if d.File != "" && filepath.Clean(filepath.Dir(d.File)) == filepath.Clean(d.SpoolDir) {
		return keyErr("cdr.spool_dir", "%s holds cdr.file: give the spool a directory of its own", d.SpoolDir)
	}
	return checkSecret("cdr.webhook_token", "cdr.webhook_token_file", d.WebhookToken, d.WebhookTokenFile)
}

// BearerToken is cdr.webhook_token, or the contents of
// cdr.webhook_token_file.
func (d CDR) BearerToken() (string, error) {
	return readSecret("cdr.webhook_token_file", d.WebhookToken, d.WebhookTokenFile)
}
