package web

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template/parse"
	"unicode"

	"github.com/margenhq/margen"
	"github.com/margenhq/margen/i18n"
)

// TestTemplatesUseTheCatalogue fails when a template shows text that is not
// from the catalogue (letters in a text node outside tags, or in a
// placeholder, title, aria-label, alt or value attribute), or names a
// catalogue key (in a template or in this package's Go code) that Spanish
// or English lacks.
func TestTemplatesUseTheCatalogue(t *testing.T) {
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	a, err := loadAssets()
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseViews(cat, a)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	seen := map[string]bool{}
	for _, page := range v.pages {
		for _, tmpl := range page.Templates() {
			if tmpl.Tree == nil || seen[tmpl.Name()] && tmpl.Name() != "main" {
				continue
			}
			seen[tmpl.Name()] = true
			if problems := visibleText(tmpl.Tree.Root, keys); len(problems) > 0 {
				t.Errorf("template %s shows text outside the catalogue: %q", tmpl.Name(), problems)
			}
		}
	}
	// Keys built in Go code: p.T("key"...), errorPage(..., "key"), and the
	// keys with a variable part, completed here.
	goKey := regexp.MustCompile(`"((?:web|error\.page|signin|setup|account|counter|inbox|inbox2|inbox3|inbox4|desk|desk2|survey|surveydemo|ops|webpolish|cases|cases2|mail|privacy)\.[a-z_.]+)"`)
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = true
		}
	}
	for _, k := range []string{"desk.invite.state.", "desk.access.", "desk.summary.budget.", "desk.summary.scope.", "desk.summary.timeout.", "counter.latitude.remaining.", "counter.reaction.recorded.", "counter.reaction.", "counter.refusal.left.", "webpolish.budget.", "webpolish.policy.", "webpolish.actor."} {
		delete(keys, k)
	}
	for _, k := range []string{"inbox.answered.", "inbox.error.answered_by.", "inbox.outcome."} {
		delete(keys, k)
	}
	for _, st := range []string{"approved", "rejected"} {
		keys["inbox.answered."+st] = true
		keys["inbox.error.answered_by."+st] = true
	}
	for _, o := range outcomes {
		keys["inbox.outcome."+o] = true
	}
	for _, suffix := range []string{"day", "week", "month"} {
		keys["counter.latitude.remaining."+suffix] = true
	}
	for _, a := range []string{"owner", "manager", "supervisor", "frontline"} {
		keys["desk.access."+a] = true
	}
	for _, v := range []string{"day", "week", "month"} {
		keys["desk.summary.budget."+v] = true
		keys["webpolish.budget."+v] = true
	}
	for _, v := range []string{"system", "cli", "customer"} {
		keys["webpolish.actor."+v] = true
	}
	for _, v := range []string{"member", "customer", "team", "org"} {
		keys["desk.summary.scope."+v] = true
	}
	for _, v := range []string{"escalate", "approve", "deny"} {
		keys["desk.summary.timeout."+v] = true
	}
	for _, s := range sentiments {
		keys["counter.reaction.recorded."+s] = true
		keys["counter.reaction."+s] = true
	}
	for _, l := range leftValues {
		keys["counter.refusal.left."+l] = true
	}
	for _, k := range []string{"survey.csat.", "survey.nps.", "survey.desk.scale.", "survey.kind.", "survey.refused.", "survey.score."} {
		delete(keys, k)
	}
	for _, sc := range []string{margen.ScaleCSAT, margen.ScaleNPS} {
		keys["survey.desk.scale."+sc] = true
		keys["survey.score."+sc] = true
		for _, o := range scoreOptions(sc) {
			keys[o.Key] = true
		}
	}
	for _, k := range []string{margen.PointSite, margen.PointTable, margen.PointCounter} {
		keys["survey.kind."+k] = true
	}
	for _, r := range []string{margen.RefusedAddress, margen.RefusedToken, margen.RefusedPointHour, margen.RefusedDevice} {
		keys["survey.refused."+r] = true
	}
	delete(keys, "inbox2.check.problem.")
	for _, w := range auditProblems {
		keys["inbox2.check.problem."+w] = true
	}
	for _, k := range []string{margen.CaseOpen, margen.CaseClosed} {
		keys["cases.status."+k] = true
	}
	for _, k := range []string{margen.CaseResolved, margen.CaseUnresolved, margen.CaseNoContact} {
		keys["cases.outcome."+k] = true
	}
	for _, k := range []string{margen.ReactionPositive, margen.ReactionNeutral, margen.ReactionNegative, margen.ReactionUnknown} {
		keys["cases.reaction."+k] = true
	}
	for _, k := range []string{margen.EmailQueued, margen.EmailRetrying, margen.EmailSent, margen.EmailFailed} {
		keys["mail.status."+k] = true
	}
	for _, k := range []string{"cases.status.", "cases.outcome.", "cases.reaction.", "mail.status."} {
		delete(keys, k)
	}
	if len(keys) < 50 {
		t.Fatalf("found only %d keys: the walk is broken", len(keys))
	}
	for k := range keys {
		for _, lang := range i18n.Languages {
			if !cat.Has(lang, k) {
				t.Errorf("catalogue key %q is missing in %s", k, lang)
			}
		}
	}
}

var (
	tagPattern  = regexp.MustCompile(`(?s)<[^>]*>`)
	attrPattern = regexp.MustCompile(`(?i)\b(placeholder|title|aria-label|alt)="([^"]*)"`)
)

// visibleText walks a template and returns the text a person would read
// that does not come from an action ({{...}}); it collects the catalogue
// keys the template passes to T as it goes.
func visibleText(root *parse.ListNode, keys map[string]bool) []string {
	var text strings.Builder
	var walk func(n parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.TextNode:
			text.Write(n.Text)
		case *parse.ActionNode:
			text.WriteString("\x00")
			collectKeys(n.Pipe, keys)
		case *parse.IfNode:
			collectKeys(n.Pipe, keys)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			collectKeys(n.Pipe, keys)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			collectKeys(n.Pipe, keys)
			walk(n.List)
			walk(n.ElseList)
		case *parse.TemplateNode:
			collectKeys(n.Pipe, keys)
		}
	}
	walk(root)
	var problems []string
	all := text.String()
	for _, m := range attrPattern.FindAllStringSubmatch(all, -1) {
		if hasLetter(m[2]) {
			problems = append(problems, m[0])
		}
	}
	outside := tagPattern.ReplaceAllString(all, " ")
	for _, field := range strings.Fields(outside) {
		if hasLetter(field) {
			problems = append(problems, field)
		}
	}
	return problems
}

func hasLetter(s string) bool {
	return strings.IndexFunc(s, unicode.IsLetter) >= 0
}

// collectKeys records the string literal after a .T in a pipeline.
func collectKeys(p *parse.PipeNode, keys map[string]bool) {
	if p == nil {
		return
	}
	var visit func(args []parse.Node)
	visit = func(args []parse.Node) {
		for i, a := range args {
			switch a := a.(type) {
			case *parse.FieldNode:
				if a.Ident[len(a.Ident)-1] == "T" && i+1 < len(args) {
					if s, ok := args[i+1].(*parse.StringNode); ok {
						keys[s.Text] = true
					}
				}
			case *parse.VariableNode:
				if a.Ident[len(a.Ident)-1] == "T" && i+1 < len(args) {
					if s, ok := args[i+1].(*parse.StringNode); ok {
						keys[s.Text] = true
					}
				}
			case *parse.PipeNode:
				collectKeys(a, keys)
			case *parse.ChainNode:
				if a.Field[len(a.Field)-1] == "T" && i+1 < len(args) {
					if s, ok := args[i+1].(*parse.StringNode); ok {
						keys[s.Text] = true
					}
				}
			}
		}
	}
	for _, c := range p.Cmds {
		visit(c.Args)
	}
}
