package web

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/ratelimit"
)

// The public survey pages: /s/{token} answers a survey link (one answer),
// /q/{token} a standing QR code (limited per device and per hour). No
// sign-in, no JavaScript needed, the business's name and nothing personal.
// An unknown token and an expired one answer the same page with the same
// status, so a visitor cannot tell them apart.

// SurveyOptions configure the survey pages; zero fields take defaults.
type SurveyOptions struct {
	// Expiry is how long a new survey link can be answered (default
	// margen.DefaultSurveyExpiry).
	Expiry time.Duration
	// Limits bound a standing QR code's answers.
	Limits margen.SurveyLimits
	// PerAddress and PerToken limit the survey pages' requests per client
	// address and per token (a zero rate: the defaults below; a negative
	// one turns the limit off, for tests).
	PerAddress, PerToken ratelimit.Options
	// Refused is told the reason of every answer a limit refused (the
	// margen_survey_refused_total metric).
	Refused func(reason string)
	// Key signs the survey tokens (margen.AuditKey.SurveyKey): every
	// process of an installation must share it. Default: a random key,
	// good for one process only.
	Key []byte
	// Email offers to send survey links by email (SMTP is configured).
	Email bool
	// PublicURL, when set, is the absolute base of the survey links and QR
	// codes (else the request's scheme and host).
	PublicURL string
}

// Survey rate-limit defaults: a restaurant's guests may share one address
// (its Wi-Fi), so an address gets a generous burst; a token is answered
// once, so a few attempts are plenty.
var (
	defaultSurveyPerAddress = ratelimit.Options{PerSecond: 2, Burst: 60}
	defaultSurveyPerToken   = ratelimit.Options{PerSecond: 0.1, Burst: 6}
)

// maxSurveyBody bounds a survey form (a comment of MaxSurveyComment bytes
// and a few short fields, URL-encoded).
const maxSurveyBody = 8 << 10

// deviceCookie names a browser that answered a standing QR code.
const deviceCookie = "margen_device"

// surveys is the survey pages' state.
type surveys struct {
	expiry  time.Duration
	limits  margen.SurveyLimits
	addr    *ratelimit.Limiter
	token   *ratelimit.Limiter
	refused func(string)
	tokens  *margen.SurveyTokens
	email   bool   // survey links can be sent by email
	public  string // the public base URL, or ""

	// gone caches the page of an unknown or expired token per language
	// (it is the same for every token but the path it echoes), so that
	// guessing costs a lookup in memory.
	goneMu sync.Mutex
	gone   map[string][2][]byte // the page before and after the path
}

func newSurveys(o SurveyOptions) *surveys {
	if o.Expiry <= 0 {
		o.Expiry = margen.DefaultSurveyExpiry
	}
	if o.PerAddress.PerSecond == 0 {
		o.PerAddress = defaultSurveyPerAddress
	}
	if o.PerToken.PerSecond == 0 {
		o.PerToken = defaultSurveyPerToken
	}
	if o.Refused == nil {
		o.Refused = func(string) {}
	}
	if len(o.Key) == 0 {
		o.Key = make([]byte, 32)
		rand.Read(o.Key)
	}
	return &surveys{expiry: o.Expiry, limits: o.Limits.Normal(), addr: ratelimit.New(o.PerAddress),
		token: ratelimit.New(o.PerToken), refused: o.Refused, tokens: margen.NewSurveyTokens(o.Key), gone: map[string][2][]byte{}, email: o.Email,
		public: strings.TrimRight(o.PublicURL, "/")}
}

// surveyView is the public survey page.
type surveyView struct {
	State      string // "form", "thanks", "answered", "gone", "limited"
	Business   string
	Action     string // where the form posts
	Scale      string
	Scores     []scoreOption
	AskServer  bool
	Servers    []serverOption
	Served     string
	Comment    string
	MaxComment int
}

type scoreOption struct {
	Value int
	Key   string // catalogue key of its label
}

type serverOption struct{ ID, Name string }

// scoreOptions are a scale's buttons, best first on CSAT (the faces) and in
// order on NPS.
func scoreOptions(scale string) []scoreOption {
	lo, hi := margen.ScoreRange(scale)
	var out []scoreOption
	if scale == margen.ScaleNPS {
		for v := lo; v <= hi; v++ {
			out = append(out, scoreOption{Value: v, Key: "survey.nps." + strconv.Itoa(v)})
		}
		return out
	}
	for v := hi; v >= lo; v-- {
		out = append(out, scoreOption{Value: v, Key: "survey.csat." + strconv.Itoa(v)})
	}
	return out
}

// surveyKey is the rate limiter's key of a client address: the address,
// or its /64 for IPv6 (one host holds a whole /64).
func surveyKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// surveyPage renders the public page in the visitor's language (their
// choice, else the browser's, else the organisation's when known).
func (s *server) surveyPage(w http.ResponseWriter, r *http.Request, status int, org *margen.Org, v *surveyView) {
	p := s.newPage(r, "survey.page.title", v)
	if org != nil {
		p.Org = org
		v.Business = org.Name
		if r.Header.Get("Accept-Language") == "" && (!current(r).session || s.sessions.GetString(r.Context(), keyLang) == "") {
			p.Lang = i18n.Match(org.Language)
		}
	}
	v.MaxComment = margen.MaxSurveyComment
	if v.State == "limited" {
		w.Header().Set("Retry-After", "60")
	}
	s.render(w, r, status, "survey", "", p)
}

// goneMark stands for the request's path in the cached gone page.
const goneMark = "/survey-path-mark"

// surveyGone is the one page for an unknown, expired or malformed token:
// no organisation, no hint of which it was. It is rendered once per
// language and served from memory, the path it echoes (the language
// switch returns to it) put in.
func (s *server) surveyGone(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(r, "survey.page.title", nil)
	s.survey.goneMu.Lock()
	parts, ok := s.survey.gone[p.Lang]
	s.survey.goneMu.Unlock()
	if !ok {
		rec := httptest.NewRecorder()
		p.Path, p.Data = goneMark, &surveyView{State: "gone", MaxComment: margen.MaxSurveyComment}
		s.render(rec, r, http.StatusNotFound, "survey", "", p)
		if rec.Code != http.StatusNotFound {
			s.errorPage(w, r, http.StatusInternalServerError, "error.page.internal")
			return
		}
		before, after, found := bytes.Cut(rec.Body.Bytes(), []byte(goneMark))
		if !found {
			s.errorPage(w, r, http.StatusInternalServerError, "error.page.internal")
			return
		}
		parts = [2][]byte{before, after}
		s.survey.goneMu.Lock()
		s.survey.gone[p.Lang] = parts
		s.survey.goneMu.Unlock()
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Cookie, Accept-Language, HX-Request")
	w.WriteHeader(http.StatusNotFound)
	w.Write(parts[0])
	io.WriteString(w, template.HTMLEscapeString(r.URL.Path))
	w.Write(parts[1])
}

// surveyLimited answers a request over a rate limit; an answer (a POST) is
// counted as refused.
func (s *server) surveyLimited(w http.ResponseWriter, r *http.Request, reason string) {
	if r.Method == http.MethodPost {
		s.survey.refused(reason)
	}
	s.surveyPage(w, r, http.StatusTooManyRequests, nil, &surveyView{State: "limited"})
}

// surveyAllowed applies the per-address and per-token rate limits.
func (s *server) surveyAllowed(w http.ResponseWriter, r *http.Request) bool {
	if ok, _ := s.survey.addr.Allow(surveyKey(r)); !ok {
		s.surveyLimited(w, r, margen.RefusedAddress)
		return false
	}
	if r.Method == http.MethodPost {
		if ok, _ := s.survey.token.Allow(r.PathValue("token")); !ok {
			// Counted against the link's or point's organisation when
			// the token is real (a read: the address limit above keeps
			// a flood from reaching the database at this rate).
			s.countTokenRefusal(r)
			s.surveyLimited(w, r, margen.RefusedToken)
			return false
		}
	}
	return true
}

func (s *server) countTokenRefusal(r *http.Request) {
	tok := r.PathValue("token")
	if !s.survey.tokens.Valid(tok) {
		return
	}
	ctx, h := r.Context(), margen.SurveyTokenHash(tok)
	orgID, pointID := "", ""
	if strings.HasPrefix(r.URL.Path, "/q/") {
		if p, err := s.store.SurveyPointByHash(ctx, h); err == nil {
			orgID, pointID = p.OrgID, p.ID
		}
	} else if l, err := s.store.SurveyLinkByHash(ctx, h); err == nil {
		orgID = l.OrgID
	}
	if orgID != "" {
		if err := s.store.CountSurveyRefused(ctx, orgID, pointID, margen.RefusedToken, s.clock.Now()); err != nil {
			s.log.Warn("web: count refused survey answer", "err", err)
		}
	}
}

// surveyLink finds a live link by its token (nil: unknown or expired).
func (s *server) surveyLink(r *http.Request) (*margen.SurveyLink, *margen.Org, error) {
	tok := r.PathValue("token")
	if !s.survey.tokens.Valid(tok) {
		return nil, nil, nil
	}
	l, err := s.store.SurveyLinkByHash(r.Context(), margen.SurveyTokenHash(tok))
	if margen.IsCode(err, margen.ENOTFOUND) || err == nil && !s.clock.Now().Before(l.ExpiresAt) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	org, err := s.store.OrgByID(r.Context(), l.OrgID)
	return l, org, err
}

// surveyForm reads a survey form, bounded: the body's size, valid UTF-8
// and no NUL in any field. The comment's own limit is checked by
// margen.NewSurveyAnswer, so that it is told kindly beside the form.
func (s *server) surveyForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxSurveyBody)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusRequestEntityTooLarge, "error.page.bad_form")
		return false
	}
	for _, vs := range r.PostForm {
		for _, v := range vs {
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
				return false
			}
		}
	}
	return true
}

// linkSurvey shows a survey link's page.
func (s *server) linkSurvey(w http.ResponseWriter, r *http.Request) {
	if !s.surveyAllowed(w, r) {
		return
	}
	l, org, err := s.surveyLink(r)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case l == nil:
		s.surveyGone(w, r)
	case l.AnsweredAt != nil:
		s.surveyPage(w, r, http.StatusOK, org, &surveyView{State: "answered"})
	default:
		v, err := s.surveyForm0(r, org, "/s/"+r.PathValue("token"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.surveyPage(w, r, http.StatusOK, org, v)
	}
}

// surveyForm0 is the empty form of an organisation's scale.
func (s *server) surveyForm0(r *http.Request, org *margen.Org, action string) (*surveyView, error) {
	set, err := s.store.SurveySettings(r.Context(), org.ID)
	if err != nil {
		return nil, err
	}
	return &surveyView{State: "form", Action: action, Scale: set.Scale, Scores: scoreOptions(set.Scale)}, nil
}

// answerLink stores the answer to a survey link: the first one counts, a
// second is told kindly that the first was kept.
func (s *server) answerLink(w http.ResponseWriter, r *http.Request) {
	if !s.surveyAllowed(w, r) || !s.surveyForm(w, r) {
		return
	}
	l, org, err := s.surveyLink(r)
	switch {
	case err != nil:
		s.fail(w, r, err)
		return
	case l == nil:
		s.surveyGone(w, r)
		return
	case l.AnsweredAt != nil:
		s.surveyPage(w, r, http.StatusOK, org, &surveyView{State: "answered"})
		return
	}
	v, err := s.surveyForm0(r, org, "/s/"+r.PathValue("token"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, ok := s.readAnswer(w, r, org, v)
	if !ok {
		return
	}
	a.OrgID, a.LinkID, a.ActID, a.MemberID, a.CustomerID, a.Team = l.OrgID, l.ID, l.ActID, l.MemberID, l.CustomerID, l.Team
	_, err = s.store.AnswerSurvey(r.Context(), &a, s.survey.limits)
	switch {
	case margen.IsCode(err, margen.ENOTFOUND):
		s.surveyGone(w, r)
	case margen.IsCode(err, margen.ECONFLICT):
		s.surveyPage(w, r, http.StatusOK, org, &surveyView{State: "answered"})
	case err != nil:
		s.fail(w, r, err)
	default:
		s.surveyPage(w, r, http.StatusOK, org, &surveyView{State: "thanks"})
	}
}

// readAnswer reads the score and comment; a bad one re-renders the form
// with its message (and the comment typed).
func (s *server) readAnswer(w http.ResponseWriter, r *http.Request, org *margen.Org, v *surveyView) (margen.SurveyAnswer, bool) {
	score, err := strconv.Atoi(r.PostFormValue("score"))
	if err != nil {
		score = -1
	}
	p := s.newPage(r, "survey.page.title", v)
	a, err := margen.NewSurveyAnswer(v.Scale, score, r.PostFormValue("comment"), p.Lang)
	if err != nil {
		v.Comment = r.PostFormValue("comment")
		if len(v.Comment) > margen.MaxSurveyComment {
			v.Comment = v.Comment[:margen.MaxSurveyComment]
			for !utf8.ValidString(v.Comment) {
				v.Comment = v.Comment[:len(v.Comment)-1]
			}
		}
		status := http.StatusBadRequest
		if margen.IsCode(err, margen.ETOOLARGE) {
			status = http.StatusRequestEntityTooLarge
		}
		p.Org = org
		v.Business = org.Name
		v.MaxComment = margen.MaxSurveyComment
		p.Error = p.message(err)
		s.render(w, r, status, "survey", "", p)
		return a, false
	}
	a.CreatedAt = s.clock.Now()
	return a, true
}

// surveyPoint finds an active standing QR code by its token.
func (s *server) surveyPoint(r *http.Request) (*margen.SurveyPoint, *margen.Org, error) {
	tok := r.PathValue("token")
	if !s.survey.tokens.Valid(tok) {
		return nil, nil, nil
	}
	p, err := s.store.SurveyPointByHash(r.Context(), margen.SurveyTokenHash(tok))
	if margen.IsCode(err, margen.ENOTFOUND) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	org, err := s.store.OrgByID(r.Context(), p.OrgID)
	return p, org, err
}

// servers are the first names a standing QR code offers as "who served
// you": the active frontline members of its team (of the organisation
// when it has none).
func (s *server) servers(r *http.Request, pt *margen.SurveyPoint) ([]serverOption, error) {
	ms, err := s.store.ListMembers(r.Context(), pt.OrgID)
	if err != nil {
		return nil, err
	}
	var out []serverOption
	for _, m := range ms {
		if m.Active && (pt.Team == "" || m.Team == pt.Team) && m.Access != margen.AccessOwner {
			out = append(out, serverOption{ID: m.ID, Name: margen.FirstName(m.Name)})
		}
	}
	return out, nil
}

func (s *server) pointForm(r *http.Request, pt *margen.SurveyPoint, org *margen.Org) (*surveyView, error) {
	v, err := s.surveyForm0(r, org, "/q/"+r.PathValue("token"))
	if err != nil {
		return nil, err
	}
	if pt.AskServer {
		v.AskServer = true
		if v.Servers, err = s.servers(r, pt); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// pointSurvey shows a standing QR code's page and gives the browser a
// device cookie (the per-device limit).
func (s *server) pointSurvey(w http.ResponseWriter, r *http.Request) {
	if !s.surveyAllowed(w, r) {
		return
	}
	pt, org, err := s.surveyPoint(r)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case pt == nil:
		s.surveyGone(w, r)
	default:
		v, err := s.pointForm(r, pt, org)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.device(w, r)
		s.surveyPage(w, r, http.StatusOK, org, v)
	}
}

// device returns the hash of the browser's device cookie, setting one
// when it has none. A client that keeps no cookies is its address.
func (s *server) device(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(deviceCookie); err == nil && len(c.Value) == 22 {
		h := sha256.Sum256([]byte(c.Value))
		return hex.EncodeToString(h[:16])
	}
	b := make([]byte, 16)
	rand.Read(b)
	http.SetCookie(w, &http.Cookie{Name: deviceCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/q/",
		MaxAge: 365 * 24 * 3600, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	h := sha256.Sum256([]byte("addr:" + surveyKey(r)))
	return hex.EncodeToString(h[:16])
}

// answerPoint stores an answer to a standing QR code, unless the code's
// limits refuse it (counted, and said kindly).
func (s *server) answerPoint(w http.ResponseWriter, r *http.Request) {
	if !s.surveyAllowed(w, r) || !s.surveyForm(w, r) {
		return
	}
	pt, org, err := s.surveyPoint(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if pt == nil {
		s.surveyGone(w, r)
		return
	}
	v, err := s.pointForm(r, pt, org)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, ok := s.readAnswer(w, r, org, v)
	if !ok {
		return
	}
	a.OrgID, a.PointID, a.Team = pt.OrgID, pt.ID, pt.Team
	if served := r.PostFormValue("served"); served != "" && pt.AskServer {
		for _, x := range v.Servers {
			if x.ID == served {
				a.MemberID = served
			}
		}
		if a.MemberID == "" {
			s.errorPage(w, r, http.StatusBadRequest, "error.page.bad_form")
			return
		}
		if m, err := s.store.MemberByID(r.Context(), pt.OrgID, served); err == nil && a.Team == "" {
			a.Team = m.Team
		}
	}
	a.Device = s.device(w, r)
	refused, err := s.store.AnswerSurvey(r.Context(), &a, s.survey.limits)
	switch {
	case err != nil:
		s.fail(w, r, err)
	case refused != "":
		s.survey.refused(refused)
		s.surveyPage(w, r, http.StatusTooManyRequests, org, &surveyView{State: "limited"})
	default:
		s.surveyPage(w, r, http.StatusOK, org, &surveyView{State: "thanks"})
	}
}
