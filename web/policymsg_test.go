package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/margenhq/margen/i18n"
	"github.com/margenhq/margen/policy"
)

// policyWordings finds every fixed wording of the policy package's
// problems in its source: the format argument of errorf, newError,
// limitError and scanTokens's fail, and every Format field.
func policyWordings(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../policy/*.go")
	if err != nil {
		t.Fatal(err)
	}
	at := map[string]int{"errorf": 2, "newError": 3, "limitError": 5, "fail": 3}
	seen := map[string]bool{}
	var out []string
	add := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				if i, ok := at[name]; ok && i < len(n.Args) {
					add(n.Args[i])
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Format" {
					add(n.Value)
				}
			}
			return true
		})
	}
	if len(out) < 40 {
		t.Fatalf("only %d wordings found in the policy package", len(out))
	}
	return out
}

// TestPolicyWordingsTranslated: every wording of a policy problem has its
// key in Spanish and in English, with one placeholder per argument.
func TestPolicyWordingsTranslated(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range policyWordings(t) {
		key := policyKey(w)
		for _, lang := range []string{"es", "en"} {
			if !cat.Has(lang, key) {
				t.Errorf("%q: no %s message %s", w, lang, key)
				continue
			}
			args := map[string]any{}
			for i := range policyVerb.FindAllString(w, -1) {
				args[string(rune('a'+i))] = "ARG" + strconv.Itoa(i) + "ARG"
			}
			got := cat.T(lang, key, args)
			for name, v := range args {
				if !strings.Contains(got, v.(string)) {
					t.Errorf("%s %s does not show {%s}: %q", lang, key, name, got)
				}
			}
		}
	}
}

// TestPolicyMessageInSpanish: a problem of a broken policy reads in the
// page's language, with its arguments.
func TestPolicyMessageInSpanish(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	_, err = policy.Parse([]byte("currency: COP\nactions: [{id: gift, label: {es: Regalo, en: Gift}}, {id: gift, label: {es: Regalo, en: Gift}}]\nroles: [{id: w, label: {es: M, en: W}}]\n"))
	es, ok := err.(policy.Errors)
	if !ok || len(es) == 0 {
		t.Fatalf("want policy errors, got %v", err)
	}
	var e policy.Error
	for _, x := range es {
		if strings.Contains(x.Msg, "duplicate action id") {
			e = x
		}
	}
	if e.Format == "" {
		t.Fatalf("no duplicate action error in %v", es)
	}
	p := &page{cat: cat, Lang: "es"}
	if got := p.policyMessage(e); !strings.Contains(got, `"gift"`) || strings.Contains(got, "duplicate") {
		t.Errorf("in Spanish: %q", got)
	}
	p.Lang = "en"
	if got := p.policyMessage(e); got != e.Msg {
		t.Errorf("in English: %q, want %q", got, e.Msg)
	}
}

// TestActorName: the audit trail names members by name, margen's own
// actors in the page's language, anything else as recorded.
func TestActorName(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	p := &page{cat: cat, Lang: "es"}
	names := map[string]string{"mem_1": "Camila Rojas"}
	for actor, want := range map[string]string{"mem_1": "Camila Rojas", "cli": "la línea de comandos", "system": "el sistema", "test": "test"} {
		if got := p.actorName(names, actor); got != want {
			t.Errorf("actorName(%q) = %q, want %q", actor, got, want)
		}
	}
}

// TestConditionMessages: the CEL compiler's common problems read in the
// page's language, with their line and column in the condition; an
// unknown one keeps the compiler's words.
func TestConditionMessages(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	const doc = "currency: COP\nactions: [{id: g, label: {es: Regalo, en: Gift}}]\nroles: [{id: w, label: {es: M, en: W}}]\n" +
		"grants: [{id: x, role: w, actions: [g], max_amount: 100, when: 'COND'}]\n"
	for _, c := range []struct {
		cond   string
		es, en []string
	}{
		{"price < 500", []string{"Condición no válida: línea 1, columna 1 de la condición: nombre desconocido «price»"},
			[]string{"Invalid condition: line 1, column 1 of the condition: unknown name 'price'"}},
		{`amount == "x"`, []string{"línea 1, columna 8 de la condición: «==» no se puede aplicar a int, string"},
			[]string{"line 1, column 8 of the condition: '==' cannot be applied to int, string"}},
		{"amount <", []string{"línea 1, columna 9 de la condición: error de sintaxis: se encontró el final de la condición donde se esperaba"},
			[]string{"line 1, column 9 of the condition: syntax error: found the end of the condition where"}},
		{"amount # 3", []string{"columna 8 de la condición: error de sintaxis: no se entiende el carácter «#»; línea 1, columna 10 de la condición: error de sintaxis: 3 está fuera de lugar (se esperaba el final de la condición)"},
			[]string{"column 8 of the condition: syntax error: the character '#' is not understood; line 1, column 10 of the condition: syntax error: 3 is out of place (the end of the condition was expected)"}},
		{"size(amount)", []string{"«size» no se puede aplicar a int"}, []string{"'size' cannot be applied to int"}},
	} {
		_, err := policy.Parse([]byte(strings.Replace(doc, "COND", c.cond, 1)))
		es, ok := err.(policy.Errors)
		if !ok || len(es) != 1 {
			t.Fatalf("%s: want one policy error, got %v", c.cond, err)
		}
		p := &page{cat: cat, Lang: "es"}
		got := p.policyMessage(es[0])
		for _, want := range c.es {
			if !strings.Contains(got, want) {
				t.Errorf("%s in Spanish: %q lacks %q", c.cond, got, want)
			}
		}
		if strings.Contains(got, "Syntax error") || strings.Contains(got, "undeclared") || strings.Contains(got, "overload") {
			t.Errorf("%s in Spanish keeps English words: %q", c.cond, got)
		}
		p.Lang = "en"
		got = p.policyMessage(es[0])
		for _, want := range c.en {
			if !strings.Contains(got, want) {
				t.Errorf("%s in English: %q lacks %q", c.cond, got, want)
			}
		}
	}
	// A problem the translation does not know keeps the compiler's words.
	p := &page{cat: cat, Lang: "es"}
	if got := p.policyMessage(policy.Error{Msg: "invalid condition: 2:3: something new"}); got != "Condición no válida: línea 2, columna 3 de la condición: something new" {
		t.Errorf("unknown problem: %q", got)
	}
	if got := p.policyMessage(policy.Error{Msg: "invalid condition: boom"}); got != "invalid condition: boom" {
		t.Errorf("no position: %q", got)
	}
}
