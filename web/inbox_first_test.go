package web_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen/store"
)

// TestInboxFirstScreen: with more pending requests than the first screen
// holds, the inbox shows the ones due soonest, in the order of GET
// /api/v1/approvals/pending for the same member, with the count of all and
// a link to them all; that link shows every one, and the answer's form and
// the live list keep asking for them all.
func TestInboxFirstScreen(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		const n = 23
		for i := range n {
			// Exceptions (no grant covers them) go to the owner and hold no budget.
			b, _ := json.Marshal(map[string]any{"description": fmt.Sprintf("Excepción %02d", i), "reason": "prueba"})
			req, _ := http.NewRequest("POST", s.URL+"/api/v1/exceptions", bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+s.Token["camila"])
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != http.StatusCreated {
				t.Fatalf("POST /api/v1/exceptions: %v %v", res, err)
			}
			res.Body.Close()
		}
		var api struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
		}
		apiGet(t, s, "admin", "/api/v1/approvals/pending?limit=100", &api)
		if len(api.Items) != n {
			t.Fatalf("the API lists %d pending requests, want %d", len(api.Items), n)
		}
		requestID := regexp.MustCompile(`<article class="request" id="request-([^"]+)"`)
		shown := func(body string) []string {
			var ids []string
			for _, m := range requestID.FindAllStringSubmatch(body, -1) {
				ids = append(ids, m[1])
			}
			return ids
		}
		o := s.client(t)
		o.signin("admin", s.Pass["admin"])
		res, body := o.do("GET", "/inbox", nil)
		ids := shown(body)
		if res.StatusCode != http.StatusOK || len(ids) != 20 || !strings.Contains(body, fmt.Sprintf("Pendientes ahora: %d", n)) ||
			!strings.Contains(body, "Se muestran las 20 que vencen antes.") ||
			!strings.Contains(body, `<a href="/inbox?pending=all#pending-heading">Verlas todas</a>`) {
			t.Fatalf("first screen: %d, %d requests\n%s", res.StatusCode, len(ids), body)
		}
		for i, id := range ids {
			if api.Items[i].ID != id {
				t.Fatalf("request %d of the first screen is %s, the API's is %s", i, id, api.Items[i].ID)
			}
		}
		res, body = o.do("GET", "/inbox?pending=all", nil)
		if ids = shown(body); res.StatusCode != http.StatusOK || len(ids) != n || strings.Contains(body, "Verlas todas") ||
			!strings.Contains(body, `sse-connect="/inbox/events?pending=all"`) ||
			strings.Count(body, `<input type="hidden" name="pending" value="all">`) != n {
			t.Fatalf("every request: %d, %d requests\n%s", res.StatusCode, len(ids), body)
		}
		// Answered from the whole list, the browser goes back to it.
		res, _ = o.do("POST", "/inbox/approvals/"+ids[0]+"/answer", url.Values{"answer": {"reject"}, "pending": {"all"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/inbox?pending=all" {
			t.Fatalf("answer from the whole list: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		// The fragment htmx swaps in keeps the whole list.
		res, body = o.do("POST", "/inbox/approvals/"+ids[1]+"/answer", url.Values{"answer": {"reject"}, "pending": {"all"}}, "HX-Request", "true")
		if res.StatusCode != http.StatusOK || len(shown(body)) != n-2 {
			t.Fatalf("fragment of the whole list: %d, %d requests\n%s", res.StatusCode, len(shown(body)), body)
		}
	})
}

// TestInboxActivityEscapes: the activity's rows escape what a member typed.
func TestInboxActivityEscapes(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		d := s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 5000, "reason": `<b>postre</b> & "vino"`,
			"customer": map[string]any{"ref": "mesa-<9>", "name": "Mesa <9>"}})
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		res, body := m.do("GET", "/inbox", nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `<small>&lt;b&gt;postre&lt;/b&gt; &amp; &#34;vino&#34;</small>`) ||
			!strings.Contains(body, "<td>Mesa &lt;9&gt;</td>") || strings.Contains(body, "<b>postre") ||
			!strings.Contains(body, `<a href="/acts/`+d.ActID+`">`) {
			t.Fatalf("activity: %d %s", res.StatusCode, body)
		}
	})
}
