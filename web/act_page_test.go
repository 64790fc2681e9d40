package web_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen/store"
)

// TestActPageNamesTheAction: the page of one act names its action by the
// policy's label in the reader's language, as the inbox does, not by its id.
func TestActPageNamesTheAction(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db, false)
		d := s.apiDecision(t, "camila", map[string]any{"action": "cortesia", "amount": 5000, "reason": "postre",
			"customer": map[string]any{"ref": "mesa-3", "name": "Mesa 3"}})
		m := s.client(t)
		m.signin("marta", s.Pass["marta"])
		res, body := m.do("GET", "/acts/"+d.ActID, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "<dd>Cortesía de la casa</dd>") || strings.Contains(body, "<dd>cortesia</dd>") {
			t.Fatalf("act page: %d %s", res.StatusCode, body)
		}
		if err := db.SetMemberLanguage(context.Background(), s.Org.ID, s.Org.Members["marta"].ID, "en", "test"); err != nil {
			t.Fatal(err)
		}
		m = s.client(t)
		m.signin("marta", s.Pass["marta"])
		if res, body = m.do("GET", "/acts/"+d.ActID, nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "<dd>Courtesy gift</dd>") {
			t.Fatalf("act page in English: %d %s", res.StatusCode, body)
		}
	})
}

// invalidBeforeError checks that every field marked invalid is followed at
// once by its error message: Pico colours the <small> right after an
// invalid field red, which must be the error, not the field's help.
func invalidBeforeError(t *testing.T, body string) {
	t.Helper()
	input := regexp.MustCompile(`<input\b[^>]*aria-invalid="true"[^>]*>\s*(<small[^>]*>)?`)
	other := regexp.MustCompile(`(?s)<(?:select|textarea)\b[^>]*aria-invalid="true"[^>]*>.*?</(?:select|textarea)>\s*(<small[^>]*>)?`)
	found := append(input.FindAllStringSubmatch(body, -1), other.FindAllStringSubmatch(body, -1)...)
	if len(found) == 0 {
		t.Fatalf("no field is marked invalid:\n%s", body)
	}
	for _, m := range found {
		if !strings.Contains(m[1], `class="error"`) {
			t.Errorf("an invalid field is not followed by its error but by %q:\n%s", m[1], m[0])
		}
	}
}
