package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/web"
)

// TestDeskForbidsFrontlineAndSupervisors: every route of the page table
// above a member's access level (the desk's pages, forms and fragments
// for a supervisor; those and the inbox for a waiter), enumerated from the
// route table so a new page cannot be forgotten, answers the 403 page (a
// page, not a stack trace) in the member's language, and the owner opens
// the desk.
func TestDeskForbidsFrontlineAndSupervisors(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		camila := s.Org.Members["camila"]
		for _, login := range []string{"camila", "marta"} {
			me := s.Org.Members[login]
			c := s.client(t)
			c.signin(login, s.Pass[login])
			n := 0
			for _, rt := range web.Routes() {
				if rt.Access == "" || margen.AccessRank(rt.Access) <= margen.AccessRank(me.Access) {
					continue
				}
				n++
				method, path, _ := strings.Cut(rt.Pattern, " ")
				path = wildcard.ReplaceAllString(path, camila.ID)
				form := url.Values{}
				if method == "GET" {
					form = nil
				}
				res, body := c.do(method, path, form, "Accept-Language", "en")
				if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "<html") ||
					!strings.Contains(body, "Tu nivel de acceso no permite") || strings.Contains(body, "goroutine") {
					t.Errorf("%s: %s %s = %d, want the 403 page", login, method, path, res.StatusCode)
				}
			}
			if n < 10 {
				t.Errorf("%s: only %d routes above their access", login, n)
			}
			if _, body := c.do("GET", "/counter", nil); strings.Contains(body, `href="/desk/people"`) {
				t.Errorf("%s sees the desk link", login)
			}
		}
		c := s.client(t)
		c.signin("admin", s.Pass["admin"])
		for _, p := range []string{"/desk/people", "/desk/people/" + camila.ID, "/desk/policy", "/desk/policy/history"} {
			if res, body := c.do("GET", p, nil); res.StatusCode != http.StatusOK {
				t.Errorf("owner: GET %s = %d %s", p, res.StatusCode, body)
			}
		}
	})
}

// TestDeskPeople: the owner adds a team and moves a waiter to it as a
// supervisor, which ends the waiter's sessions; a reset password is shown
// once, ends the member's sessions and signs them in; a deactivated member
// is signed out and cannot sign in until reactivated. A manager edits
// neither the owner nor grants the owner's access level.
func TestDeskPeople(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		ctx := context.Background()
		camila := s.Org.Members["camila"]
		admin := s.client(t)
		admin.signin("admin", s.Pass["admin"])
		waiter := s.client(t)
		waiter.signin("camila", s.Pass["camila"])

		if res, body := admin.do("POST", "/desk/teams", url.Values{"slug": {"Bad Slug"}, "name": {"Terraza"}}, "Accept-Language", "en"); res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "minúsculas") {
			t.Fatalf("a bad team slug: %d %s", res.StatusCode, body)
		}
		if res, body := admin.do("POST", "/desk/teams", url.Values{"slug": {"terraza"}, "name": {"Terraza <sol>"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("add team: %d %s", res.StatusCode, body)
		}
		if _, body := admin.do("GET", "/desk/people", nil); !strings.Contains(body, "Terraza &lt;sol&gt;") {
			t.Fatalf("the new team is not listed: %s", body)
		}
		// A role the policy does not define is refused, nothing changes.
		if res, _ := admin.do("POST", "/desk/people/"+camila.ID, url.Values{"access": {"supervisor"}, "role": {"chef"}, "team": {"terraza"}}); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("an unknown role: %d", res.StatusCode)
		}
		if res, _ := waiter.do("GET", "/counter", nil); res.StatusCode != http.StatusOK {
			t.Fatalf("the waiter's session ended after a refused change: %d", res.StatusCode)
		}
		if res, body := admin.do("POST", "/desk/people/"+camila.ID, url.Values{"access": {"supervisor"}, "role": {"supervisor"}, "team": {"terraza"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("edit member: %d %s", res.StatusCode, body)
		}
		m, err := db.MemberByID(ctx, s.Org.ID, camila.ID)
		if err != nil || m.Access != margen.AccessSupervisor || m.Role != "supervisor" || m.Team != "terraza" {
			t.Fatalf("member after edit = %+v, %v", m, err)
		}
		if res, _ := waiter.do("GET", "/counter", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("the moved member's session still works: %d", res.StatusCode)
		}

		// Password reset: shown once, old session ended, new one works.
		waiter = s.client(t)
		waiter.signin("camila", s.Pass["camila"])
		res, body := admin.do("POST", "/desk/people/"+camila.ID+"/password", url.Values{})
		pw := regexp.MustCompile(`<output id="new-password"><code>([^<]+)</code>`).FindStringSubmatch(body)
		if res.StatusCode != http.StatusOK || pw == nil {
			t.Fatalf("reset password: %d %s", res.StatusCode, body)
		}
		if res, _ := waiter.do("GET", "/counter", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("the session survived a password reset: %d", res.StatusCode)
		}
		if res, _ := s.client(t).do("POST", "/signin", url.Values{"org": {"demo"}, "login": {"camila"}, "password": {s.Pass["camila"]}}); res.StatusCode == http.StatusSeeOther {
			t.Fatal("the old password still signs in")
		}
		waiter = s.client(t)
		waiter.signin("camila", pw[1])

		// Deactivation ends the session and sign-in; reactivation restores it.
		if res, _ := admin.do("POST", "/desk/people/"+camila.ID+"/active", url.Values{"active": {"false"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("deactivate: %d", res.StatusCode)
		}
		if res, _ := waiter.do("GET", "/counter", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("a deactivated member's session still works: %d", res.StatusCode)
		}
		if res, _ := s.client(t).do("POST", "/signin", url.Values{"org": {"demo"}, "login": {"camila"}, "password": {pw[1]}}); res.StatusCode == http.StatusSeeOther {
			t.Fatal("a deactivated member signs in")
		}
		if res, _ := admin.do("POST", "/desk/people/"+camila.ID+"/active", url.Values{"active": {"true"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("reactivate: %d", res.StatusCode)
		}
		s.client(t).signin("camila", pw[1])

		// A manager: not over the owner, not above their own level.
		s.addMember(t, "gema", margen.AccessManager, "supervisor", "")
		mgr := s.client(t)
		mgr.signin("gema", s.Pass["gema"])
		owner := s.Org.Members["admin"]
		for _, c := range []struct {
			path string
			form url.Values
		}{
			{"/desk/people/" + owner.ID, nil},
			{"/desk/people/" + owner.ID + "/password", url.Values{}},
			{"/desk/people/" + owner.ID + "/active", url.Values{"active": {"false"}}},
			{"/desk/people/" + camila.ID, url.Values{"access": {"owner"}, "role": {"supervisor"}, "team": {""}}},
		} {
			method := "POST"
			if c.form == nil {
				method = "GET"
			}
			if res, _ := mgr.do(method, c.path, c.form); res.StatusCode != http.StatusForbidden {
				t.Errorf("manager: %s %s = %d, want 403", method, c.path, res.StatusCode)
			}
		}
		if m, _ := db.MemberByID(ctx, s.Org.ID, owner.ID); !m.Active {
			t.Fatal("a manager deactivated the owner")
		}
		if res, _ := mgr.do("POST", "/desk/people/"+camila.ID, url.Values{"access": {"frontline"}, "role": {"mesero"}, "team": {"terraza"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("manager edits a waiter: %d", res.StatusCode)
		}
		if _, body := mgr.do("GET", "/desk/people", nil); strings.Contains(body, `href="/desk/people/`+owner.ID+`"`) {
			t.Error("the people list offers a manager to manage the owner")
		}
	})
}

// TestDeskPolicy: the editor shows a broken policy's error at its line
// (as a page and as the htmx fragment), publishing it is refused; a good
// one publishes with its note, appears in the history, the diff shows the
// changed line, and the same form sent twice publishes once.
func TestDeskPolicy(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		if err := db.SetMemberLanguage(context.Background(), s.Org.ID, s.Org.Members["admin"].ID, "en", "test"); err != nil {
			t.Fatal(err)
		}
		c := s.client(t)
		c.signin("admin", s.Pass["admin"])
		res, body := c.do("GET", "/desk/policy", nil)
		key := regexp.MustCompile(`name="key" value="([^"]+)"`).FindStringSubmatch(body)
		if res.StatusCode != http.StatusOK || key == nil || !strings.Contains(body, "Waiter") {
			t.Fatalf("editor: %d %s", res.StatusCode, body)
		}
		if !strings.Contains(body, "Courtesy gift: up to") || !strings.Contains(body, "above that, Shift supervisor decides within 10 min") {
			t.Errorf("the summary does not say the waiter's latitude in words: %s", body)
		}

		broken := strings.Replace(testPolicy, "max_amount: 2500000", "max_amount: lots", 1)
		line := 0
		for i, l := range strings.Split(broken, "\n") {
			if strings.Contains(l, "max_amount: lots") {
				line = i + 1
			}
		}
		where := "Line " + strconv.Itoa(line) + ", column"
		res, body = c.do("POST", "/desk/policy/check", url.Values{"source": {broken}, "key": {key[1]}})
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, where) {
			t.Fatalf("check a broken policy: %d, want %q in %s", res.StatusCode, where, body)
		}
		res, body = c.do("POST", "/desk/policy/check", url.Values{"source": {broken}}, "HX-Request", "true")
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(body, `<div id="results"`) || !strings.Contains(body, where) || strings.Contains(body, "<html") {
			t.Fatalf("htmx check: %d %s", res.StatusCode, body)
		}
		if res, body := c.do("POST", "/desk/policy", url.Values{"source": {broken}, "key": {key[1]}}); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, where) {
			t.Fatalf("publish a broken policy: %d %s", res.StatusCode, body)
		}
		// The same check as the API: a policy in another currency.
		if _, body := c.do("POST", "/desk/policy/check", url.Values{"source": {strings.Replace(testPolicy, "currency: COP", "currency: EUR", 1)}}); !strings.Contains(body, "COP") {
			t.Fatalf("a policy in another currency: %s", body)
		}

		good := strings.Replace(testPolicy, "max_amount: 2500000", "max_amount: 3000000", 1)
		if res, body := c.do("POST", "/desk/policy/check", url.Values{"source": {good}}); res.StatusCode != http.StatusOK || !strings.Contains(body, "Waiter") {
			t.Fatalf("check a good policy: %d %s", res.StatusCode, body)
		}
		form := url.Values{"source": {strings.ReplaceAll(good, "\n", "\r\n")}, "note": {"Cortesías hasta 30.000"}, "key": {key[1]}}
		res, body = c.do("POST", "/desk/policy", form)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/desk/policy/history?published=2" {
			t.Fatalf("publish: %d %s %s", res.StatusCode, res.Header.Get("Location"), body)
		}
		if res, _ := c.do("POST", "/desk/policy", form); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("the same form again: %d", res.StatusCode)
		}
		all, err := db.ListPolicies(context.Background(), s.Org.ID)
		if err != nil || len(all) != 2 || all[0].Version != 2 || all[0].Note != "Cortesías hasta 30.000" || all[0].Source != good {
			t.Fatalf("versions after publishing twice with one key: %d %v", len(all), err)
		}
		res, body = c.do("GET", "/desk/policy/history?published=2", nil, "Accept-Language", "en")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Cortesías hasta 30.000") || !strings.Contains(body, "Version 2 is published") {
			t.Fatalf("history: %d %s", res.StatusCode, body)
		}
		if !strings.Contains(body, "<del>-     max_amount: 2500000</del>") || !strings.Contains(body, "<ins>+     max_amount: 3000000</ins>") || !strings.Contains(body, "(1 added, 1 removed)") {
			t.Fatalf("the diff does not show the change: %s", body)
		}
		if _, body := c.do("GET", "/desk/policy/history?a=2&b=1", nil); !strings.Contains(body, "<ins>+     max_amount: 2500000</ins>") {
			t.Fatalf("the diff from 2 to 1: %s", body)
		}
		for _, q := range []string{"a=x&b=1", "a=0&b=1"} {
			if res, _ := c.do("GET", "/desk/policy/history?"+q, nil); res.StatusCode != http.StatusBadRequest {
				t.Errorf("history?%s = %d, want 400", q, res.StatusCode)
			}
		}
		if res, _ := c.do("GET", "/desk/policy/history?a=1&b=9", nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("a version that does not exist: %d, want 404", res.StatusCode)
		}
		// The engine decides with the new version at once.
		if _, body := c.do("GET", "/desk/policy", nil); !strings.Contains(body, "max_amount: 3000000") {
			t.Fatalf("the editor does not show the active version")
		}
	})
}

// TestInvitations: a manager's invitation link lets the invitee choose a
// login and password and signs them in with the invitation's access, role
// and team; the link works once; a link past its 72 hours (clock moved)
// says so kindly; a supervisor cannot invite and a manager cannot invite
// an owner.
func TestInvitations(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		clock := s.Clock
		if err := db.CreateTeam(context.Background(), &margen.Team{OrgID: s.Org.ID, Slug: "terraza", Name: "Terraza"}, "test"); err != nil {
			t.Fatal(err)
		}
		s.addMember(t, "gema", margen.AccessManager, "supervisor", "")
		mgr := s.client(t)
		mgr.signin("gema", s.Pass["gema"])
		link := regexp.MustCompile(`id="invite-link" readonly value="http://[^/]+(/invite/[^"]+)"`)
		invite := func(name string) string {
			t.Helper()
			res, body := mgr.do("POST", "/desk/invitations", url.Values{"name": {name}, "access": {"frontline"}, "role": {"mesero"}, "team": {"terraza"}})
			m := link.FindStringSubmatch(body)
			if res.StatusCode != http.StatusOK || m == nil {
				t.Fatalf("invite %s: %d %s", name, res.StatusCode, body)
			}
			return m[1]
		}
		if res, _ := mgr.do("POST", "/desk/invitations", url.Values{"name": {"Jefa"}, "access": {"owner"}, "role": {"supervisor"}}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("a manager invites an owner: %d", res.StatusCode)
		}
		sup := s.client(t)
		sup.signin("marta", s.Pass["marta"])
		if res, _ := sup.do("POST", "/desk/invitations", url.Values{"name": {"X"}, "access": {"frontline"}, "role": {"mesero"}}); res.StatusCode != http.StatusForbidden {
			t.Fatalf("a supervisor invites: %d", res.StatusCode)
		}

		path := invite("Lucía")
		if rows, _ := db.ListInvitations(context.Background(), s.Org.ID); len(rows) != 1 || strings.Contains(string(rows[0].TokenHash), strings.TrimPrefix(path, "/invite/")) {
			t.Fatalf("invitations stored: %d (the token must be stored hashed)", len(rows))
		}
		guest := s.client(t)
		res, body := guest.do("GET", path, nil, "Accept-Language", "en")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "invited to Grupo La Brasa") || !strings.Contains(body, `value="Lucía"`) {
			t.Fatalf("invitation page: %d %s", res.StatusCode, body)
		}
		form := url.Values{"name": {"Lucía"}, "login": {"camila"}, "password": {"una contraseña larga"}, "password2": {"una contraseña larga"}, "language": {"en"}}
		if res, body := guest.do("POST", path, form); res.StatusCode != http.StatusConflict || !strings.Contains(body, "ya existe") {
			t.Fatalf("a login already taken: %d %s", res.StatusCode, body)
		}
		form.Set("login", "lucia")
		res, body = guest.do("POST", path, form)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/counter" {
			t.Fatalf("accept: %d %s", res.StatusCode, body)
		}
		if res, body := guest.do("GET", "/account", nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "Lucía (lucia)") {
			t.Fatalf("the invitee is not signed in: %d %s", res.StatusCode, body)
		}
		m, err := db.MemberByLogin(context.Background(), s.Org.ID, "lucia")
		if err != nil || m.Access != margen.AccessFrontline || m.Role != "mesero" || m.Team != "terraza" || m.Language != "en" {
			t.Fatalf("invited member = %+v, %v", m, err)
		}
		// Single use.
		form.Set("login", "lucia2")
		if res, body := s.client(t).do("POST", path, form, "Accept-Language", "en"); res.StatusCode != http.StatusGone || !strings.Contains(body, "already been used") {
			t.Fatalf("a used link: %d %s", res.StatusCode, body)
		}
		if res, body := s.client(t).do("GET", path, nil, "Accept-Language", "en"); res.StatusCode != http.StatusGone || !strings.Contains(body, "already been used") {
			t.Fatalf("a used link: %d %s", res.StatusCode, body)
		}
		// Expiry.
		late := invite("Pedro")
		clock.Add(71 * time.Hour)
		if res, _ := s.client(t).do("GET", late, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("a link at 71 hours: %d", res.StatusCode)
		}
		clock.Add(time.Hour)
		form.Set("login", "pedro")
		if res, body := s.client(t).do("POST", late, form, "Accept-Language", "en"); res.StatusCode != http.StatusGone || !strings.Contains(body, "has expired") {
			t.Fatalf("an expired link: %d %s", res.StatusCode, body)
		}
		if _, err := db.MemberByLogin(context.Background(), s.Org.ID, "pedro"); !margen.IsCode(err, margen.ENOTFOUND) {
			t.Fatalf("an expired link created a member: %v", err)
		}
		if res, _ := s.client(t).do("GET", "/invite/"+auth.TokenPrefix+"nonsense", nil); res.StatusCode != http.StatusNotFound {
			t.Fatalf("an unknown link: %d", res.StatusCode)
		}
		mgr = s.client(t) // 72 hours later: the old session has timed out
		mgr.signin("gema", s.Pass["gema"])
		if _, body := mgr.do("GET", "/desk/people", nil); !strings.Contains(body, "Usada") || !strings.Contains(body, "Caducada") {
			t.Fatalf("the invitation list does not say used and expired: %s", body)
		}
	})
}
