package web

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/currency"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/auth"
)

// Form limits.
const (
	maxFormBody   = 16 << 10
	minPassword   = 10
	maxPassword   = 200
	maxName       = 200
	maxFieldBytes = 1000
)

// form parses a POSTed form with a bounded body; false means the error
// page was sent.
func (s *server) form(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, "error.page.bad_form")
		return false
	}
	for _, vs := range r.PostForm {
		for _, v := range vs {
			if len(v) > maxFieldBytes || !utf8.ValidString(v) {
				s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
				return false
			}
		}
	}
	return true
}

// --- first run ---

type setupForm struct {
	Name, Slug, Currency, Timezone, Language, OwnerName, Login string
}

// setupOpen reports whether the first-run setup is offered: only while the
// database holds no organisation.
func (s *server) setupOpen(w http.ResponseWriter, r *http.Request) bool {
	any, err := s.store.AnyOrg(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if any {
		s.notFound(w, r)
		return false
	}
	return true
}

func (s *server) setupPage(w http.ResponseWriter, r *http.Request) {
	if !s.setupOpen(w, r) {
		return
	}
	lang := s.lang(r)
	s.render(w, r, http.StatusOK, "setup", "", s.newPage(r, "setup.title", setupForm{Currency: "COP", Timezone: "America/Bogota", Language: lang}))
}

// setup creates the organisation and its owner, then signs the owner in.
func (s *server) setup(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) || !s.setupOpen(w, r) {
		return
	}
	f := setupForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Slug: strings.TrimSpace(r.PostFormValue("slug")),
		Currency: strings.ToUpper(strings.TrimSpace(r.PostFormValue("currency"))), Timezone: strings.TrimSpace(r.PostFormValue("timezone")),
		Language: r.PostFormValue("language"), OwnerName: strings.TrimSpace(r.PostFormValue("owner_name")),
		Login: strings.TrimSpace(r.PostFormValue("login")),
	}
	password := r.PostFormValue("password")
	p := s.newPage(r, "setup.title", f)
	var problem string
	switch {
	case f.Name == "" || utf8.RuneCountInString(f.Name) > maxName:
		problem = "setup.error.name"
	case !margen.ValidSlug(f.Slug):
		problem = "setup.error.slug"
	case !validCurrency(f.Currency):
		problem = "setup.error.currency"
	case !validTimezone(f.Timezone):
		problem = "setup.error.timezone"
	case f.Language != "es" && f.Language != "en":
		problem = "setup.error.language"
	case !margen.ValidLogin(f.Login):
		problem = "setup.error.login"
	default:
		problem = passwordProblem(password, r.PostFormValue("password2"))
	}
	if problem != "" {
		p.Error = p.T(problem)
		s.render(w, r, http.StatusBadRequest, "setup", "", p)
		return
	}
	if f.OwnerName == "" {
		f.OwnerName = f.Login
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	org := &margen.Org{Slug: f.Slug, Name: f.Name, Currency: f.Currency, Timezone: f.Timezone, Language: f.Language, CreatedAt: s.clock.Now()}
	owner := &margen.Member{Login: f.Login, Name: f.OwnerName, Access: margen.AccessOwner, Role: "owner",
		Language: f.Language, Active: true, PasswordHash: hash, CreatedAt: s.clock.Now()}
	if err := s.store.CreateOrg(r.Context(), org, owner, "web"); err != nil {
		if margen.IsCode(err, margen.ECONFLICT) {
			// Someone else finished the setup first.
			s.notFound(w, r)
			return
		}
		s.fail(w, r, err)
		return
	}
	owner.OrgID = org.ID
	if err := s.startSession(r, owner); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/counter", http.StatusSeeOther)
}

func validCurrency(code string) bool {
	u, err := currency.ParseISO(code)
	return err == nil && len(code) == 3 && u.String() == code && code != "XXX" && code != "XTS"
}

func validTimezone(tz string) bool {
	if tz == "" || tz == "Local" {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}

// passwordProblem is the catalogue key of what is wrong with a new
// password, or "".
func passwordProblem(pw, again string) string {
	switch {
	case utf8.RuneCountInString(pw) < minPassword || len(pw) > maxPassword:
		return "account.error.password_length"
	case pw != again:
		return "account.error.password_mismatch"
	}
	return ""
}

// --- sign-in ---

type signinForm struct {
	Org, Login string
}

func (s *server) signinPage(w http.ResponseWriter, r *http.Request) {
	if current(r).member != nil {
		http.Redirect(w, r, "/counter", http.StatusSeeOther)
		return
	}
	p := s.newPage(r, "signin.title", signinForm{Org: r.URL.Query().Get("org")})
	if s.sessions.PopBool(r.Context(), keyEnded) {
		p.Notice = p.T("signin.ended")
	}
	s.render(w, r, http.StatusOK, "signin", "", p)
}

// signin checks a login and password against the member's argon2id hash.
// Failures are throttled per account and per client address; every
// failure answers the same message, whether the organisation, the login or
// the password was wrong.
func (s *server) signin(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	f := signinForm{Org: strings.TrimSpace(r.PostFormValue("org")), Login: strings.TrimSpace(strings.ToLower(r.PostFormValue("login")))}
	password := r.PostFormValue("password")
	p := s.newPage(r, "signin.title", f)
	addr := clientAddr(r)
	keys := []string{"account:" + f.Org + "/" + f.Login, "addr:" + addr}
	if wait := s.throttle.wait(keys...); wait > 0 {
		p.Error = p.T("signin.throttled", "seconds", int64(wait.Round(time.Second)/time.Second)+1)
		w.Header().Set("Retry-After", strconv.FormatInt(int64(wait/time.Second)+1, 10))
		s.render(w, r, http.StatusTooManyRequests, "signin", "", p)
		return
	}
	m, err := s.check(r, f.Org, f.Login, password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if m == nil {
		s.throttle.fail(keys...)
		s.log.Info("web: sign-in failed", "org", f.Org, "login", f.Login, "addr", addr)
		p.Error = p.T("signin.failed")
		s.render(w, r, http.StatusUnauthorized, "signin", "", p)
		return
	}
	if err := s.startSession(r, m); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/counter", http.StatusSeeOther)
}

// check returns the active member a login and password name, or nil.
func (s *server) check(r *http.Request, orgSlug, login, password string) (*margen.Member, error) {
	if !margen.ValidSlug(orgSlug) || !margen.ValidLogin(login) || password == "" || len(password) > maxPassword {
		return nil, nil
	}
	org, err := s.store.OrgBySlug(r.Context(), orgSlug)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := s.store.MemberByLogin(r.Context(), org.ID, login)
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !m.Active || m.PasswordHash == "" || !auth.VerifyPassword(m.PasswordHash, password) {
		return nil, nil
	}
	return m, nil
}

// startSession signs a member in with a new session token (no token
// chosen before sign-in survives it: session fixation).
func (s *server) startSession(r *http.Request, m *margen.Member) error {
	ctx := r.Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.sessions.Remove(ctx, keyLang)
	s.sessions.Put(ctx, keyMember, m.ID)
	s.sessions.Put(ctx, keyOrg, m.OrgID)
	s.sessions.Put(ctx, keyStamp, margen.MemberStamp(m))
	s.sessions.Put(ctx, keySeen, s.clock.Now().Unix())
	return nil
}

func (s *server) signout(w http.ResponseWriter, r *http.Request) {
	if err := s.sessions.Destroy(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// clientAddr is the client's IP address as this server sees it (a proxy's
// headers are not trusted).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// --- language and account ---

// language switches the language: saved on the member when signed in, in
// the session otherwise. It returns to the page it was asked from.
func (s *server) language(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	lang := r.PostFormValue("lang")
	if lang != "es" && lang != "en" {
		s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
		return
	}
	if st := current(r); st.member != nil {
		if err := s.store.SetMemberLanguage(r.Context(), st.org.ID, st.member.ID, lang, st.member.ID); err != nil {
			s.fail(w, r, err)
			return
		}
	} else {
		s.sessions.Put(r.Context(), keyLang, lang)
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		back = "/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func (s *server) accountPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "account.title", nil)
	if s.sessions.PopBool(r.Context(), "password_changed") {
		p.Notice = p.T("account.password_changed")
	}
	s.render(w, r, http.StatusOK, "account", "", p)
}

// password changes the member's own password. The member's other sessions
// end (their stamp changes); this one continues with a new token.
func (s *server) password(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	st := current(r)
	p := s.newPage(r, "account.title", nil)
	if !auth.VerifyPassword(st.member.PasswordHash, r.PostFormValue("current")) {
		p.Error = p.T("account.error.current")
		s.render(w, r, http.StatusBadRequest, "account", "", p)
		return
	}
	pw := r.PostFormValue("password")
	if key := passwordProblem(pw, r.PostFormValue("password2")); key != "" {
		p.Error = p.T(key)
		s.render(w, r, http.StatusBadRequest, "account", "", p)
		return
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.store.SetMemberPassword(r.Context(), st.org.ID, st.member.ID, hash, st.member.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	m := *st.member
	m.PasswordHash = hash
	if err := s.startSession(r, &m); err != nil {
		s.fail(w, r, err)
		return
	}
	s.sessions.Put(r.Context(), "password_changed", true)
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}
