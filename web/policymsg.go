package web

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/margenhq/margen/policy"
)

// A policy's problems (its errors and warnings) are written by the policy
// package in English, with their wording and arguments kept apart
// (policy.Error.Format and Args). The pages show them in the reader's
// language: each wording is a catalogue key ("webpolish.policy." and the
// wording's words, policyKey), its arguments {a}, {b}... in order, each
// written as the wording's verb writes it. A wording without a key (or
// without a fixed wording) is shown as the policy package wrote it; a test
// finds every wording of the policy package in the catalogue.

// policyVerb matches the fmt verbs the policy package's wordings use.
var policyVerb = regexp.MustCompile(`%[sqdv]`)

// policyKey is the catalogue key of a wording: its words (each argument
// an "x"), lowercased, joined by "_", at most 80 characters.
func policyKey(format string) string {
	var words []string
	for _, w := range strings.FieldsFunc(policyVerb.ReplaceAllString(format, " x "), func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) {
		words = append(words, strings.ToLower(w))
	}
	k := strings.Join(words, "_")
	if len(k) > 80 {
		k = strings.TrimRight(k[:80], "_")
	}
	return "webpolish.policy." + k
}

// policyMessage is a policy problem in the page's language.
func (p *page) policyMessage(e policy.Error) string {
	if e.Format == "" {
		if m, ok := p.conditionMessage(e.Msg); ok {
			return m
		}
		return e.Msg
	}
	key := policyKey(e.Format)
	if !p.cat.Has(p.Lang, key) {
		return e.Msg
	}
	verbs := policyVerb.FindAllString(e.Format, -1)
	if len(verbs) != len(e.Args) {
		return e.Msg
	}
	kv := make([]any, 0, 2*len(verbs))
	for i, v := range verbs {
		kv = append(kv, string(rune('a'+i)), fmt.Sprintf(v, e.Args[i]))
	}
	return p.T(key, kv...)
}

// A condition that does not compile has no fixed wording: the policy
// package passes on the CEL compiler's messages ("invalid condition: 1:9:
// Syntax error: ...; 1:12: ..."). The common ones are written in the
// page's language here, each with its line and column in the condition;
// any other keeps the compiler's words, after the translated position.

const conditionHead = "invalid condition: "

var (
	// conditionAt finds each problem's position, "LINE:COLUMN: ".
	conditionAt   = regexp.MustCompile(`(?:^|; )(\d+):(\d+): `)
	celUndeclared = regexp.MustCompile(`^undeclared reference to '([^']*)'(?: \(in container '[^']*'\))?$`)
	celOverload   = regexp.MustCompile(`^found no matching overload for '([^']*)' applied to '\((.*)\)'$`)
	celSyntax     = regexp.MustCompile(`^Syntax error: (.*)$`)
	celMismatched = regexp.MustCompile(`^mismatched input '(.*)' expecting (.*)$`)
	celExtraneous = regexp.MustCompile(`^extraneous input '(.*)' expecting (.*)$`)
	celToken      = regexp.MustCompile(`^token recognition error at: '(.*)'$`)
	celMissing    = regexp.MustCompile(`^missing (.*) at '(.*)'$`)
	celNoViable   = regexp.MustCompile(`^no viable alternative at input '(.*)'$`)
)

// conditionMessage is a condition's compiler problems in the page's
// language; false when msg is not one.
func (p *page) conditionMessage(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, conditionHead)
	if !ok {
		return "", false
	}
	at := conditionAt.FindAllStringSubmatchIndex(rest, -1)
	if len(at) == 0 || at[0][0] != 0 {
		return "", false
	}
	parts := make([]string, 0, len(at))
	for i, m := range at {
		end := len(rest)
		if i+1 < len(at) {
			end = at[i+1][0]
		}
		parts = append(parts, p.T("inbox2.cel.at", "line", rest[m[2]:m[3]], "column", rest[m[4]:m[5]],
			"problem", p.celProblem(rest[m[1]:end])))
	}
	return p.T("inbox2.cel.invalid", "problems", strings.Join(parts, "; ")), true
}

// celProblem is one compiler message in the page's language.
func (p *page) celProblem(m string) string {
	if x := celUndeclared.FindStringSubmatch(m); x != nil {
		return p.T("inbox2.cel.undeclared", "name", x[1])
	}
	if x := celOverload.FindStringSubmatch(m); x != nil {
		return p.T("inbox2.cel.no_overload", "operator", celOperator(x[1]), "types", x[2])
	}
	x := celSyntax.FindStringSubmatch(m)
	if x == nil {
		return m
	}
	d := x[1]
	if y := celMismatched.FindStringSubmatch(d); y != nil {
		return p.T("inbox2.cel.syntax.mismatched", "found", p.celToken(y[1]), "expected", p.celToken(y[2]))
	}
	if y := celExtraneous.FindStringSubmatch(d); y != nil {
		return p.T("inbox2.cel.syntax.extraneous", "found", p.celToken(y[1]), "expected", p.celToken(y[2]))
	}
	if y := celToken.FindStringSubmatch(d); y != nil {
		return p.T("inbox2.cel.syntax.token", "found", y[1])
	}
	if y := celMissing.FindStringSubmatch(d); y != nil {
		return p.T("inbox2.cel.syntax.missing", "expected", p.celToken(y[1]), "found", p.celToken(y[2]))
	}
	if y := celNoViable.FindStringSubmatch(d); y != nil {
		return p.T("inbox2.cel.syntax.no_viable", "found", y[1])
	}
	return p.T("inbox2.cel.syntax", "detail", d)
}

// celToken names the end of the condition in words; other tokens are
// shown as the parser wrote them.
func (p *page) celToken(t string) string {
	if t == "<EOF>" || t == "'<EOF>'" {
		return p.T("inbox2.cel.end")
	}
	return t
}

// celOperator writes CEL's internal operator names as people type them
// ("_==_" is "==", "!_" is "!"); a function's name is kept.
func celOperator(op string) string {
	if strings.HasPrefix(op, "_") || strings.HasSuffix(op, "_") {
		return strings.ReplaceAll(op, "_", "")
	}
	return op
}
