package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/internal/testsupport"
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
	o := testsupport.NewOrg(e.t, e.db, testsupport.OrgOptions{Slug: slug, Currency: "COP", Timezone: "America/Bogota",
		Owner: testsupport.Member{Login: slug + "-owner"}})
	e.addToken(o.Owner)
	return o.Owner
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
			// Checking answers the same warnings and publishes nothing.
			var check struct {
				OK       bool
				Warnings []struct{ Line, Column int }
			}
			e.do("POST", "/api/v1/policies/check", owner.Login, cut, "Content-Type", "application/yaml").want(http.StatusOK).decode(&check)
			if !check.OK || len(check.Warnings) != 1 || check.Warnings[0].Line != 24 {
				t.Errorf("check: %+v", check)
			}
			e.do("POST", "/api/v1/policies/check", owner.Login, "currency: [", "Content-Type", "application/yaml").want(http.StatusBadRequest)
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

// afterTheFact is a gift already given, reported after the fact.
func afterTheFact(amount int64, ref string, tags ...string) string {
	t := `[]`
	if len(tags) > 0 {
		t = `["` + tags[0] + `"]`
	}
	return fmt.Sprintf(`{"action":"courtesy_gift","amount":%d,"customer":{"ref":%q,"tags":%s},"reason":"ya se la di","after_the_fact":true}`, amount, ref, t)
}

// TestAfterTheFact: an act already done goes through the same policy
// check. Within latitude it is an act marked after the fact; above it, a
// ratification request holding the amount, which a yes turns into the act;
// refused by a rule, an act flagged for review that charges no budget, and
// no refusal.
func TestAfterTheFact(t *testing.T) {
	eachEngineFull(t, func(t *testing.T, e *fullEnv) {
		var before margen.BudgetAccount // ana has spent nothing yet

		// Within latitude (small_courtesy: up to 800000).
		d, res := e.decide("ana", afterTheFact(500000, "mesa-1"))
		res.want(http.StatusCreated)
		var act margen.Act
		if d.Outcome != margen.OutcomeAllowed || !d.AfterTheFact || d.ActID == "" || d.Next != nil ||
			d.Explanation.Message != "Queda registrado: estaba dentro de tu margen (regla Cortesía pequeña)." {
			t.Fatalf("within latitude: %s", res.body)
		}
		e.do("GET", "/api/v1/acts/"+d.ActID, "ana", "").want(http.StatusOK).decode(&act)
		if !act.AfterTheFact || act.Flagged || act.Amount != 500000 {
			t.Errorf("act within latitude: %+v", act)
		}
		if b := e.budget("ana", "member_daily"); b.Posted != before.Posted+500000 {
			t.Errorf("posted %d, want %d", b.Posted, before.Posted+500000)
		}

		// Above it: a ratification, routed like any request.
		d, res = e.decide("ana", afterTheFact(1000000, "mesa-2"))
		res.want(http.StatusCreated)
		if d.Outcome != margen.OutcomeNeedsApproval || !d.AfterTheFact || d.ActID != "" || d.ApprovalID == "" ||
			!strings.HasPrefix(d.Explanation.Message, "Queda registrado. Como 10.000,00 COP superaba tu margen, se lo hemos enviado a Supervisor") {
			t.Fatalf("above latitude: %s", res.body)
		}
		var a approvalJSON
		e.do("GET", "/api/v1/approvals/"+d.ApprovalID, "sara", "").want(http.StatusOK).decode(&a)
		if a.Kind != margen.ApprovalKindRatification || a.Context == nil || !a.Context.Decision.AfterTheFact {
			t.Fatalf("the approver does not see a ratification: kind %q, context %+v", a.Kind, a.Context)
		}
		if b := e.budget("ana", "member_daily"); b.Pending != before.Pending+1000000 {
			t.Errorf("held %d, want %d", b.Pending, before.Pending+1000000)
		}
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/approve", "sara", "").want(http.StatusOK).decode(&a)
		if a.Status != margen.ApprovalApproved || a.ActID == "" {
			t.Fatalf("ratified: %+v", a.Approval)
		}
		e.do("GET", "/api/v1/acts/"+a.ActID, "ana", "").want(http.StatusOK).decode(&act)
		if !act.AfterTheFact || act.Amount != 1000000 {
			t.Errorf("ratified act: %+v", act)
		}

		// A ratification refused: the hold is voided, no act is charged;
		// the decision and its rejected request stay on record.
		d, _ = e.decide("ana", afterTheFact(900000, "mesa-3"))
		var no approvalJSON
		e.do("POST", "/api/v1/approvals/"+d.ApprovalID+"/reject", "sara", `{"comment":"no era para tanto"}`).want(http.StatusOK).decode(&no)
		if no.Kind != margen.ApprovalKindRatification || no.Status != margen.ApprovalRejected || no.ActID != "" {
			t.Errorf("rejected ratification: %+v", no.Approval)
		}
		if b := e.budget("ana", "member_daily"); b.Pending != before.Pending {
			t.Errorf("held %d after the rejection, want %d", b.Pending, before.Pending)
		}

		// Refused by a rule (no gifts to co-workers): on record, flagged.
		d, res = e.decide("ana", afterTheFact(300000, "lucas", "empleado"))
		res.want(http.StatusCreated)
		if d.Outcome != margen.OutcomeDenied || !d.AfterTheFact || !d.Flagged || d.ActID == "" || d.RefusalID != "" || d.Next != nil ||
			!strings.HasPrefix(d.Explanation.Message, "Queda registrado y marcado para revisión") {
			t.Fatalf("refused by a rule: %s", res.body)
		}
		e.do("GET", "/api/v1/acts/"+d.ActID, "ana", "").want(http.StatusOK).decode(&act)
		if !act.AfterTheFact || !act.Flagged || act.Amount != 300000 {
			t.Errorf("act refused by a rule: %+v", act)
		}
		if b := e.budget("ana", "member_daily"); b.Posted != before.Posted+1500000 || b.Pending != before.Pending {
			t.Errorf("budget after all three: %+v (before %+v)", b, before)
		}
		var refusals struct{ Items []margen.Refusal }
		e.do("GET", "/api/v1/refusals", "olga", "").want(http.StatusOK).decode(&refusals)
		if len(refusals.Items) != 0 {
			t.Errorf("refusals: %+v", refusals.Items)
		}
		if check := e.checkNow("olga", ""); !check.OK {
			t.Error("ledger check fails")
		}
	})
}
