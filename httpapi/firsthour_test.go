package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/store/storetest"
)

// docsSmallPolicy is the "A small policy" example of docs/policy.md.
func docsSmallPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## A small policy\n\n```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/policy.md has no \"A small policy\" example")
	}
	return string(m[1])
}

// newOrg creates an organisation the way `margen org create` does: its
// owner has access owner and policy role owner. It returns the owner.
func (e *env) newOrg(slug string) *margen.Member {
	e.t.Helper()
	o := &margen.Org{ID: margen.NewID("org"), Slug: slug, Name: slug, Currency: "COP", Timezone: "America/Bogota", Language: "es"}
	m := &margen.Member{ID: margen.NewID("mem"), Login: slug + "-owner", Name: "Owner", Access: margen.AccessOwner, Role: "owner", Active: true}
	if err := e.db.CreateOrg(context.Background(), o, m, "test"); err != nil {
		e.t.Fatal(err)
	}
	m.OrgID = o.ID
	e.addToken(m)
	return m
}

// TestPublishFirstPolicy: a new organisation's owner publishes the small
// policy of the docs, which does not declare the owner role; a version of
// it whose route cannot work is published with a warning.
func TestPublishFirstPolicy(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			e := setup(t, eng.Open(t))
			owner := e.newOrg("primera")
			small := docsSmallPolicy(t)
			var v struct {
				Version  int
				Warnings []struct {
					Line, Column  int
					Path, Message string
				}
			}
			e.do("POST", "/api/v1/policies", owner.Login, small, "Content-Type", "application/yaml").want(http.StatusCreated).decode(&v)
			if v.Version != 1 || len(v.Warnings) != 0 {
				t.Errorf("publish the small policy: %+v", v)
			}
			cut := regexp.MustCompile(`(?s)  - id: supervisor_gift.*?\n\n`).ReplaceAllString(small, "\n")
			e.do("POST", "/api/v1/policies", owner.Login, cut, "Content-Type", "application/yaml").want(http.StatusCreated).decode(&v)
			if v.Version != 2 || len(v.Warnings) != 1 || v.Warnings[0].Line != 24 || v.Warnings[0].Column != 13 ||
				v.Warnings[0].Path != "approval.approver" || !regexp.MustCompile(`role supervisor, which may approve at most 2500000`).MatchString(v.Warnings[0].Message) {
				t.Errorf("publish without the supervisor's grant: %+v", v)
			}
		})
	}
}
