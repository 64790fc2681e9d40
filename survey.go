package margen

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"
)

// The customer's voice: a survey link (one answer, expiring) made for an
// act or for an interaction logged without one, or a standing QR code
// (survey point) on a site, table or counter that anyone may answer
// within limits. Answers are tied to the act, the member, the team and the
// point, so follow-up cases, the customer's file and erasure can find them.

// Survey scales, chosen per organisation.
const (
	ScaleCSAT = "csat" // 1 to 5, with faces
	ScaleNPS  = "nps"  // 0 to 10
)

// Survey point kinds: where a standing QR code stands.
const (
	PointSite    = "site"
	PointTable   = "table"
	PointCounter = "counter"
)

// Survey limits and defaults.
const (
	// DefaultSurveyExpiry is how long a survey link can be answered.
	DefaultSurveyExpiry = 14 * 24 * time.Hour
	// DefaultPointPerHour is how many answers a standing QR code takes per
	// hour (more are refused and counted).
	DefaultPointPerHour = 30
	// DefaultPointDeviceEvery is how often one device (a cookie) may answer
	// one standing QR code.
	DefaultPointDeviceEvery = 12 * time.Hour
	// MaxSurveyComment bounds a comment, in bytes of UTF-8.
	MaxSurveyComment = 1000
	// MaxPointName bounds a survey point's name.
	MaxPointName = 80
	// SurveyTokenBytes is the randomness of a survey token (128 bits).
	SurveyTokenBytes = 16
)

// Refusal reasons of survey answers hit by a limit.
const (
	RefusedAddress   = "address"    // too many answers from one client address
	RefusedToken     = "token"      // too many attempts on one link or code
	RefusedPointHour = "point_hour" // the standing QR code's answers per hour
	RefusedDevice    = "device"     // this device answered this code recently
)

// SurveySettings is an organisation's survey configuration.
type SurveySettings struct {
	OrgID     string    `json:"-"`
	Scale     string    `json:"scale"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SurveyLink is a one-answer survey link. Only the SHA-256 of its token is
// stored; the token itself is shown once, when the link is made.
type SurveyLink struct {
	ID         string     `json:"id"`
	OrgID      string     `json:"-"`
	TokenHash  []byte     `json:"-"`
	ActID      string     `json:"act_id,omitempty"` // empty: an interaction without an act
	MemberID   string     `json:"member_id"`
	CustomerID string     `json:"customer_id,omitempty"`
	Team       string     `json:"team,omitempty"` // the member's team slug when made
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// LinkForAct is the survey link of an act, for both doors: it is the act's
// member's, in the team recorded on the act (the member's team when the act
// was done), about the act's customer. The caller fills in the token, the
// creator and the times.
func LinkForAct(a *Act) *SurveyLink {
	return &SurveyLink{OrgID: a.OrgID, ActID: a.ID, MemberID: a.MemberID, CustomerID: a.CustomerID, Team: a.Team}
}

// SurveyPoint is a standing QR code on a site, table or counter. Its token
// is printed on paper for anyone to scan, so it is kept (to print the sheet
// again) beside its hash (to find it).
type SurveyPoint struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"-"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"`
	Team      string    `json:"team,omitempty"` // team slug: whose members it may name
	Token     string    `json:"-"`
	TokenHash []byte    `json:"-"`
	AskServer bool      `json:"ask_server"` // ask who served (first names, or "no sé")
	Active    bool      `json:"active"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// SurveyAnswer is a customer's own answer, through a link or a point.
type SurveyAnswer struct {
	ID         string    `json:"id"`
	OrgID      string    `json:"-"`
	LinkID     string    `json:"link_id,omitempty"`
	PointID    string    `json:"point_id,omitempty"`
	ActID      string    `json:"act_id,omitempty"`
	MemberID   string    `json:"member_id,omitempty"`
	CustomerID string    `json:"customer_id,omitempty"`
	Team       string    `json:"team,omitempty"`
	Scale      string    `json:"scale"`
	Score      int       `json:"score"`
	Comment    string    `json:"comment,omitempty"`
	Language   string    `json:"language"`
	Low        bool      `json:"low"`
	Device     string    `json:"-"` // hash of a standing QR's device cookie
	CreatedAt  time.Time `json:"created_at"`
}

// SurveyAnswerFilter narrows ListSurveyAnswers. Empty fields match all.
type SurveyAnswerFilter struct {
	Page
	ActID    string
	MemberID string
	Team     string
	PointID  string
	Low      *bool
	Since    time.Time
	Until    time.Time
}

// SurveyRefusedCount is how many answers a limit refused, per point (empty
// for links), reason and hour.
type SurveyRefusedCount struct {
	PointID string    `json:"point_id,omitempty"`
	Reason  string    `json:"reason"`
	Hour    time.Time `json:"hour"`
	N       int64     `json:"n"`
}

// SurveyCounts is what AnswerSurvey reads under the organisation's lock
// before a standing QR's answer: the point's answers in the last hour and
// this device's answers to it within the device interval.
type SurveyCounts struct {
	PointHour    int
	DeviceRecent int
}

// SurveyLimits bound a standing QR code's answers.
type SurveyLimits struct {
	PointPerHour int           // <= 0: DefaultPointPerHour
	DeviceEvery  time.Duration // <= 0: DefaultPointDeviceEvery
	// Cases is when an answer opens a follow-up case (CaseFor).
	Cases CaseRule
}

// Normal fills the defaults.
func (l SurveyLimits) Normal() SurveyLimits {
	if l.PointPerHour <= 0 {
		l.PointPerHour = DefaultPointPerHour
	}
	if l.DeviceEvery <= 0 {
		l.DeviceEvery = DefaultPointDeviceEvery
	}
	return l
}

// AdmitPointAnswer is the rule for a standing QR code's answer: "" admits
// it, else the reason it is refused (and counted).
func AdmitPointAnswer(c SurveyCounts, l SurveyLimits) string {
	l = l.Normal()
	switch {
	case c.DeviceRecent > 0:
		return RefusedDevice
	case c.PointHour >= l.PointPerHour:
		return RefusedPointHour
	}
	return ""
}

// ValidScale reports whether s is a survey scale.
func ValidScale(s string) bool { return s == ScaleCSAT || s == ScaleNPS }

// ScoreRange is the lowest and highest score of a scale.
func ScoreRange(scale string) (lo, hi int) {
	if scale == ScaleNPS {
		return 0, 10
	}
	return 1, 5
}

// LowScore reports whether a score is low enough to need a follow-up:
// CSAT 2 or less, NPS 6 or less (a detractor).
func LowScore(scale string, score int) bool {
	if scale == ScaleNPS {
		return score <= 6
	}
	return score <= 2
}

// NewSurveyAnswer validates a customer's answer and returns it with its
// scale, score, comment (trimmed) and whether it is low.
func NewSurveyAnswer(scale string, score int, comment, lang string) (SurveyAnswer, error) {
	lo, hi := ScoreRange(scale)
	if !ValidScale(scale) {
		return SurveyAnswer{}, Errorf(EINVALID, "survey.error.scale")
	}
	if score < lo || score > hi {
		return SurveyAnswer{}, Errorf(EINVALID, "survey.error.score", "min", lo, "max", hi)
	}
	comment = strings.TrimSpace(comment)
	if len(comment) > MaxSurveyComment {
		return SurveyAnswer{}, Errorf(ETOOLARGE, "survey.error.comment_long", "max", MaxSurveyComment)
	}
	if !utf8.ValidString(comment) || strings.IndexByte(comment, 0) >= 0 {
		return SurveyAnswer{}, Errorf(EINVALID, "survey.error.comment_text")
	}
	return SurveyAnswer{Scale: scale, Score: score, Comment: comment, Language: lang, Low: LowScore(scale, score)}, nil
}

// SurveyTokens makes and checks survey tokens. A token is 16 random
// bytes (128 bits from crypto/rand) and an 8-byte tag, the HMAC-SHA256 of
// the random part under a key every process shares (AuditKey.SurveyKey),
// in base64url without padding: 32 characters. A guessed token fails its
// tag before the database is read, so guessing costs the server almost
// nothing and finds nothing; only the SHA-256 of a whole token is stored.
type SurveyTokens struct{ key []byte }

// Survey token sizes.
const (
	surveyTagBytes = 8
	// SurveyTokenLen is a token's length in characters.
	SurveyTokenLen = (SurveyTokenBytes + surveyTagBytes) * 4 / 3
)

// NewSurveyTokens returns the token maker for a key.
func NewSurveyTokens(key []byte) *SurveyTokens { return &SurveyTokens{key: key} }

// SurveyKey is the key of survey tokens, derived from the audit key so
// that every process of an installation shares it.
func (k AuditKey) SurveyKey() []byte {
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte("margen survey tokens v1"))
	return mac.Sum(nil)
}

func (s *SurveyTokens) tag(random []byte) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(random)
	return mac.Sum(nil)[:surveyTagBytes]
}

// New returns a fresh token and its SHA-256 (what is stored).
func (s *SurveyTokens) New() (token string, hash []byte) {
	b := make([]byte, SurveyTokenBytes, SurveyTokenBytes+surveyTagBytes)
	rand.Read(b) // never fails (crypto/rand panics if the system's source does)
	b = append(b, s.tag(b)...)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, SurveyTokenHash(token)
}

// Valid reports whether t is a token this key made (its shape and tag):
// anything else is unknown without reading the database.
func (s *SurveyTokens) Valid(t string) bool {
	if len(t) != SurveyTokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil || len(b) != SurveyTokenBytes+surveyTagBytes {
		return false
	}
	return hmac.Equal(b[SurveyTokenBytes:], s.tag(b[:SurveyTokenBytes]))
}

// SurveyTokenHash is the stored form of a token.
func SurveyTokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// ValidatePoint checks a new survey point's fields.
func ValidatePoint(p *SurveyPoint) error {
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" || len(p.Name) > MaxPointName || !utf8.ValidString(p.Name) || strings.IndexByte(p.Name, 0) >= 0 {
		return &Error{Code: EINVALID, Key: "survey.error.point_name", Field: "name", Args: map[string]any{"max": MaxPointName}}
	}
	switch p.Kind {
	case PointSite, PointTable, PointCounter:
	default:
		return &Error{Code: EINVALID, Key: "survey.error.point_kind", Field: "kind"}
	}
	return nil
}

// FirstName is the first word of a name: what a customer is shown when
// asked who served them (never a full name).
func FirstName(name string) string {
	name = strings.TrimSpace(name)
	if i := strings.IndexAny(name, " \t"); i > 0 {
		return name[:i]
	}
	return name
}

// SurveyStore is what surveys need of the database.
type SurveyStore interface {
	// SurveySettings returns the organisation's settings (CSAT when never
	// set).
	SurveySettings(ctx context.Context, orgID string) (SurveySettings, error)
	SetSurveyScale(ctx context.Context, orgID, scale, actor string) error
	// CreateSurveyLink stores a link (its act, when named, must exist),
	// with the API's idempotency record when idem is not nil.
	CreateSurveyLink(ctx context.Context, l *SurveyLink, actor string, idem *Idempotency) error
	// SurveyLinkByHash finds a link by its token's hash, in any
	// organisation (ENOTFOUND when missing).
	SurveyLinkByHash(ctx context.Context, hash []byte) (*SurveyLink, error)
	CreateSurveyPoint(ctx context.Context, p *SurveyPoint, actor string) error
	ListSurveyPoints(ctx context.Context, orgID string) ([]SurveyPoint, error)
	// DeactivateSurveyPoint takes a standing QR code out of service: its
	// printed code then answers like an unknown one, its answers stay.
	// ENOTFOUND when the organisation has no such point; deactivating an
	// inactive point changes nothing.
	DeactivateSurveyPoint(ctx context.Context, orgID, id, actor string) error
	// SurveyPointByHash finds an active point by its token's hash.
	SurveyPointByHash(ctx context.Context, hash []byte) (*SurveyPoint, error)
	// AnswerSurvey stores an answer to a link (a.LinkID) or a point
	// (a.PointID). A link takes one answer before it expires (ECONFLICT
	// "survey.answered" after that; ENOTFOUND once expired, as if it never
	// existed). A point's answer is admitted by AdmitPointAnswer under
	// lim; a refused one is counted (SurveyRefused) and its reason
	// returned, with nothing else written.
	AnswerSurvey(ctx context.Context, a *SurveyAnswer, lim SurveyLimits) (refused string, err error)
	// CountSurveyRefused counts an answer a limit refused before it
	// reached AnswerSurvey.
	CountSurveyRefused(ctx context.Context, orgID, pointID, reason string, at time.Time) error
	ListSurveyAnswers(ctx context.Context, orgID string, f SurveyAnswerFilter) ([]SurveyAnswer, error)
	// SurveyRefused lists the refused counts since a time, newest first.
	SurveyRefused(ctx context.Context, orgID string, since time.Time) ([]SurveyRefusedCount, error)
}
