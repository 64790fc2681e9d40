package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// call sends a JSON request with a token and returns the status and the
// decoded answer.
func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", time.Now().Format(time.RFC3339Nano))
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, out
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// TestDemoBackupRestoresAndServes: a backup of the demo database, taken
// while the server runs, restores on another path, and a server on the
// restored copy answers the README's tour: a decision, a reaction, a
// refusal, an explanation, a request above latitude approved by the
// supervisor, the ledger check.
func TestDemoBackupRestoresAndServes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	margen(t, "demo", "--db", db)
	srv := start(t, db)
	admin := tokenRE.FindString(margen(t, "token", "create", "--db", db, "--org", "demo", "--member", "admin"))
	// Written before the backup: it must be in the copy.
	code, before := call(t, "POST", srv.url+"/api/v1/decisions", admin,
		`{"action":"cortesia","amount":500000,"customer":{"ref":"antes-del-backup"},"reason":"antes","context":{"order_total":9000000}}`)
	if code != 201 {
		t.Fatalf("decision before the backup: %d %v", code, before)
	}
	bak := filepath.Join(t.TempDir(), "demo-backup.db")
	out := margen(t, "backup", "--db", db, "--to", bak) // online: the server is running
	if !strings.Contains(out, "ledger and audit chain ok") {
		t.Fatalf("backup: %s", out)
	}
	srv.kill()

	restored := filepath.Join(t.TempDir(), "restored.db")
	out = margen(t, "restore", "--from", bak, "--db", restored)
	if !strings.Contains(out, "restored "+restored) {
		t.Fatalf("restore: %s", out)
	}
	srv = start(t, restored)
	camila := tokenRE.FindString(margen(t, "token", "create", "--db", restored, "--org", "demo", "--member", "camila"))
	marta := tokenRE.FindString(margen(t, "token", "create", "--db", restored, "--org", "demo", "--member", "marta"))
	if camila == "" || marta == "" {
		t.Fatal("token create printed no token")
	}
	if code, body := call(t, "GET", srv.url+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz on the restored copy: %d %v", code, body)
	}
	if code, body := call(t, "GET", srv.url+"/api/v1/decisions/"+str(before, "id"), admin, ""); code != 200 {
		t.Fatalf("the decision written before the backup is missing: %d %v", code, body)
	}

	// ¿Puedo? A second bread basket.
	code, d := call(t, "POST", srv.url+"/api/v1/decisions", camila,
		`{"action":"cortesia","amount":800000,"customer":{"ref":"mesa-12","name":"Mesa 12"},"reason":"Segunda canasta de pan para mesa de 6","context":{"order_total":18000000}}`)
	if code != 201 || str(d, "outcome") != "allowed" || str(d, "act_id") == "" {
		t.Fatalf("decision: %d %v", code, d)
	}
	if code, r := call(t, "POST", srv.url+"/api/v1/acts/"+str(d, "act_id")+"/reaction", camila,
		`{"sentiment":"positive","note":"Volverán el viernes"}`); code != 201 {
		t.Fatalf("reaction: %d %v", code, r)
	}
	if code, r := call(t, "POST", srv.url+"/api/v1/refusals", camila,
		`{"wanted":"Usar el cajero de empleados","reason":"no_rule","customer_left":"unhappy"}`); code != 201 {
		t.Fatalf("refusal: %d %v", code, r)
	}
	margen(t, "policy", "explain", "--db", restored, "--org", "demo", "--member", "camila", "--action", "cortesia",
		"--amount", "2500000", "--context", `{"order_total":9000000}`)

	// Above latitude: Marta approves.
	code, d = call(t, "POST", srv.url+"/api/v1/decisions", camila,
		`{"action":"cortesia","amount":4000000,"customer":{"ref":"LB-1003"},"reason":"Cumpleaños: postre y bebida; el plato principal tardó 40 minutos","context":{"order_total":30000000}}`)
	if code != 201 || str(d, "outcome") != "needs_approval" || str(d, "approval_id") == "" {
		t.Fatalf("decision above latitude: %d %v", code, d)
	}
	if code, p := call(t, "GET", srv.url+"/api/v1/approvals/pending", marta, ""); code != 200 || !strings.Contains(mustJSON(p), str(d, "approval_id")) {
		t.Fatalf("pending approvals: %d %v", code, p)
	}
	code, a := call(t, "POST", srv.url+"/api/v1/approvals/"+str(d, "approval_id")+"/approve", marta,
		`{"comment":"Adelante: es su cumpleaños y la cocina falló"}`)
	if code != 200 || str(a, "status") != "approved" {
		t.Fatalf("approve: %d %v", code, a)
	}
	if code, body := call(t, "GET", srv.url+"/api/v1/backups/last", admin, ""); code != 200 || body["configured"] != false {
		t.Fatalf("backups/last without scheduled backups: %d %v", code, body)
	}
	srv.kill()
	out = margen(t, "ledger", "check", "--db", restored, "--org", "demo")
	if !strings.Contains(out, "chain intact") {
		t.Fatalf("ledger check: %s", out)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
