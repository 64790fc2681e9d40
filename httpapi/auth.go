package httpapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
)

// tokenCache remembers, for a few seconds, which member and organisation a
// token hash names. A decision must answer in well under a millisecond and
// a contact centre may send thousands a second: three store reads per
// request would cost more than the decision itself.
//
// The price is a revocation lag: a revoked token, a deactivated member or a
// changed role or language keeps its cached answer for up to the TTL (5 s
// by default) on each app instance. Failed lookups are not cached.
type tokenCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	entries map[[32]byte]tokenEntry
}

type tokenEntry struct {
	tokenID string
	member  *margen.Member
	org     *margen.Org
	expires time.Time
}

// maxTokenCache bounds the cache; when full, expired entries are dropped,
// and if none are, the whole cache is (a burst of distinct tokens is rare).
const maxTokenCache = 10000

func newTokenCache(ttl time.Duration) *tokenCache {
	return &tokenCache{ttl: ttl, now: time.Now, entries: make(map[[32]byte]tokenEntry)}
}

func (c *tokenCache) get(k [32]byte) (tokenEntry, bool) {
	if c.ttl < 0 {
		return tokenEntry{}, false
	}
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || c.now().After(e.expires) {
		return tokenEntry{}, false
	}
	return e, true
}

func (c *tokenCache) put(k [32]byte, e tokenEntry) {
	if c.ttl < 0 {
		return
	}
	now := c.now()
	e.expires = now.Add(c.ttl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxTokenCache {
		for k, v := range c.entries {
			if now.After(v.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxTokenCache {
			clear(c.entries)
		}
	}
	c.entries[k] = e
}

// forget drops a token from the cache (after it is revoked here).
func (c *tokenCache) forget(k [32]byte) {
	c.mu.Lock()
	delete(c.entries, k)
	c.mu.Unlock()
}

// revokeOwnToken is DELETE /api/v1/me/token: the token that makes the
// request is revoked ("sign out this device"), which anyone may do with the
// token they hold. This process forgets it at once and wakes the event
// broker, so the token's streams here end now; other processes see the
// revocation in the audit trail within the broker's poll interval, and
// their token caches drop it within AuthCacheTTL.
func (s *server) revokeOwnToken(w http.ResponseWriter, r *http.Request) {
	st := state(r)
	if err := s.store.RevokeToken(r.Context(), st.org.ID, st.tokenID, st.member.ID); err != nil {
		s.problem(w, r, err)
		return
	}
	if token, ok := bearer(r.Header.Get("Authorization")); ok {
		var k [32]byte
		copy(k[:], auth.HashToken(token))
		s.auth.forget(k)
	}
	if s.broker != nil {
		s.broker.Notify(st.org.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}

// lookup resolves a token to its id, member and organisation. Concurrent
// lookups of one token that is not cached share one set of reads: a burst
// of requests from one client after a restart (or an expiry) would
// otherwise take a pooled connection each.
func (s *server) lookup(ctx context.Context, token string) (tokenEntry, error) {
	var k [32]byte
	copy(k[:], auth.HashToken(token))
	if e, ok := s.auth.get(k); ok {
		return e, nil
	}
	v, err, _ := s.lookups.Do(string(k[:]), func() (any, error) {
		return s.loadToken(context.WithoutCancel(ctx), k)
	})
	if err != nil {
		return tokenEntry{}, err
	}
	return v.(tokenEntry), nil
}

// loadToken reads a token, its member and organisation, and caches them.
func (s *server) loadToken(ctx context.Context, k [32]byte) (tokenEntry, error) {
	unauthorized := margen.Errorf(margen.EUNAUTHORIZED, "error.unauthorized")
	t, err := s.store.TokenByHash(ctx, k[:])
	if margen.IsCode(err, margen.ENOTFOUND) {
		return tokenEntry{}, unauthorized
	}
	if err != nil {
		return tokenEntry{}, err
	}
	if t.RevokedAt != nil {
		return tokenEntry{}, unauthorized
	}
	m, err := s.store.MemberByID(ctx, t.OrgID, t.MemberID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return tokenEntry{}, unauthorized
	}
	if err != nil {
		return tokenEntry{}, err
	}
	o, err := s.store.OrgByID(ctx, t.OrgID)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return tokenEntry{}, unauthorized
	}
	if err != nil {
		return tokenEntry{}, err
	}
	e := tokenEntry{tokenID: t.ID, member: m, org: o}
	s.auth.put(k, e)
	return e, nil
}

// authenticate requires a bearer token of an active member with at least
// the given access level.
func (s *server) authenticate(minAccess string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			s.problem(w, r, margen.Errorf(margen.EUNAUTHORIZED, "error.unauthorized"))
			return
		}
		te, err := s.lookup(r.Context(), token)
		if err != nil {
			s.problem(w, r, err)
			return
		}
		st := state(r)
		st.tokenID, st.member, st.org = te.tokenID, te.member, te.org
		m := te.member
		if !m.Active {
			s.problem(w, r, margen.Errorf(margen.EFORBIDDEN, "error.member_inactive"))
			return
		}
		if margen.AccessRank(m.Access) < margen.AccessRank(minAccess) {
			s.problem(w, r, margen.Errorf(margen.EFORBIDDEN, "error.forbidden"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the token of an "Authorization: Bearer <token>" header
// (the scheme is case-insensitive, RFC 9110 section 11.1).
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != "" && len(token) <= 512
}

// seesAll reports whether a member sees the whole organisation's records
// (margen.SeesAll, the rule both doors use).
func seesAll(m *margen.Member) bool { return margen.SeesAll(m) }
