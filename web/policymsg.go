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
