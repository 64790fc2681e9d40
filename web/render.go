package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

//go:embed templates/*.html
var templateFS embed.FS

// views are the parsed pages: each page file (templates/NAME.html, other
// than the shared ones) joined with the layout and the partials.
type views struct{ pages map[string]*template.Template }

// shared holds the layout and partials every page may use.
const shared = "layout.html"

func isPartial(name string) bool { return strings.HasPrefix(name, "_") }

func parseViews(cat *i18n.Catalog, a *assets) (*views, error) {
	funcs := template.FuncMap{
		"asset": a.url,
		"list":  func(v ...string) []string { return v },
		// dict builds the argument of a partial: {{template "x" dict "P" $ "D" .}}.
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
	}
	base := template.New("root").Funcs(funcs)
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	var pages []string
	for _, n := range names {
		b := path.Base(n)
		switch {
		case b == shared || isPartial(b):
			if _, err := base.New(b).Parse(mustRead(n)); err != nil {
				return nil, fmt.Errorf("web: template %s: %w", b, err)
			}
		default:
			pages = append(pages, b)
		}
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, p := range pages {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.New(p).Parse(mustRead("templates/" + p)); err != nil {
			return nil, fmt.Errorf("web: template %s: %w", p, err)
		}
		v.pages[strings.TrimSuffix(p, ".html")] = t
	}
	for _, want := range []string{"error", "signin", "setup", "account", "counter", "inbox"} {
		if v.pages[want] == nil {
			return nil, fmt.Errorf("web: template %s.html is missing", want)
		}
	}
	return v, nil
}

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err) // the name came from the same embedded FS
	}
	return string(b)
}

// page is what every template gets: who is asking, in which language, and
// the page's own data. Text is written with {{.T "key"}}: every word shown
// comes from the catalogue (a test walks the templates to make sure).
type page struct {
	cat    *i18n.Catalog
	Lang   string
	Member *margen.Member
	Org    *margen.Org
	Path   string // where the language switch returns to
	Title  string // catalogue key of the <title>
	Error  string // a message already in Lang, shown above the form
	Notice string // a confirmation already in Lang
	Data   any

	policy func() *policy.Policy // the organisation's active policy, loaded once when asked (nil: none)

	// MailOn says survey links can be sent by email (SMTP is configured);
	// actEmail finds the email address of an act's customer.
	MailOn   bool
	actEmail func(actID string) string
}

// ActEmail is the act's customer's contact when it is an email address:
// what the counter's email field offers ("" when none or mail is off).
func (p *page) ActEmail(actID string) string {
	if p.actEmail == nil || actID == "" {
		return ""
	}
	return p.actEmail(actID)
}

// T is the catalogue message key in the page's language; kv fills its
// placeholders ("name", value, ...).
func (p *page) T(key string, kv ...any) string {
	var args map[string]any
	if len(kv) > 0 {
		args = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			args[fmt.Sprint(kv[i])] = kv[i+1]
		}
	}
	cur := ""
	if p.Org != nil {
		cur = p.Org.Currency
	}
	return p.cat.Format(p.Lang, cur, key, args)
}

// Money writes minor units in the organisation's currency for the page's
// language.
func (p *page) Money(minor int64) string {
	cur := ""
	if p.Org != nil {
		cur = p.Org.Currency
	}
	return i18n.FormatMoney(p.Lang, cur, minor)
}

// Time writes a moment in the organisation's time zone, as people of the
// page's language write it.
func (p *page) Time(t time.Time) string {
	if p.Org != nil {
		t = t.In(p.Org.Location())
	}
	if p.Lang == "en" {
		return t.Format("Jan 2, 2006 3:04 PM")
	}
	return t.Format("2/1/2006 15:04")
}

// Elapsed writes how long something took: seconds under a minute, else
// hours and minutes.
func (p *page) Elapsed(d time.Duration) string {
	if d < time.Minute {
		return p.T("web.seconds", "n", int64(d.Round(time.Second)/time.Second))
	}
	return i18n.FormatDuration(d)
}

// Budget names a budget for people: its label in the active policy in the
// page's language, else its period and scope in words ("Presupuesto
// diario por miembro"); its id only when the policy does not declare it
// (any more).
func (p *page) Budget(id string) string {
	var pol *policy.Policy
	if p.policy != nil {
		pol = p.policy()
	}
	if pol == nil {
		return id
	}
	b, ok := pol.Budget(id)
	if !ok {
		return id
	}
	if l := label(b.Label, p.Lang, ""); l != "" {
		return l
	}
	return p.T("webpolish.budget."+b.Period, "scope", p.T("desk.summary.scope."+b.Scope))
}

// OtherLang is the language the switch offers.
func (p *page) OtherLang() string {
	if p.Lang == "en" {
		return "es"
	}
	return "en"
}

// newPage starts the page data of a request.
func (s *server) newPage(r *http.Request, title string, data any) *page {
	st := current(r)
	p := &page{cat: s.cat, Lang: s.lang(r), Member: st.member, Org: st.org, Path: r.URL.Path, Title: title, Data: data}
	if st.org != nil {
		ctx, orgID := r.Context(), st.org.ID
		p.policy = sync.OnceValue(func() *policy.Policy {
			pol, _, err := s.engine.Policy(ctx, orgID)
			if err != nil {
				return nil // a name falls back to the id
			}
			return pol
		})
		if s.survey != nil && s.survey.email {
			p.MailOn = true
			p.actEmail = func(actID string) string {
				act, err := s.store.GetAct(ctx, orgID, actID)
				if err != nil || act.CustomerID == "" {
					return ""
				}
				c, err := s.store.CustomerByID(ctx, orgID, act.CustomerID)
				if err != nil {
					return ""
				}
				return margen.EmailOf(c.Contact)
			}
		}
	}
	return p
}

// render executes a page (or, with block set, one of its templates: a
// fragment for htmx) into a buffer first, so a failing template answers
// the 500 page instead of half a page.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, block string, p *page) {
	t := s.views.pages[name]
	if t == nil {
		s.fail(w, r, fmt.Errorf("web: no page %q", name))
		return
	}
	if block == "" {
		block = shared
	}
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer putRenderBuffer(buf)
	if err := t.ExecuteTemplate(buf, block, p); err != nil {
		s.log.Error("web: render", "page", name, "block", block, "err", err)
		if name != "error" {
			s.errorPage(w, r, http.StatusInternalServerError, "error.page.internal")
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Cookie, Accept-Language, HX-Request")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderBuffers are the buffers pages are rendered into, kept from one
// request to the next: a page grown from an empty buffer copies itself
// several times over (the owner's inbox allocated 170 kB a request in
// growing its buffer, a fifth of all it allocated).
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledRender is the largest buffer kept for the next page: a rare
// large page (a long audit trail) does not pin its memory for ever.
const maxPooledRender = 1 << 20

func putRenderBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledRender {
		return
	}
	b.Reset()
	renderBuffers.Put(b)
}

// errorPage answers a translated error page: never a stack trace.
func (s *server) errorPage(w http.ResponseWriter, r *http.Request, status int, key string) {
	p := s.newPage(r, "error.page.title", nil)
	p.Error = p.T(key)
	p.Data = status
	s.render(w, r, status, "error", "", p)
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, r, http.StatusNotFound, "error.page.not_found")
}

// fail answers an error that the handler did not expect to show in a form:
// a missing or foreign id is the 404 page, a refusal of access the 403
// page, an outage the 503 page, anything else the 500 page (logged).
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch margen.ErrorCode(err) {
	case margen.ENOTFOUND:
		s.errorPage(w, r, http.StatusNotFound, "error.page.not_found")
	case margen.EFORBIDDEN:
		s.errorPage(w, r, http.StatusForbidden, "error.page.forbidden")
	case margen.EUNAVAILABLE, margen.EBUSY:
		// Busy (no free connection, a write past its deadline) or
		// restarting: nothing was done, and the same request may be sent
		// again in a moment.
		w.Header().Set("Retry-After", "1")
		s.errorPage(w, r, http.StatusServiceUnavailable, "error.page.unavailable")
	case margen.ETOOMANY:
		w.Header().Set("Retry-After", "5")
		s.errorPage(w, r, http.StatusTooManyRequests, "error.page.too_many")
	default:
		s.log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "error.page.internal")
	}
}

// message is the text of a user-facing error in the page's language (a
// margen.Error's catalogue key), or "" for an unexpected error.
func (p *page) message(err error) string {
	e, ok := err.(*margen.Error)
	if !ok {
		return ""
	}
	args := map[string]any{}
	for k, v := range e.Args {
		args[k] = v
	}
	cur := ""
	if p.Org != nil {
		cur = p.Org.Currency
	}
	return p.cat.Format(p.Lang, cur, e.Key, args)
}
