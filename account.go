package margen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"time"
)

// AccountStore is what the web pages need of the database beyond Store:
// first-run detection, a member's own settings and customer search.
type AccountStore interface {
	// AnyOrg reports whether the database holds at least one organisation.
	AnyOrg(ctx context.Context) (bool, error)
	// SetMemberPassword replaces a member's password hash.
	SetMemberPassword(ctx context.Context, orgID, memberID, hash, actor string) error
	// SetMemberLanguage sets the language a member reads margen in ("" for
	// the browser's).
	SetMemberLanguage(ctx context.Context, orgID, memberID, lang, actor string) error
	// SearchCustomers finds up to limit customers whose name or reference
	// contains query (case-insensitive), by name.
	SearchCustomers(ctx context.Context, orgID, query string, limit int) ([]Customer, error)
	// UpdateMember sets a member's access level, policy role and team (a
	// team slug of the organisation, or "" for none).
	UpdateMember(ctx context.Context, orgID, memberID, access, role, team, actor string) error

	// CreateInvitation stores an invitation (its token's hash).
	CreateInvitation(ctx context.Context, inv *Invitation, actor string) error
	// InvitationByHash finds an invitation by its token's hash, in any
	// organisation (the link names it), used or not; else ENOTFOUND.
	InvitationByHash(ctx context.Context, hash []byte) (*Invitation, error)
	// AcceptInvitation creates the invited member (login, name, password
	// hash and language from m; access, role and team from the invitation)
	// and marks the invitation used, at the moment at, atomically. A used
	// invitation is ECONFLICT "error.invitation_used", an expired one
	// ECONFLICT "error.invitation_expired"; a login already taken is
	// ECONFLICT "error.login_taken" and leaves the invitation unused.
	AcceptInvitation(ctx context.Context, hash []byte, m *Member, at time.Time) (*Invitation, error)
	// ListInvitations lists the organisation's invitations, newest first.
	ListInvitations(ctx context.Context, orgID string) ([]Invitation, error)
}

// Invitation is a one-time link that lets a new member set their password
// and sign in; only the SHA-256 of its random token is stored.
type Invitation struct {
	ID        string
	OrgID     string
	TokenHash []byte
	Name      string // how the inviter calls them
	Access    string
	Role      string
	Team      string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	MemberID  string // the member it created, once used
}

// MemberStamp is a fingerprint of what a member's sign-in depends on: being
// active, their access level, policy role and team, and their password. A
// web session stores the stamp it was opened with and is refused as soon
// as the member's stamp differs, so deactivating a member, changing their
// access, role or team, or resetting their password ends every session
// they have, whichever door (CLI, API, web) made the change.
func MemberStamp(m *Member) string {
	h := sha256.New()
	for _, s := range []string{strconv.FormatBool(m.Active), m.Access, m.Role, m.Team, m.PasswordHash} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// SeesAll reports whether a member sees the whole organisation's records
// (supervisors and above); frontline members see only their own. The JSON
// API and the web pages both ask this; nobody else decides it.
func SeesAll(m *Member) bool {
	return AccessRank(m.Access) >= AccessRank(AccessSupervisor)
}

// AccessAtLeast reports whether a member's access level reaches min (the
// route tables of both doors ask this).
func AccessAtLeast(m *Member, min string) bool {
	return AccessRank(m.Access) >= AccessRank(min)
}

var (
	slugPattern  = regexp.MustCompile(`^[a-z0-9-]{2,40}$`)
	loginPattern = regexp.MustCompile(`^[a-z0-9._-]{2,40}$`)
)

// ValidSlug reports whether s may name an organisation or team: 2 to 40
// lowercase letters, digits and '-'.
func ValidSlug(s string) bool { return slugPattern.MatchString(s) }

// ValidLogin reports whether s may be a member's login: 2 to 40 lowercase
// letters, digits, '.', '_' and '-'.
func ValidLogin(s string) bool { return loginPattern.MatchString(s) }

// MayManage reports whether actor may change target (their access level,
// role, team, password or activity) and leave them with access level
// access: only managers and owners manage people, never themselves here
// (their own account page does that), never someone who ranks above them,
// and nobody grants an access level above their own. Every door that
// changes a member asks this; nobody else decides it.
func MayManage(actor, target *Member, access string) bool {
	return AccessAtLeast(actor, AccessManager) && actor.ID != target.ID &&
		WithinRank(actor.Access, target.Access) && AccessRank(access) > 0 && WithinRank(actor.Access, access)
}

// WithinRank reports whether access ranks no higher than actorAccess: the
// one rule for who may give an access level or change a member, asked by
// MayManage (the web's people pages) and the importer.
func WithinRank(actorAccess, access string) bool {
	return AccessRank(access) <= AccessRank(actorAccess)
}
