package sipws

import (
	"net/http"

	"github.com/imsgate/imsgate/internal/token"

	"go.uber.org/zap"
)

// Admission decides at the upgrade whether a client may connect, and what
// it connects as: its principal, which the Handler reads back with
// Conn.Principal. An error refuses the upgrade with its HTTP status
// (Status() int; 401 when it has none), its text as the body, and its
// Challenge() string, when it has one, as WWW-Authenticate.
type Admission func(r *http.Request) (principal any, err error)

// WithAdmission checks every upgrade with a (auth.mode token). Without it
// every client that passes the origin and subprotocol checks connects.
func WithAdmission(a Admission) Option { return func(s *Server) { s.admission = a } }

// Opener is a Handler that is told of each connection as it opens, before
// its first message (to start what lasts as long as the connection).
type Opener interface {
	ConnOpened(c *Conn)
}

// Principal is what Admission said the connection is; nil without one.
func (c *Conn) Principal() any { return c.principal }

// admitPrincipal runs the Admission; when it refuses, it has written the
// HTTP answer.
func (s *Server) admitPrincipal(w http.ResponseWriter, r *http.Request) (any, bool) {
	if s.admission == nil {
		return nil, true
	}
	p, err := s.admission(r)
	if err == nil {
		return p, true
	}
	status := token.WriteRefusal(w, err)
	s.refuse(refusalAdmission, requestIP(r), "ws upgrade refused by admission",
		zap.String("remote_addr", r.RemoteAddr), zap.Int("status", status), zap.Error(err))
	return nil, false
}
