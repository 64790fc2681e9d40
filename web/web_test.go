package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen/store"
)

// TestFirstRun: on an empty database the home page leads to the setup
// page, which creates the organisation and its owner and signs the owner
// in; afterwards the setup page is gone.
func TestFirstRun(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, true)
		c := s.client(t)
		if res, _ := c.do("GET", "/", nil); res.Header.Get("Location") != "/setup" {
			t.Fatalf("home on an empty database: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		form := url.Values{"name": {"Café <Luna>"}, "slug": {"luna"}, "currency": {"eur"}, "timezone": {"Europe/Madrid"},
			"language": {"en"}, "owner_name": {"Lucía"}, "login": {"lucia"}, "password": {"short"}, "password2": {"short"}}
		if res, body := c.do("POST", "/setup", form, "Accept-Language", "en"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at least 10 characters") {
			t.Fatalf("setup with a short password: %d %s", res.StatusCode, body)
		}
		form.Set("password", "una contraseña larga")
		form.Set("password2", "una contraseña larga")
		res, body := c.do("POST", "/setup", form)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/counter" {
			t.Fatalf("setup: %d %s", res.StatusCode, body)
		}
		res, body = c.do("GET", "/account", nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Lucía (lucia), at Café &lt;Luna&gt;.") {
			t.Fatalf("account after setup: %d %s", res.StatusCode, body)
		}
		if res, _ := c.do("GET", "/setup", nil); res.StatusCode != http.StatusNotFound {
			t.Fatalf("setup after the first run: %d", res.StatusCode)
		}
		if res, _ := s.client(t).do("POST", "/setup", form); res.StatusCode != http.StatusNotFound {
			t.Fatalf("a second setup: %d", res.StatusCode)
		}
	})
}

// TestSessionSecurity: the session cookie is HttpOnly and SameSite, and
// rotated at sign-in; a cross-origin POST is refused with the 403 page;
// signing out ends the session.
func TestSessionSecurity(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		// A visitor who switches language gets a session before signing in.
		if res, _ := c.do("POST", "/language", url.Values{"lang": {"en"}, "back": {"/signin"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("language: %d", res.StatusCode)
		}
		before := c.cookie("margen_session")
		if before == "" {
			t.Fatal("no session cookie after the language switch")
		}
		res, _ := c.do("POST", "/signin", url.Values{"org": {"demo"}, "login": {"camila"}, "password": {s.Pass["camila"]}})
		set := res.Header.Get("Set-Cookie")
		if !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") {
			t.Errorf("session cookie %q: want HttpOnly and SameSite=Lax", set)
		}
		after := c.cookie("margen_session")
		if after == "" || after == before {
			t.Fatalf("session token at sign-in: before %q, after %q: want a new one", before, after)
		}
		// The old token no longer signs anybody in.
		old := s.client(t)
		u, _ := url.Parse(s.URL)
		old.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "margen_session", Value: before}})
		if res, _ := old.do("GET", "/counter", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("the token from before sign-in: %d, want a redirect to sign in", res.StatusCode)
		}

		res, body := c.do("POST", "/signout", nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site",
			"Accept-Language", "en")
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "another website") {
			t.Fatalf("cross-origin POST: %d %s", res.StatusCode, body)
		}
		if res, _ := c.do("GET", "/counter", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("counter after the refused sign-out: %d", res.StatusCode)
		}
		if res, _ := c.do("POST", "/signout", nil, "Origin", s.URL, "Sec-Fetch-Site", "same-origin"); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-out: %d", res.StatusCode)
		}
		if res, _ := c.do("GET", "/counter", nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
			t.Fatalf("counter after sign-out: %d", res.StatusCode)
		}
	})
}

// TestSigninThrottled: after 10 wrong passwords the account is slowed
// down with a clear message, even with the right password, and so is the
// address for other accounts.
func TestSigninThrottled(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		for i := range 10 {
			res, body := c.do("POST", "/signin", url.Values{"org": {"demo"}, "login": {"camila"}, "password": {"wrong"}}, "Accept-Language", "en")
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "is not right") {
				t.Fatalf("wrong password %d: %d", i+1, res.StatusCode)
			}
		}
		res, body := c.do("POST", "/signin", url.Values{"org": {"demo"}, "login": {"camila"}, "password": {s.Pass["camila"]}}, "Accept-Language", "en")
		if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") || res.Header.Get("Retry-After") == "" {
			t.Fatalf("11th attempt: %d %s", res.StatusCode, body)
		}
		res, _ = c.do("POST", "/signin", url.Values{"org": {"demo"}, "login": {"marta"}, "password": {s.Pass["marta"]}})
		if res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("another account from the same address: %d, want 429", res.StatusCode)
		}
	})
}

// TestMemberChangesEndSessions: deactivating a member, changing their
// password (a reset) or their role ends their open sessions on the next
// request.
func TestMemberChangesEndSessions(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		ctx := context.Background()
		for _, change := range []struct {
			name string
			do   func(memberID string) error
		}{
			{"deactivated", func(id string) error { return db.SetMemberActive(ctx, s.Org.ID, id, false, "test") }},
			{"password reset", func(id string) error { return db.SetMemberPassword(ctx, s.Org.ID, id, "other-hash", "test") }},
		} {
			login := "camila"
			if change.name == "password reset" {
				login = "marta"
			}
			c := s.client(t)
			c.signin(login, s.Pass[login])
			if res, _ := c.do("GET", "/counter", nil); res.StatusCode != http.StatusOK {
				t.Fatalf("%s: counter before: %d", change.name, res.StatusCode)
			}
			if err := change.do(s.Org.Members[login].ID); err != nil {
				t.Fatal(err)
			}
			res, _ := c.do("GET", "/counter", nil)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
				t.Fatalf("%s: the open session's next request: %d, want a redirect to sign in", change.name, res.StatusCode)
			}
			res, _ = c.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"1.000"}}, "HX-Request", "true")
			if res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") != "/signin" {
				t.Fatalf("%s: an htmx request after: %d", change.name, res.StatusCode)
			}
		}
	})
}

// TestHostileTextEscaped: a customer's name and a reason with markup show
// as text on every page that shows them.
func TestHostileTextEscaped(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		c.signin("camila", s.Pass["camila"])
		hostile := `<script>alert("x")</script>`
		res, _ := c.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"40.000"},
			"reason": {hostile}, "customer_name": {hostile + " mesa"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("decision: %d", res.StatusCode)
		}
		_, page := c.do("GET", res.Header.Get("Location"), nil)
		_, search := c.do("GET", "/counter/customers?customer_name="+url.QueryEscape("script"), nil, "HX-Request", "true")
		for name, body := range map[string]string{"decision page": page, "search": search} {
			if strings.Contains(body, "<script>alert") {
				t.Errorf("%s shows hostile markup unescaped", name)
			}
		}
		if !strings.Contains(search, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; mesa") {
			t.Errorf("the search does not show the hostile name as text:\n%s", search)
		}
	})
}

// TestErrorPages: a missing page, another member's decision and a bad form
// answer translated pages, never a stack trace.
func TestErrorPages(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		res, body := c.do("GET", "/nope", nil, "Accept-Language", "en")
		if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "This page does not exist") {
			t.Fatalf("404: %d %s", res.StatusCode, body)
		}
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		res, _ = m.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {"1.000"}})
		c.signin("camila", s.Pass["camila"])
		res, body = c.do("GET", res.Header.Get("Location"), nil)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "no es de tu organización") {
			t.Fatalf("another member's decision: %d %s", res.StatusCode, body)
		}
		res, body = c.do("POST", "/counter/decisions", url.Values{"action": {"cortesia"}, "amount": {strings.Repeat("9", 2000)}})
		if res.StatusCode != http.StatusBadRequest || regexp.MustCompile(`goroutine|\.go:\d`).MatchString(body) {
			t.Fatalf("an oversized field: %d %s", res.StatusCode, body)
		}
	})
}

// TestSessionIdle: a session unused for longer than the idle timeout ends;
// one used within it lives on.
func TestSessionIdle(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		c := s.client(t)
		c.signin("camila", s.Pass["camila"])
		s.Clock.Add(50 * time.Minute)
		if res, _ := c.do("GET", "/counter", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("after 50 idle minutes (timeout 1h): %d", res.StatusCode)
		}
		s.Clock.Add(50 * time.Minute)
		if res, _ := c.do("GET", "/counter", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("50 minutes after the last use: %d", res.StatusCode)
		}
		s.Clock.Add(61 * time.Minute)
		if res, _ := c.do("GET", "/counter", nil); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/signin" {
			t.Fatalf("61 idle minutes: %d, want a redirect to sign in", res.StatusCode)
		}
	})
}
