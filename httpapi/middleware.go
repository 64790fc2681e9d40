package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
)

// reqState is what the middleware learns about a request: its id, and once
// authenticated, the member and organisation. One pointer lives in the
// request context so the access log sees what the auth wrapper found.
type reqState struct {
	id      string
	tokenID string
	member  *margen.Member
	org     *margen.Org
}

type ctxKey struct{}

func state(r *http.Request) *reqState {
	if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

func reqID(r *http.Request) string { return state(r).id }

// lang is the language of problem details: the member's, else the
// Accept-Language header, else the organisation's, else Spanish.
func lang(r *http.Request) string {
	st := state(r)
	switch {
	case st.member != nil && st.member.Language != "":
		return i18n.Match(st.member.Language)
	case r.Header.Get("Accept-Language") != "":
		return i18n.Match(r.Header.Get("Accept-Language"))
	case st.org != nil && st.org.Language != "":
		return i18n.Match(st.org.Language)
	}
	return i18n.Default
}

// memberLang is the language of a member's explanations: theirs, else the
// organisation's.
func memberLang(st *reqState) string {
	switch {
	case st.member != nil && st.member.Language != "":
		return i18n.Match(st.member.Language)
	case st.org != nil && st.org.Language != "":
		return i18n.Match(st.org.Language)
	}
	return i18n.Default
}

// requestID takes a sane X-Request-Id from the client (a proxy's) or makes
// one, and echoes it in the response.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			var b [12]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), ctxKey{}, &reqState{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			// Answers are private to the token's member.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status for the access log and whether the
// header was sent, for panic recovery.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one structured line per request: never the
// Authorization header, never a body.
func (s *server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		st := state(r)
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", sw.bytes),
			slog.String("request_id", st.id),
		}
		if st.member != nil {
			attrs = append(attrs, slog.String("org", st.org.ID), slog.String("member", st.member.ID))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
	})
}

// recoverPanics turns a panic into a logged 500 problem.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, _ := w.(*statusWriter)
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic", "request_id", reqID(r), "panic", v, "stack", string(debug.Stack()))
			if sw == nil || sw.status == 0 {
				s.problem(w, r, &margen.Error{Code: margen.EINTERNAL, Key: "error.internal"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// fallback answers unknown routes (404) and wrong methods (405) with
// problem documents instead of the mux's plain text.
func (s *server) fallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer (404, 405 or a redirect to a clean path):
		// keep its status and headers, replace the body.
		cw := &captureWriter{header: http.Header{}}
		h.ServeHTTP(cw, r)
		switch cw.status {
		case http.StatusNotFound:
			s.problem(w, r, margen.Errorf(margen.ENOTFOUND, "error.route_not_found"))
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", cw.header.Get("Allow"))
			s.problemStatus(w, r, http.StatusMethodNotAllowed, margen.Errorf(margen.EINVALID, "error.method_not_allowed", "method", r.Method))
		default:
			for k, v := range cw.header {
				if k != "Content-Type" && k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(cw.status)
		}
	})
}

type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
}
