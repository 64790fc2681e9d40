package testsupport

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/margenhq/margen"
)

// Member describes a member to create in an organisation.
type Member struct {
	Login    string
	Access   string // default frontline
	Role     string // policy role; default frontline
	Team     string
	Language string
}

// OrgOptions describe an organisation to create. Every field has a default.
type OrgOptions struct {
	Slug     string // default a unique slug
	Name     string // default "Test"
	Currency string // default EUR
	Timezone string // default Europe/Madrid
	Language string // default es
	// Owner is the member created with the organisation, with access owner
	// (default login "owner", role "owner", as `margen org create` does).
	Owner Member
	// Members are created after the owner, in order.
	Members []Member
	// Policy, when set, is published as version 1.
	Policy string
	// At stamps the rows (default: now).
	At time.Time
}

// Org is an organisation created by NewOrg with its members by login.
type Org struct {
	*margen.Org
	Owner   *margen.Member
	Members map[string]*margen.Member
}

var slugs atomic.Int64

// OrgStore is what NewOrg writes through (margen.Store has it).
type OrgStore interface {
	CreateOrg(ctx context.Context, org *margen.Org, owner *margen.Member, actor string) error
	CreateMember(ctx context.Context, m *margen.Member, actor string) error
	PublishPolicy(ctx context.Context, pv *margen.PolicyVersion, idem *margen.IdemWrite[*margen.PolicyVersion]) error
}

// NewOrg creates an organisation in st with its owner, members and policy,
// failing the test on any error.
func NewOrg(t testing.TB, st OrgStore, o OrgOptions) *Org {
	t.Helper()
	ctx := context.Background()
	if o.At.IsZero() {
		o.At = margen.SystemClock{}.Now()
	}
	org := &margen.Org{ID: margen.NewID("org"), Slug: or(o.Slug, fmt.Sprintf("o%d-%d", time.Now().UnixNano(), slugs.Add(1))),
		Name: or(o.Name, "Test"), Currency: or(o.Currency, "EUR"), Timezone: or(o.Timezone, "Europe/Madrid"),
		Language: or(o.Language, "es"), CreatedAt: o.At}
	owner := member(org, o.Owner, margen.AccessOwner, "owner", o.At)
	if err := st.CreateOrg(ctx, org, owner, "test"); err != nil {
		t.Fatalf("create organisation %s: %v", org.Slug, err)
	}
	owner.OrgID = org.ID
	out := &Org{Org: org, Owner: owner, Members: map[string]*margen.Member{owner.Login: owner}}
	for _, x := range o.Members {
		m := member(org, x, margen.AccessFrontline, "frontline", o.At)
		if err := st.CreateMember(ctx, m, "test"); err != nil {
			t.Fatalf("create member %s: %v", m.Login, err)
		}
		out.Members[m.Login] = m
	}
	if o.Policy != "" {
		if err := st.PublishPolicy(ctx, &margen.PolicyVersion{OrgID: org.ID, Source: o.Policy, CreatedBy: "test", CreatedAt: o.At}, nil); err != nil {
			t.Fatalf("publish policy: %v", err)
		}
	}
	return out
}

func member(org *margen.Org, x Member, access, role string, at time.Time) *margen.Member {
	login := or(x.Login, "owner")
	return &margen.Member{ID: margen.NewID("mem"), OrgID: org.ID, Login: login, Name: login,
		Access: or(x.Access, access), Role: or(x.Role, role), Team: x.Team, Language: x.Language,
		Active: true, CreatedAt: at}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
