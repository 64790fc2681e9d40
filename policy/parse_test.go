package policy

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// basePolicy is a small valid policy that the validation cases break in one
// place each.
const basePolicy = `currency: COP
actions:
  - id: gift
    label: {es: Regalo, en: Gift}
  - id: waive
    label: {es: Exención, en: Waiver}
    monetary: false
roles:
  - id: staff
    label: {es: Personal, en: Staff}
  - id: boss
    label: {es: Jefe, en: Boss}
    inherits: [staff]
budgets:
  - id: daily
    scope: member
    period: day
    limit: 1000
approval:
  approver: boss
  sla: 10m
  on_timeout: deny
grants:
  - id: small_gift
    role: staff
    actions: [gift]
    max_amount: 100
    budgets: [daily]
    when: 'amount < 500'
  - id: waivers
    role: staff
    actions: [waive]
forbid:
  - id: no_waive_at_night
    actions: [waive]
    when: 'hour < 6'
    reason: {es: "De noche no", en: "Not at night"}
`

// marked removes the « marker from src and returns the 1-based line and
// column where it was, so that each case shows where its error must point.
func marked(t *testing.T, src string) (string, int, int) {
	t.Helper()
	i := strings.Index(src, "«")
	if i < 0 {
		t.Fatal("case has no « marker")
	}
	before := src[:i]
	line := strings.Count(before, "\n") + 1
	col := utf8.RuneCountInString(before[strings.LastIndex(before, "\n")+1:]) + 1
	return src[:i] + src[i+len("«"):], line, col
}

// replace replaces exactly one occurrence of old in basePolicy.
func replace(t *testing.T, old, new string) string {
	t.Helper()
	if n := strings.Count(basePolicy, old); n != 1 {
		t.Fatalf("%q occurs %d times in basePolicy", old, n)
	}
	return strings.Replace(basePolicy, old, new, 1)
}

func parseErrors(t *testing.T, src string) Errors {
	t.Helper()
	p, err := Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse succeeded, want errors; policy %+v", p)
	}
	if p != nil {
		t.Errorf("Parse returned a policy with an error")
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	if len(es) == 0 {
		t.Fatal("empty Errors")
	}
	return es
}

func TestBasePolicyParses(t *testing.T) {
	mustParse(t, basePolicy)
}

func TestParseValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		old  string // text of basePolicy to replace; "" means src is the whole document
		new  string // replacement, with « where the error must point
		path string
		msg  string // substring of the message
	}{
		{"unknown top-level field", "currency: COP\n", "currency: COP\n«colour: red\n", "colour", `unknown field "colour"`},
		{"unknown grant field", "    max_amount: 100\n", "    max_amount: 100\n    «maxamount: 5\n", "grants[0].maxamount", "unknown field"},
		{"unknown budget field", "    limit: 1000\n", "    limit: 1000\n    «reset: daily\n", "budgets[0].reset", "unknown field"},
		{"missing currency", "currency: COP\n", "", "currency", "currency is required"},
		{"missing grant role", "    role: staff\n    actions: [gift]\n", "    actions: [gift]\n", "grants[0].role", "role is required"},
		{"empty required value", "    role: staff\n    actions: [gift]\n", "    «role:\n    actions: [gift]\n", "grants[0].role", "must not be empty"},
		{"bad action id", "roles:\n", "  - id: «Cake\n    label: {es: Torta, en: Cake}\nroles:\n", "actions[2].id", `invalid id "Cake"`},
		{"id with dash", "approval:\n", "  - id: «weekly-limit\n    scope: org\n    period: week\n    limit: 5\napproval:\n", "budgets[1].id", "invalid id"},
		{"duplicate action id", "roles:\n", "  - id: «gift\n    label: {es: Otro, en: Other}\nroles:\n", "actions[2].id", `duplicate action id "gift"`},
		{"duplicate role id", "budgets:\n", "  - id: «staff\n    label: {es: Otro, en: Other}\nbudgets:\n", "roles[2].id", `duplicate role id "staff"`},
		{"duplicate rule id across grant and forbid", "  - id: no_waive_at_night\n", "  - id: «waivers\n", "forbid[0].id", `duplicate rule id "waivers"`},
		{"unknown role", "    role: staff\n    actions: [gift]\n", "    role: «chef\n    actions: [gift]\n", "grants[0].role", `unknown role "chef"`},
		{"unknown action", "    actions: [gift]\n", "    actions: [gift, «cake]\n", "grants[0].actions[1]", `unknown action "cake"`},
		{"unknown budget", "    budgets: [daily]\n", "    budgets: [«weekly]\n", "grants[0].budgets[0]", `unknown budget "weekly"`},
		{"unknown approver", "  approver: boss\n", "  approver: «chief\n", "approval.approver", `unknown role "chief"`},
		{"unknown forbid role", "    actions: [waive]\n    when: 'hour < 6'\n", "    actions: [waive]\n    roles: [«intern]\n    when: 'hour < 6'\n", "forbid[0].roles[0]", `unknown role "intern"`},
		{"unknown inherited role", "    inherits: [staff]\n", "    inherits: [«chef]\n", "roles[1].inherits[0]", `unknown role "chef"`},
		{"self inheritance", "    inherits: [staff]\n", "    inherits: [«boss]\n", "roles[1].inherits[0]", "cannot inherit from itself"},
		{"inheritance cycle", "    label: {es: Personal, en: Staff}\n", "    label: {es: Personal, en: Staff}\n    inherits: «[boss]\n", "roles[0].inherits", "inheritance cycle: staff -> boss -> staff"},
		{"negative amount", "    max_amount: 100\n", "    max_amount: «-5\n", "grants[0].max_amount", "must not be negative"},
		{"amount too large", "    max_amount: 100\n", "    max_amount: «10000000000001\n", "grants[0].max_amount", "at most 10000000000000"},
		{"amount beyond int64", "    max_amount: 100\n", "    max_amount: «18446744073709551615\n", "grants[0].max_amount", "at most"},
		{"decimal amount", "    max_amount: 100\n", "    max_amount: «1.5\n", "grants[0].max_amount", "whole number"},
		{"string amount", "    max_amount: 100\n", "    max_amount: «\"100\"\n", "grants[0].max_amount", "whole number"},
		{"zero budget limit", "    limit: 1000\n", "    limit: «0\n", "budgets[0].limit", "greater than 0"},
		{"bad duration", "  sla: 10m\n", "  sla: «10 minutes\n", "approval.sla", `invalid duration "10 minutes"`},
		{"zero duration", "  sla: 10m\n", "  sla: «0s\n", "approval.sla", "greater than 0"},
		{"duration too long", "  sla: 10m\n", "  sla: «721h\n", "approval.sla", "at most 720h"},
		{"number as duration", "  sla: 10m\n", "  sla: «10\n", "approval.sla", "must be a duration"},
		{"bad scope", "    scope: member\n", "    scope: «person\n", "budgets[0].scope", `invalid value "person"`},
		{"bad period", "    period: day\n", "    period: «year\n", "budgets[0].period", "allowed: day, week, month"},
		{"bad on_timeout", "  on_timeout: deny\n", "  on_timeout: «maybe\n", "approval.on_timeout", `invalid value "maybe"`},
		{"escalate without escalate_to", "  approver: boss\n  sla: 10m\n  on_timeout: deny\n", "  «approver: boss\n  sla: 10m\n  on_timeout: escalate\n", "approval.escalate_to", "required when on_timeout is escalate"},
		{"escalate_to without escalate", "  on_timeout: deny\n", "  on_timeout: deny\n  «escalate_to: boss\n", "approval.escalate_to", "only allowed when on_timeout is escalate"},
		{"bad above", "    when: 'amount < 500'\n", "    when: 'amount < 500'\n    above: «never\n", "grants[0].above", "or none"},
		{"bad above route", "    when: 'amount < 500'\n", "    when: 'amount < 500'\n    above: {approver: boss, sla: «5x, on_timeout: deny}\n", "grants[0].above.sla", "invalid duration"},
		{"CEL syntax error", "    when: 'amount < 500'\n", "    when: «'amount <'\n", "grants[0].when", "invalid condition: 1:9: Syntax error"},
		{"CEL undeclared name", "    when: 'amount < 500'\n", "    when: «'price < 500'\n", "grants[0].when", "undeclared reference to 'price'"},
		{"CEL type error", "    when: 'amount < 500'\n", "    when: «'amount == \"x\"'\n", "grants[0].when", "no matching overload"},
		{"CEL not bool", "    when: 'amount < 500'\n", "    when: «'amount + 1'\n", "grants[0].when", "must be true or false, but it is of type int"},
		{"CEL dyn result", "    when: 'amount < 500'\n", "    when: «'context.vip'\n", "grants[0].when", "must be true or false"},
		{"CEL in forbid", "    when: 'hour < 6'\n", "    when: «'hour < \"6\"'\n", "forbid[0].when", "no matching overload"},
		{"blank when", "    when: 'amount < 500'\n", "    when: «'  '\n", "grants[0].when", "must not be empty"},
		{"lowercase currency", "currency: COP\n", "currency: «cop\n", "currency", `invalid currency "cop"`},
		{"long currency", "currency: COP\n", "currency: «PESO\n", "currency", "ISO 4217"},
		{"label without en", "    label: {es: Regalo, en: Gift}\n", "    label: {«es: Regalo}\n", "actions[0].label.en", `a text in "en" is required`},
		{"label not a mapping", "    label: {es: Regalo, en: Gift}\n", "    label: «Regalo\n", "actions[0].label", "must be a mapping of language to text"},
		{"empty label text", "    label: {es: Regalo, en: Gift}\n", "    label: {es: Regalo, en: «\"\"}\n", "actions[0].label.en", "must not be empty"},
		{"max_amount required for monetary", "    max_amount: 100\n", "", "grants[0].max_amount", `max_amount is required because action "gift" is monetary`},
		{"star mixed with ids", "    actions: [gift]\n", "    actions: «[\"*\", gift]\n", "grants[0].actions", `"*" must be the only entry`},
		{"empty action list", "    actions: [gift]\n", "    actions: «[]\n", "grants[0].actions", "at least one action"},
		{"duplicate list entry", "    actions: [gift]\n", "    actions: [gift, «gift]\n", "grants[0].actions[1]", `duplicate entry "gift"`},
		{"bool as string", "    monetary: false\n", "    monetary: «\"no\"\n", "actions[1].monetary", "must be true or false"},
		{"list expected", "    budgets: [daily]\n", "    budgets: «daily\n", "grants[0].budgets", "must be a list"},
		{"bad team slug", "    budgets: [daily]\n", "    budgets: [daily]\n    teams: [«Sala Principal]\n", "grants[0].teams[0]", "invalid team slug"},
		{"empty teams", "    budgets: [daily]\n", "    budgets: [daily]\n    teams: «[]\n", "grants[0].teams", "list at least one team"},
		{"empty forbid roles", "    actions: [waive]\n    when: 'hour < 6'\n", "    actions: [waive]\n    roles: «[]\n    when: 'hour < 6'\n", "forbid[0].roles", "list at least one role"},
		{"forbid without reason", "    reason: {es: \"De noche no\", en: \"Not at night\"}\n", "", "forbid[0].reason", "reason is required"},
		{"alias", "  - id: staff\n", "  - id: &s staff\n", "", ""}, // anchors alone are fine; see next case
		{"alias use", "    inherits: [staff]\n", "    inherits: [«*s]\n", "roles[1].inherits[0]", "aliases are not supported"},
		{"malformed id still resolves references", "  - id: gift\n", "  - id: «Gift\n", "", ""}, // see below
		{"grant not a mapping", "  - id: waivers\n    role: staff\n    actions: [waive]\n", "  - «waivers\n", "grants[1]", "must be a mapping, got a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := replace(t, tt.old, tt.new)
			if tt.name == "malformed id still resolves references" {
				src = strings.Replace(src, "    actions: [gift]\n", "    actions: [Gift]\n", 1)
				tt.path, tt.msg = "actions[0].id", `invalid id "Gift"`
			}
			if tt.name == "alias" {
				mustParse(t, src)
				return
			}
			if tt.name == "alias use" {
				src = strings.Replace(src, "  - id: staff\n", "  - id: &s staff\n", 1)
			}
			wantLine, wantCol := 0, 0
			if strings.Contains(src, "«") {
				src, wantLine, wantCol = marked(t, src)
			}
			es := parseErrors(t, src)
			if len(es) != 1 {
				t.Fatalf("got %d errors, want 1:\n%v", len(es), es)
			}
			e := es[0]
			if e.Path != tt.path || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %s: %q, want %s: ...%q...", e.Path, e.Msg, tt.path, tt.msg)
			}
			if wantLine != 0 && (e.Line != wantLine || e.Column != wantCol) {
				t.Errorf("position %d:%d, want %d:%d (%v)", e.Line, e.Column, wantLine, wantCol, e)
			}
			if wantLine == 0 && e.Line == 0 {
				t.Errorf("error has no position: %v", e)
			}
		})
	}
}

// Errors for a missing field point at the mapping that lacks it.
func TestParseMissingFieldPosition(t *testing.T) {
	tests := []struct {
		name, old, new string
		line, col      int
	}{
		{"currency at document start", "currency: COP\n", "", 1, 1},
		{"max_amount at the grant", "    max_amount: 100\n", "", 24, 5},
		{"role at the grant", "    role: staff\n    actions: [gift]\n", "    actions: [gift]\n", 24, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := parseErrors(t, replace(t, tt.old, tt.new))
			if es[0].Line != tt.line || es[0].Column != tt.col {
				t.Errorf("position %d:%d, want %d:%d (%v)", es[0].Line, es[0].Column, tt.line, tt.col, es[0])
			}
		})
	}
}

func TestParseReportsEveryErrorSorted(t *testing.T) {
	src := `currency: cop
actions:
  - id: gift
    label: {es: Regalo}
roles:
  - id: staff
    label: {es: Personal, en: Staff}
    inherits: [ghost]
grants:
  - id: g1
    role: chef
    actions: [gift, cake]
    max_amount: -1
    when: 'amount <'
  - id: g1
    role: staff
    actions: [gift]
    max_amount: 5
    colour: blue
forbid:
  - id: f
    actions: [gift]
`
	es := parseErrors(t, src)
	want := []string{
		"currency",
		"actions[0].label.en",
		"roles[0].inherits[0]",
		"grants[0].role",
		"grants[0].actions[1]",
		"grants[0].max_amount",
		"grants[0].when",
		"grants[1].id",
		"grants[1].colour",
		"forbid[0].reason",
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Path)
	}
	if !slices.Equal(got, want) {
		t.Errorf("paths\n got %q\nwant %q\nerrors:\n%v", got, want, es)
	}
	if !slices.IsSortedFunc(es, func(a, b Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	}) {
		t.Errorf("errors not sorted by position:\n%v", es)
	}
	if s := es.Error(); !strings.Contains(s, "line 1, column 11: currency: ") || strings.Count(s, "\n") != len(es)-1 {
		t.Errorf("Errors.Error() = %q", s)
	}
}

func TestParseDocumentLevelErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int
		msg  string
	}{
		{"empty", "", 1, "policy is empty"},
		{"blank", "  \n\t\n", 1, "policy is empty"},
		{"only a comment", "# nada\n", 1, "policy is empty"},
		{"null document", "~\n", 1, "policy is empty"},
		{"scalar root", "hola\n", 1, "must be a mapping"},
		{"list root", "- a\n- b\n", 1, "must be a mapping"},
		{"two documents", "currency: COP\n---\ncurrency: EUR\n", 3, "only one YAML document"},
		{"unclosed flow list", "currency: COP\nactions: [\n", 2, "YAML syntax error"},
		{"bad indentation", "currency: COP\nactions:\n  - id: a\n label: x\n", 4, "YAML syntax error"},
		{"duplicate key", "currency: COP\ncurrency: EUR\n", 2, "YAML syntax error"},
		{"unterminated quote", "currency: 'COP\n", 1, "YAML syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := parseErrors(t, tt.src)
			if es[0].Line != tt.line || !strings.Contains(es[0].Msg, tt.msg) {
				t.Errorf("got %v, want line %d and %q", es, tt.line, tt.msg)
			}
		})
	}
}

func TestParseRolesLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("currency: COP\nactions:\n  - id: gift\n    label: {es: a, en: b}\nroles:\n")
	for i := range MaxRoles + 1 {
		fmt.Fprintf(&b, "  - id: r%d\n    label: {es: a, en: b}\n", i)
	}
	es := parseErrors(t, b.String())
	if len(es) != 1 || es[0].Path != "roles" || !strings.Contains(es[0].Msg, "at most 100") || es[0].Line != 6 {
		t.Errorf("got %v", es)
	}
}

func TestParseTooLarge(t *testing.T) {
	src := basePolicy + "#" + strings.Repeat("x", MaxPolicySize) + "\n"
	es := parseErrors(t, src)
	if !strings.Contains(es[0].Msg, "too large") {
		t.Errorf("got %v", es)
	}
}

func TestExamplePolicy(t *testing.T) {
	p := mustParseFile(t, "testdata/restaurant.yaml")
	if got := p.Currency(); got != "COP" {
		t.Errorf("Currency() = %q", got)
	}
	a, ok := p.Action("rule_exception")
	if !ok || a.Monetary || a.Label["es"] != "Excepción a una norma" || a.Label["en"] != "Exception to a rule" {
		t.Errorf("Action(rule_exception) = %+v, %v", a, ok)
	}
	if a, ok := p.Action("courtesy_gift"); !ok || !a.Monetary {
		t.Errorf("Action(courtesy_gift) = %+v, %v; want monetary by default", a, ok)
	}
	if _, ok := p.Action("nope"); ok {
		t.Error("Action(nope) found")
	}
	if n := len(p.Actions()); n != 7 {
		t.Errorf("%d actions, want 7", n)
	}
	if !p.HasRole("supervisor") || !p.HasRole(OwnerRole) || p.HasRole("nope") {
		t.Error("HasRole")
	}
	// Five declared roles, then the built-in owner.
	if rs := p.Roles(); len(rs) != 6 || rs[4].Builtin || !rs[5].Builtin || rs[5].ID != OwnerRole || rs[5].Label["es"] != "Propietario" {
		t.Errorf("Roles() = %+v, want 5 declared roles and the built-in owner", rs)
	}
	b, ok := p.Budget("team_monthly")
	if !ok || b.Hard || b.Scope != ScopeTeam || b.Period != PeriodMonth || b.Limit != 300000000 {
		t.Errorf("Budget(team_monthly) = %+v, %v", b, ok)
	}
	if b, _ := p.Budget("member_daily"); !b.Hard {
		t.Error("budgets are hard by default")
	}
	if _, ok := p.Budget("nope"); ok {
		t.Error("Budget(nope) found")
	}
	if n := len(p.Budgets()); n != 5 {
		t.Errorf("%d budgets, want 5", n)
	}
	grants := p.Grants()
	if len(grants) != 11 {
		t.Fatalf("%d grants, want 11", len(grants))
	}
	if g := grants[0]; g.ID != "bread_basket" || g.Above == nil || g.Above.SLA != 5*time.Minute || g.Above.OnTimeout != OnTimeoutDeny {
		t.Errorf("grant 0 = %+v (above %+v)", g, g.Above)
	}
	if g := grants[1]; g.Above == nil || g.Above.Approver != "supervisor" || g.Above.EscalateTo != "manager" {
		t.Errorf("grant without above must get the default route: %+v", g.Above)
	}
	if g := grants[2]; g.Hard {
		t.Errorf("replacement_dish must be soft")
	}
	if g := grants[10]; g.ID != "manager_all" || g.Above != nil || !slices.Equal(g.Actions, []string{"*"}) {
		t.Errorf("manager_all = %+v", g)
	}
	if r, ok := p.DefaultApproval(); !ok || r.SLA != 10*time.Minute || r.OnTimeout != OnTimeoutEscalate {
		t.Errorf("DefaultApproval() = %+v, %v", r, ok)
	}
	forbids := p.Forbids()
	if len(forbids) != 3 || forbids[0].ID != "no_cash_refunds" || forbids[0].Reason["es"] == "" {
		t.Errorf("forbids = %+v", forbids)
	}
	for role, want := range map[string][]string{
		"frontline":  {"frontline"},
		"cashier":    {"cashier", "frontline"},
		"supervisor": {"supervisor", "cashier", "agent", "frontline"},
		"manager":    {"manager", "supervisor", "cashier", "agent", "frontline"},
		"nobody":     nil,
	} {
		if got := p.RolesReaching(role); !slices.Equal(got, want) {
			t.Errorf("RolesReaching(%q) = %q, want %q", role, got, want)
		}
	}
	// The accessors hand out copies.
	p.Grants()[0].ID = "mutated"
	p.RolesReaching("manager")[0] = "mutated"
	if p.Grants()[0].ID != "bread_basket" || p.RolesReaching("manager")[0] != "manager" {
		t.Error("accessors expose internal slices")
	}
}

func TestParseDefaults(t *testing.T) {
	p := mustParse(t, replace(t, "approval:\n  approver: boss\n  sla: 10m\n  on_timeout: deny\n", ""))
	if _, ok := p.DefaultApproval(); ok {
		t.Error("no approval section, but a default route")
	}
	g := p.Grants()[0]
	if g.Above != nil || !g.Hard || g.MaxAmount != 100 {
		t.Errorf("grant = %+v", g)
	}
	// A grant of non-monetary actions needs no max_amount.
	if g := p.Grants()[1]; g.MaxAmount != 0 || g.When != "" {
		t.Errorf("waivers = %+v", g)
	}
}

func TestParseAcceptsBlockScalarsAndLaterRoles(t *testing.T) {
	src := replace(t, "    when: 'amount < 500'\n", "    when: |\n      amount < 500 &&\n      hour >= 8\n")
	// A role may inherit from one declared after it.
	src = strings.Replace(src, "  - id: staff\n    label: {es: Personal, en: Staff}\n", "  - id: staff\n    label: {es: Personal, en: Staff}\n    inherits: [trainee]\n", 1)
	src = strings.Replace(src, "budgets:\n", "  - id: trainee\n    label: {es: Aprendiz, en: Trainee}\nbudgets:\n", 1)
	p := mustParse(t, src)
	if got := p.RolesReaching("boss"); !slices.Equal(got, []string{"boss", "staff", "trainee"}) {
		t.Errorf("RolesReaching(boss) = %q", got)
	}
	if w := p.Grants()[0].When; !strings.Contains(w, "hour >= 8") {
		t.Errorf("when = %q", w)
	}
}

func TestParseTestdataFiles(t *testing.T) {
	files, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".yaml") {
			continue
		}
		t.Run(f.Name(), func(t *testing.T) {
			mustParseFile(t, "testdata/"+f.Name())
		})
	}
}

// TestOwnerRoleBuiltin: a policy need not declare the owner's role; routes,
// grants and forbids may name it; a policy that declares it keeps its own.
func TestOwnerRoleBuiltin(t *testing.T) {
	p := mustParse(t, `
currency: COP
actions:
  - {id: gift, label: {es: Regalo, en: Gift}}
roles:
  - {id: waiter, label: {es: Mesero, en: Waiter}}
approval: {approver: owner, sla: 10m, on_timeout: deny}
grants:
  - {id: small, role: waiter, actions: [gift], max_amount: 100}
  - {id: owner_gift, role: owner, actions: [gift], max_amount: 1000}
forbid:
  - {id: never, actions: [gift], roles: [owner], when: 'amount > 5000', reason: {es: No, en: No}}
`)
	if !p.HasRole(OwnerRole) || !slices.Equal(p.RolesReaching(OwnerRole), []string{OwnerRole}) {
		t.Errorf("owner: HasRole %v, reach %v", p.HasRole(OwnerRole), p.RolesReaching(OwnerRole))
	}
	if rt, _ := p.DefaultApproval(); rt.Approver != OwnerRole {
		t.Errorf("default route = %+v", rt)
	}
	v, err := p.Evaluate(&Request{Role: OwnerRole, Action: "gift", Amount: 500, At: time.Now()})
	if err != nil || len(v.Candidates) != 1 || v.Candidates[0].Rule != "owner_gift" {
		t.Errorf("owner asks for 500: %+v, %v", v, err)
	}
	if v, _ := p.Evaluate(&Request{Role: OwnerRole, Action: "gift", Amount: 6000, At: time.Now()}); v.Outcome != Denied || v.Rule != "never" {
		t.Errorf("owner asks for 6000: %+v", v)
	}

	declared := mustParse(t, `
currency: COP
actions:
  - {id: gift, label: {es: Regalo, en: Gift}}
roles:
  - {id: owner, label: {es: Dueña, en: Owner}, inherits: [waiter]}
  - {id: waiter, label: {es: Mesero, en: Waiter}}
`)
	if rs := declared.Roles(); len(rs) != 2 || rs[0].Builtin || rs[0].Label["es"] != "Dueña" ||
		!slices.Equal(declared.RolesReaching(OwnerRole), []string{OwnerRole, "waiter"}) {
		t.Errorf("declared owner: %+v", rs)
	}
}
