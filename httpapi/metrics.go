package httpapi

import (
	"net"
	"net/http"

	"github.com/margenhq/margen"
)

// serveMetrics is GET /metrics, in the Prometheus text format. It needs no
// token, so unless the server is configured with MetricsPublic it answers
// only clients on this machine that did not come through a proxy
// (a request carrying Forwarded or X-Forwarded-For did).
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		s.problem(w, r, margen.Errorf(margen.ENOTFOUND, "error.route_not_found"))
		return
	}
	if !s.metricsPublic && !loopbackClient(r) {
		s.problem(w, r, margen.Errorf(margen.EFORBIDDEN, "error.metrics_local"))
		return
	}
	s.metricsHandler.ServeHTTP(w, r)
}

func loopbackClient(r *http.Request) bool {
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
