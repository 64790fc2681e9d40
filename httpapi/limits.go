package httpapi

import (
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
)

// Limits on request headers. The HTTP server refuses far larger headers
// itself (http.Server.MaxHeaderBytes, a hard backstop, with a plain-text
// 431); below that, the API answers 431 with a problem document.
const (
	// MaxHeaderBytes bounds the request line and headers together.
	MaxHeaderBytes = 16 << 10
	// MaxHeaderValue bounds each value of a header the API reads.
	MaxHeaderValue = 1 << 10
)

// readHeaders are the request headers the API reads.
var readHeaders = []string{"Authorization", "Accept-Language", "Content-Type", "Idempotency-Key",
	"X-Request-Id", "Last-Event-ID", "Forwarded", "X-Forwarded-For"}

// limitHeaders answers 431 with a problem document when the request's
// headers are over MaxHeaderBytes, or one the API reads is over
// MaxHeaderValue.
func (s *server) limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Count as the wire does: "METHOD URI PROTO\r\n", "Host: ...\r\n"
		// (taken out of r.Header by the server), "Name: value\r\n".
		n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len(r.Host) + 8
		for name, values := range r.Header {
			for _, v := range values {
				n += len(name) + len(v) + 4
			}
		}
		field := ""
		for _, name := range readHeaders {
			for _, v := range r.Header.Values(name) {
				if len(v) > MaxHeaderValue {
					field = name
				}
			}
		}
		if n > MaxHeaderBytes || field != "" {
			e := margen.Errorf(margen.ETOOLARGE, "error.headers_too_large", "max", MaxHeaderBytes, "max_value", MaxHeaderValue)
			e.Field = field
			s.problemStatus(w, r, http.StatusRequestHeaderFieldsTooLarge, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireJSON refuses (415) a request body that is not JSON: the routes it
// wraps decode their body as JSON, and a form or a text body from a client
// that did not mean JSON must not be read as such. A charset parameter is
// accepted if it says UTF-8; a request without a body passes.
func (s *server) requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 { // -1: a body of unknown length
			mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			cs, hasCharset := params["charset"]
			if err != nil || mt != "application/json" || (hasCharset && !strings.EqualFold(cs, "utf-8")) {
				e := margen.Errorf(margen.EMEDIATYPE, "error.unsupported_media_type", "expected", "application/json")
				e.Field = "Content-Type"
				s.problem(w, r, e)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// otherBodies are the routes whose body is not JSON: policies in YAML and
// CSV imports (each handler checks its own media types).
var otherBodies = map[string]bool{"POST /api/v1/policies": true, "POST /api/v1/policies/check": true,
	"POST /api/v1/imports/{kind}": true}

// hasJSONBody says whether a route reads a JSON body: every POST, PUT and
// PATCH under /api/ but the policy uploads and the imports.
func hasJSONBody(pattern string) bool {
	method, path, _ := strings.Cut(pattern, " ")
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return strings.HasPrefix(path, "/api/") && !otherBodies[pattern]
	}
	return false
}

// rateLimit answers 429 with Retry-After when the client's address, or the
// bearer token it presents, is over its rate. It runs before the token is
// looked up, so a flood of bad tokens is limited too (each is a key, and
// the limiter bounds its keys).
func (s *server) rateLimit(next http.Handler) http.Handler {
	if s.addrLimit == nil && s.tokenLimit == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := s.addrLimit.Allow(clientKey(r.RemoteAddr)); !ok {
			s.tooMany(w, r, wait)
			return
		}
		if token, ok := bearer(r.Header.Get("Authorization")); ok {
			if ok, wait := s.tokenLimit.Allow(string(auth.HashToken(token))); !ok {
				s.tooMany(w, r, wait)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	s.problem(w, r, margen.Errorf(margen.ERATELIMIT, "error.rate_limited", "retry_after", secs))
}

// clientKey is the rate-limit key of a client address: the IPv4 address,
// or the /64 of an IPv6 address (one subscriber usually holds a whole /64,
// so limiting single IPv6 addresses would limit nothing). The address is
// the connection's: behind a proxy every client shares the proxy's, and
// X-Forwarded-For is not honoured, since any client can write it.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
