package configs

import (
	"os"
	"strings"
	"time"
)

// Auth says how browsers are authorised.
type Auth struct {
	// Mode is "passthrough" (the browser answers the core's digest
	// challenges with its own SIP credentials) or "token" (the browser
	// presents a JWT at the WebSocket upgrade and the gateway answers the
	// core's challenges from auth.credentials_file).
	Mode string `yaml:"mode"`
	// Secret is the HS256 shared secret (at least 32 bytes); SecretFile
	// names a file holding it instead, so it stays out of the config.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// KeyFile is a PEM file of public keys or certificates (RS256, ES256);
	// JWKSFile is a JSON Web Key Set file. Both are re-read when they change.
	KeyFile  string `yaml:"key_file"`
	JWKSFile string `yaml:"jwks_file"`
	// Audience and Issuer, when set, must match the token's aud and iss.
	Audience string `yaml:"audience"`
	Issuer   string `yaml:"issuer"`
	// Leeway absorbs clock skew between the token issuer and the gateway.
	Leeway time.Duration `yaml:"leeway"`
	// CredentialsFile maps token subjects to SIP identities and holds the
	// click-to-call pool (YAML, re-read when it changes).
	CredentialsFile string `yaml:"credentials_file"`
	// ExpiryGrace is how long calls in progress last past their token's
	// expiry before the connection is closed.
	ExpiryGrace time.Duration `yaml:"expiry_grace"`
}

// Auth modes.
const (
	AuthPassthrough = "passthrough"
	AuthToken       = "token"
)

// minSecretBytes is the HS256 key size RFC 7518 §3.2 asks for.
const minSecretBytes = 32

// TokenSecret is the HS256 secret, from auth.secret or auth.secret_file.
func (a Auth) TokenSecret() (string, error) {
	return readSecret("auth.secret_file", a.Secret, a.SecretFile)
}

// checkSecret refuses a secret given both inline (key) and in a file
// (fileKey), and a file that cannot be read.
func checkSecret(key, fileKey, inline, file string) error {
	if inline != "" && file != "" {
		return keyErr(fileKey, "set %s or %s, not both", key, fileKey)
	}
	v, err := readSecret(fileKey, inline, file)
	if err == nil && file != "" && v == "" {
		// An empty mount would otherwise turn the secret off unseen.
		return keyErr(fileKey, "%s is empty", file)
	}
	return err
}

// readSecret is a secret given inline, or in file (key names it), without
// the file's trailing line end.
func readSecret(key, inline, file string) (string, error) {
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", keyErr(key, "%v", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (c *Config) validateAuth() error {
	a := c.Auth
	switch a.Mode {
	case AuthPassthrough:
		return nil
	case AuthToken:
	default:
		return keyErr("auth.mode", "%q is not passthrough or token", a.Mode)
	}
	if err := checkSecret("auth.secret", "auth.secret_file", a.Secret, a.SecretFile); err != nil {
		return err
	}
	secret, err := a.TokenSecret()
	if err != nil {
		return err
	}
	if secret == "" && a.KeyFile == "" && a.JWKSFile == "" {
		return keyErr("auth.secret", "token mode needs auth.secret (or secret_file), auth.key_file or auth.jwks_file")
	}
	if secret != "" && len(secret) < minSecretBytes {
		return keyErr("auth.secret", "is %d bytes; HS256 needs at least %d", len(secret), minSecretBytes)
	}
	for key, f := range map[string]string{"auth.key_file": a.KeyFile, "auth.jwks_file": a.JWKSFile, "auth.credentials_file": a.CredentialsFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return keyErr(key, "%v", err)
		}
	}
	if a.CredentialsFile == "" {
		return keyErr("auth.credentials_file", "token mode needs the file mapping token subjects to SIP identities")
	}
	if a.Leeway < 0 || a.Leeway > 5*time.Minute {
		return keyErr("auth.leeway", "%s is outside 0..5m", a.Leeway)
	}
	if a.ExpiryGrace < 0 {
		return keyErr("auth.expiry_grace", "must not be negative")
	}
	return nil
}
