package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mg "github.com/margenhq/margen"
	"github.com/margenhq/margen/store"
	"github.com/margenhq/margen/store/storetest"
)

// chainPolicy routes requests (and follow-up cases) to a supervisor, who
// escalates to a manager on timeout: a case goes supervisor -> manager ->
// owners.
const chainPolicy = `
currency: EUR
actions:
  - id: courtesy_gift
    label: {es: "Cortesía", en: "Courtesy gift"}
roles:
  - id: frontline
    label: {es: "Primera línea", en: "Frontline"}
  - id: supervisor
    label: {es: "Supervisora", en: "Supervisor"}
    inherits: [frontline]
  - id: manager
    label: {es: "Gerente", en: "Manager"}
    inherits: [supervisor]
approval:
  approver: supervisor
  sla: 10m
  on_timeout: escalate
  escalate_to: manager
grants:
  - id: gift
    role: frontline
    actions: [courtesy_gift]
    max_amount: 100
`

// TestCaseEscalatesOnceAcrossProcesses: a customer's low answer (on one
// `margen serve` process) opens a follow-up case whose 2-second SLA passes
// while two processes sweep one PostgreSQL every 100 ms: it escalates
// supervisor -> manager -> owners, each step exactly once (two
// case.escalate audit entries, two steps, no third after it reached the
// owners), and the trail still verifies.
func TestCaseEscalatesOnceAcrossProcesses(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	margen(t, "migrate", "--db", dsn)
	margen(t, "org", "create", "--db", dsn, "--slug", "e2e", "--name", "E2E", "--currency", "EUR",
		"--timezone", "Europe/Madrid", "--owner", "boss")
	for _, m := range [][3]string{{"ana", "frontline", "frontline"}, {"sara", "supervisor", "supervisor"}, {"mo", "manager", "manager"}} {
		margen(t, "member", "add", "--db", dsn, "--org", "e2e", "--login", m[0], "--name", m[0], "--access", m[1], "--role", m[2])
	}
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte(chainPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	margen(t, "policy", "publish", "--db", dsn, "--org", "e2e", pol)
	ana := tokenRE.FindString(margen(t, "token", "create", "--db", dsn, "--org", "e2e", "--member", "ana"))
	if ana == "" {
		t.Fatal("no token")
	}
	flags := []string{"--case-sla", "2s", "--sla-every", "100ms"}
	a, b := start(t, dsn, flags...), start(t, dsn, flags...)

	code, d := call(t, "POST", a.url+"/api/v1/decisions", ana, `{"action": "courtesy_gift", "amount": 50, "customer": {"ref": "c1"}}`)
	if code != 201 || str(d, "act_id") == "" {
		t.Fatalf("decision: %d %v", code, d)
	}
	code, l := call(t, "POST", b.url+"/api/v1/acts/"+str(d, "act_id")+"/survey-link", ana, `{}`)
	if code != 201 || str(l, "token") == "" {
		t.Fatalf("survey link: %d %v", code, l)
	}
	res, err := http.PostForm(a.url+"/s/"+str(l, "token"), url.Values{"score": {"1"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("answer: %d", res.StatusCode)
	}

	// The store as the servers open it (their shared audit key).
	ctx := context.Background()
	raw, err := os.ReadFile(os.Getenv("MARGEN_AUDIT_KEY_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := mg.ParseAuditKey(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, dsn, store.Options{AuditKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	org, err := db.OrgBySlug(ctx, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := db.ListCases(ctx, org.ID, mg.CaseFilter{})
	if err != nil || len(cs) != 1 || cs[0].Role != mg.CaseRoleSupervisor {
		t.Fatalf("cases = %+v, %v", cs, err)
	}
	id := cs[0].ID
	deadline := time.Now().Add(30 * time.Second)
	var c *mg.FollowUpCase
	for {
		if c, err = db.GetCase(ctx, org.ID, id); err != nil {
			t.Fatal(err)
		}
		if c.Role == mg.CaseRoleOwner || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c.Role != mg.CaseRoleOwner || c.Level != 2 || strings.Join(c.Earlier, ",") != ",manager" {
		t.Fatalf("after the SLAs: %+v", c)
	}
	// Both processes keep sweeping: nothing more happens.
	time.Sleep(3 * time.Second)
	entries, err := db.ListAudit(ctx, org.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var escalations []string
	for _, e := range entries {
		if e.Action == mg.ActionCaseEscalate && e.Subject == id {
			escalations = append(escalations, string(e.Data))
		}
	}
	if len(escalations) != 2 || !strings.Contains(escalations[0], `"approver_role":"manager"`) ||
		!strings.Contains(escalations[1], `"approver_role":"owner"`) {
		t.Fatalf("case.escalate entries: %d %q, want 2 (to manager, to owner)", len(escalations), escalations)
	}
	if c, _ = db.GetCase(ctx, org.ID, id); c.Level != 2 {
		t.Fatalf("level %d after the wait", c.Level)
	}
	if rep, err := db.CheckAudit(ctx, org.ID); err != nil || !rep.OK() {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}
