package i18n_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/margenhq/margen/i18n"
)

// explanationCodes are the codes decision.explain can produce (the policy
// verdict codes that reach a recorded decision).
var explanationCodes = []string{
	"within_latitude", "soft_over_max", "soft_budget_exceeded", "over_max",
	"budget_exhausted", "forbidden", "no_grant", "condition_not_met",
}

func catalog(t *testing.T) *i18n.Catalog {
	t.Helper()
	c, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEveryKeyInBothLanguages walks the module and checks that every
// "error.*" key written in Go code, and every explanation code, has a
// non-empty message in Spanish and in English.
func TestEveryKeyInBothLanguages(t *testing.T) {
	c := catalog(t)
	re := regexp.MustCompile(`"(error\.[a-z_.]+)"`)
	keys := map[string]string{} // key -> first file using it
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			if _, seen := keys[m[1]]; !seen {
				keys[m[1]] = path
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 10 {
		t.Fatalf("found only %d error keys in the module: is the walk broken?", len(keys))
	}
	for _, code := range explanationCodes {
		keys["explain."+code] = "decision codes"
	}
	for key, where := range keys {
		for _, lang := range i18n.Languages {
			if !c.Has(lang, key) {
				t.Errorf("%s (used in %s) has no %s message", key, where, lang)
			}
		}
	}
	for _, key := range c.Keys() {
		for _, lang := range i18n.Languages {
			if msg := c.T(lang, key, nil); strings.TrimSpace(msg) == "" || msg == key {
				t.Errorf("%s: %s message is empty", lang, key)
			}
		}
	}
}

func TestMatch(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "es",
		"en":                        "en",
		"en-US,en;q=0.9":            "en",
		"es-CO,es;q=0.9,en;q=0.8":   "es",
		"fr-FR":                     "es",
		"fr-FR,en;q=0.5":            "en",
		"de, es;q=0.1":              "es",
		"garbage;;;q=x":             "es",
		"pt-BR,pt;q=0.9,en-GB;q=.5": "en",
	} {
		if got := i18n.Match(in); got != want {
			t.Errorf("Match(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatMoney(t *testing.T) {
	for _, tc := range []struct {
		lang, cur string
		minor     int64
		want      string
	}{
		{"es", "COP", 1500000, "15.000,00 COP"},
		{"en", "COP", 1500000, "COP 15,000.00"},
		{"es", "EUR", -123450, "-1.234,50 EUR"},
		{"en", "EUR", -123450, "-EUR 1,234.50"},
		{"es", "USD", 5, "0,05 USD"},
		{"en", "USD", 0, "USD 0.00"},
		{"es", "CLP", 1500, "1.500 CLP"},
		{"en", "JPY", 1234567, "JPY 1,234,567"},
		{"es", "CRC", 100000000, "1.000.000,00 CRC"},
		{"en", "MXN", 99, "MXN 0.99"},
		{"es", "", 1500000, "15.000,00"},
		{"es-CO", "COP", 1000, "10,00 COP"},
		{"en", "XYZ", 12345, "XYZ 123.45"},
		{"es", "USD", -9223372036854775808, "-92.233.720.368.547.758,08 USD"},
	} {
		if got := i18n.FormatMoney(tc.lang, tc.cur, tc.minor); got != tc.want {
			t.Errorf("FormatMoney(%q, %q, %d) = %q, want %q", tc.lang, tc.cur, tc.minor, got, tc.want)
		}
	}
}

func TestExplain(t *testing.T) {
	c := catalog(t)
	for _, tc := range []struct {
		lang, code string
		args       map[string]any
		want       string
	}{
		{"es", "within_latitude", map[string]any{"rule": "small_courtesy", "remaining": int64(4500000), "period": "day"},
			"Puedes hacerlo: está dentro de tu margen (regla small_courtesy). Te quedan 45.000,00 COP hoy."},
		{"en", "within_latitude", map[string]any{"rule": "small_courtesy", "action": "Courtesy gift"},
			"Go ahead: Courtesy gift is within your latitude (rule small_courtesy)."},
		{"es", "over_max", map[string]any{"amount": int64(2000000), "max": int64(1500000), "approver": "Supervisor de turno", "sla": "10m0s", "rule": "bread_basket"},
			"Necesitas aprobación: 20.000,00 COP supera tu máximo de 15.000,00 COP. Se lo hemos pedido a Supervisor de turno (respuesta en 10 min)."},
		{"en", "over_max", map[string]any{"amount": float64(2000000), "max": json.Number("1500000"), "rule": "manager_all"},
			"You can't do this: COP 20,000.00 is over your maximum of COP 15,000.00 and this rule does not allow asking for approval (rule manager_all). If the customer needs it, you can ask for an exception."},
		{"en", "forbidden", map[string]any{"rule": "no_cash_refunds", "reason": map[string]any{"es": "No.", "en": "Cash refunds are not made at the counter."}},
			"Not allowed: Cash refunds are not made at the counter (rule no_cash_refunds)."},
		{"es", "budget_exhausted", map[string]any{"budget": "member_daily", "amount": int64(100), "remaining": int64(50), "approver": "supervisor", "sla": "1h30m0s"},
			"Necesitas aprobación: el presupuesto member_daily no alcanza para 1,00 COP (quedan 0,50 COP). Se lo hemos pedido a supervisor (respuesta en 1 h 30 min)."},
		{"en", "some_future_code", map[string]any{"rule": "r1"}, "The policy decided by rule r1."},
	} {
		if got := c.Explain(tc.lang, "COP", tc.code, tc.args); got != tc.want {
			t.Errorf("Explain(%s, %s):\n got %q\nwant %q", tc.lang, tc.code, got, tc.want)
		}
	}
}

func TestFormat(t *testing.T) {
	c := catalog(t)
	if got, want := c.T("en", "error.too_long", map[string]any{"field": "reason", "max": 1000}), "The field reason is too long (at most 1,000)."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := c.Format("es", "COP", "error.amount_too_large", map[string]any{"max": int64(1_000_000_000_000)}), "El importe es demasiado grande: el máximo es 10.000.000.000,00 COP."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := c.T("es", "error.not_found", map[string]any{"what": "decision"}), "No hemos encontrado esa decisión."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Braces that are not placeholders stay as written.
	if got := c.T("en", "error.context_object", nil); !strings.Contains(got, `{"order_total": 3000000}`) {
		t.Errorf("JSON example lost: %q", got)
	}
	// Unknown keys render as themselves; unknown languages fall back to Spanish.
	if got := c.T("es", "error.nope", nil); got != "error.nope" {
		t.Errorf("unknown key: %q", got)
	}
	if got, want := c.T("fr", "error.amount_negative", nil), "El importe no puede ser negativo."; got != want {
		t.Errorf("fallback: %q", got)
	}
}
