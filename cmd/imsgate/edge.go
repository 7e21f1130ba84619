package main

import (
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/configs"
	"github.com/imsgate/imsgate/internal/certs"
	"github.com/imsgate/imsgate/internal/edge"
)

// listenEdge binds edge.listen: one port for WSS, WS, TURN and ICE-TCP.
// Its services take their listeners from it as they start.
func (a *app) listenEdge(cfg configs.Config) error {
	st, err := certs.NewStore(cfg.WS.TLSCert, cfg.WS.TLSKey)
	if err != nil {
		return fmt.Errorf("edge: ws.tls_cert: %w", err)
	}
	tlsCfg, err := certs.ServerConfig(cfg.TLS, st)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Edge.Listen)
	if err != nil {
		return fmt.Errorf("edge.listen: %w", err)
	}
	turnOn := cfg.TURN.Listen != "" || cfg.TURN.TLSListen != ""
	a.edgeCerts = st
	a.edge = edge.New(ln, edge.Config{TLS: tlsCfg, WS: true, WSS: true, ICETCP: true, TURN: turnOn, TURNTLS: turnOn},
		a.log.Named("edge"))
	return nil
}

// serveEdge starts the shared port once its services listen on it.
func (a *app) serveEdge() {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.edge.Serve(); err != nil {
			a.serveMu.Lock()
			a.served = err
			a.serveMu.Unlock()
			a.log.Error("edge listener stopped", zap.Error(err))
		}
	}()
	a.log.Info("edge port ready: WSS, WS, TURN and ICE-TCP on one port", zap.Stringer("listen", a.edge.Addr()))
}
