package margen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
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
