package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"reflect"
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

const avocadoPolicy = `currency: COP
actions:
  - {id: gift, label: {es: Cortesía, en: Gift}}
roles:
  - {id: waiter, label: {es: Mesero, en: Waiter}}
grants:
  - id: garantia_aguacate_malo
    label: {es: "Garantía por aguacate malo", en: "Bad avocado guarantee"}
    role: waiter
    actions: [gift]
    max_amount: 500000
    when:
      - 'amount <= int(context.order_total)'
      - if: 'has(context.photo) && context.photo == true'
        label: {es: "hay una foto del aguacate", en: "there is a photo of the avocado"}
forbid:
  - id: never_cash
    actions: [gift]
    when: 'has(context.cash) && context.cash == true'
    reason: {es: "No se da dinero en efectivo.", en: "No cash is given."}
`

// TestDenialSaysWhy: a refusal by a condition names the condition in the
// member's words (its label, else the expression), the rule by its label,
// and points to the exception path, also as data in "next".
func TestDenialSaysWhy(t *testing.T) {
	for _, eng := range storetest.Engines(t) {
		t.Run(eng.Name, func(t *testing.T) {
			e := setup(t, eng.Open(t))
			owner := e.newOrg("aguacates")
			for _, m := range []*margen.Member{{Login: "wendy"}, {Login: "will", Language: "en"}} {
				m.ID, m.OrgID, m.Name, m.Access, m.Role, m.Active = margen.NewID("mem"), owner.OrgID, m.Login, margen.AccessFrontline, "waiter", true
				if err := e.db.CreateMember(context.Background(), m, "test"); err != nil {
					t.Fatal(err)
				}
				e.addToken(m)
			}
			e.do("POST", "/api/v1/policies", owner.Login, avocadoPolicy, "Content-Type", "application/yaml").want(http.StatusCreated)
			ask := func(login, ctx string) *margen.Decision {
				d, _ := e.decide(login, `{"action":"gift","amount":300000,"customer":{"ref":"mesa-4"},"context":`+ctx+`}`)
				return d
			}
			exception := &margen.NextStep{Kind: "exception", Method: "POST", Href: "/api/v1/exceptions"}
			for _, c := range []struct {
				login, ctx, want string
				next             *margen.NextStep
			}{
				{"wendy", `{"order_total":900000}`, "Ahora no puedes hacerlo (regla Garantía por aguacate malo) porque falta esto: hay una foto del aguacate. Si el cliente lo necesita, puedes pedir una excepción.", exception},
				{"will", `{"order_total":900000}`, "You can't do this right now (rule Bad avocado guarantee) because this is missing: there is a photo of the avocado. If the customer needs it, you can ask for an exception.", exception},
				{"wendy", `{"order_total":1000,"photo":true}`, "Ahora no puedes hacerlo (regla Garantía por aguacate malo) porque falta esto: «amount <= int(context.order_total)». Si el cliente lo necesita, puedes pedir una excepción.", exception},
				{"wendy", `{"order_total":900000,"photo":true}`, "Puedes hacerlo: Cortesía está dentro de tu margen (regla Garantía por aguacate malo).", nil},
				{"wendy", `{"cash":true}`, "No está permitido: No se da dinero en efectivo (regla never_cash).", nil},
			} {
				d := ask(c.login, c.ctx)
				if d.Explanation.Message != c.want || !reflect.DeepEqual(d.Next, c.next) {
					t.Errorf("%s %s:\n got %q, next %+v\nwant %q, next %+v", c.login, c.ctx, d.Explanation.Message, d.Next, c.want, c.next)
				}
				var again margen.Decision
				e.do("GET", "/api/v1/decisions/"+d.ID, c.login, "").want(http.StatusOK).decode(&again)
				if again.Explanation.Message != c.want || !reflect.DeepEqual(again.Next, c.next) {
					t.Errorf("GET %s: %q, next %+v", d.ID, again.Explanation.Message, again.Next)
				}
			}
		})
	}
}
