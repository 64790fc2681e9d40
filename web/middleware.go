package web

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
)

// Session keys.
const (
	keyMember = "member" // member id
	keyOrg    = "org"    // organisation id
	keyStamp  = "stamp"  // margen.MemberStamp at sign-in
	keyLang   = "lang"   // an anonymous visitor's chosen language
	keyEnded  = "ended"  // the previous session was ended by a change to the member
	keySeen   = "seen"   // unix seconds of the session's last use, for the idle timeout
)

// seenEvery is how stale the last-use time may get before a request
// writes it again.
const seenEvery = time.Minute

// reqState is who is asking: the signed-in member and their organisation
// (nil for a visitor).
type reqState struct {
	member *margen.Member
	org    *margen.Org
	// session is true once the session is loaded (pages answered before,
	// such as the cross-origin refusal, have none to read).
	session bool
}

type ctxKey struct{}

func current(r *http.Request) *reqState {
	if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// withMember loads the session's member. A session whose member is gone,
// deactivated, or whose access, role, team or password changed since
// sign-in (margen.MemberStamp) is ended here, on the next request it makes.
func (s *server) withMember(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{session: true}
		ctx := context.WithValue(r.Context(), ctxKey{}, st)
		r = r.WithContext(ctx)
		if id := s.sessions.GetString(ctx, keyMember); id != "" {
			orgID := s.sessions.GetString(ctx, keyOrg)
			// The organisation is read at the same time as the member (on
			// PostgreSQL each is a round trip before any page's own); it
			// is used only if the member still may sign in.
			type orgRead struct {
				o   *margen.Org
				err error
			}
			org := make(chan orgRead, 1)
			go func() {
				o, err := s.store.OrgByID(ctx, orgID)
				org <- orgRead{o, err}
			}()
			m, err := s.store.MemberByID(ctx, orgID, id)
			or := <-org
			if err != nil && !margen.IsCode(err, margen.ENOTFOUND) {
				s.fail(w, r, err)
				return
			}
			now := s.clock.Now()
			seen := time.Unix(s.sessions.GetInt64(ctx, keySeen), 0)
			idle := now.Sub(seen) > s.idle
			if idle || err != nil || !m.Active || margen.MemberStamp(m) != s.sessions.GetString(ctx, keyStamp) {
				// Every session of this member ends: a new token, nothing in it.
				if err := s.sessions.Destroy(ctx); err != nil {
					s.fail(w, r, err)
					return
				}
				if !idle {
					s.sessions.Put(ctx, keyEnded, true)
				}
			} else {
				if now.Sub(seen) > seenEvery {
					s.sessions.Put(ctx, keySeen, now.Unix())
				}
				if or.err != nil {
					s.fail(w, r, or.err)
					return
				}
				st.member, st.org = m, or.o
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireMember lets through signed-in members with at least minAccess;
// visitors are sent to the sign-in page (htmx requests too, with
// HX-Redirect), members below minAccess get the 403 page.
func (s *server) requireMember(minAccess string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := current(r)
		if st.member == nil {
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Redirect", "/signin")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			s.errorPage(w, r, http.StatusUnauthorized, "error.page.signed_out")
			return
		}
		if !margen.AccessAtLeast(st.member, minAccess) {
			s.errorPage(w, r, http.StatusForbidden, "error.page.forbidden")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// lang is the language of a page: the member's setting, else the one a
// visitor chose (session), else the browser's (Accept-Language), else the
// organisation's, else Spanish.
func (s *server) lang(r *http.Request) string {
	st := current(r)
	if st.member != nil && st.member.Language != "" {
		return i18n.Match(st.member.Language)
	}
	if st.session {
		if l := s.sessions.GetString(r.Context(), keyLang); l != "" {
			return i18n.Match(l)
		}
	}
	if al := r.Header.Get("Accept-Language"); al != "" {
		return i18n.Match(al)
	}
	if st.org != nil && st.org.Language != "" {
		return i18n.Match(st.org.Language)
	}
	return i18n.Default
}

// csp allows only this origin's scripts, styles and connections: no inline
// script or style (htmx is told not to inject its indicator style), no
// framing. Pico's form controls draw their icons with data: SVG images.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into the 500 page; the stack goes to the log.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("web: panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				s.errorPage(w, r, http.StatusInternalServerError, "error.page.internal")
			}
		}()
		next.ServeHTTP(w, r)
	})
}
